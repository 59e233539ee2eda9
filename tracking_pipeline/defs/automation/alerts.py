"""Run-failure alerts: a row in the `alerts` table, an error in the sensor log, and an optional webhook POST.

An alert names the run, its job, the failed step(s) and the error. Values of secret-looking environment
variables (keys, tokens, passwords, connection URLs, the webhook itself) and passwords inside URLs are
redacted before anything is stored or sent. TRACKING_ALERT_WEBHOOK, when set, receives the alert as JSON
(5 s timeout); a failed POST is logged, never raised, so the alert row is kept either way.
"""

from __future__ import annotations

import datetime as dt
import os
import re

import dagster as dg
import pandas as pd
import requests

from tracking_pipeline.defs.resources import WarehouseResource
from tracking_pipeline.warehouse import Write

WEBHOOK_ENV = "TRACKING_ALERT_WEBHOOK"
WEBHOOK_TIMEOUT_S = 5.0
MAX_ERROR_CHARS = 4000
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|WEBHOOK|_URL$|^TRACKING_WAREHOUSE$")
URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)[^@\s]+@")
MIN_SECRET_LEN = 4


def redact(text: str, environ: dict[str, str] | None = None) -> str:
    """`text` with secret-looking environment variable values and URL passwords replaced by placeholders."""
    environ = dict(os.environ) if environ is None else environ
    secrets = sorted(((name, value) for name, value in environ.items()
                      if SECRET_NAME.search(name.upper()) and len(value) >= MIN_SECRET_LEN),
                     key=lambda item: -len(item[1]))
    for name, value in secrets:
        text = text.replace(value, f"<{name}>")
    return URL_PASSWORD.sub(r"\1***@", text)


def root_message(error) -> str:  # noqa: ANN001 - dagster SerializableErrorInfo
    """The message of the innermost cause: the user's exception rather than Dagster's step wrapper."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def build_alert(context: dg.RunFailureSensorContext, now: dt.datetime | None = None) -> dict[str, str | None]:
    """The alert of a failed run: alert_id (= run id, so a re-evaluation does not duplicate), run, job,
    failed step keys and error messages."""
    run = context.dagster_run
    steps, errors = [], []
    for event in context.get_step_failure_events():
        steps.append(event.step_key)
        error = event.step_failure_data.error
        errors.append(f"{event.step_key}: {root_message(error) if error else event.message}")
    if not errors:
        errors.append(context.failure_event.message or "run failed")
    created = now or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    return {
        "alert_id": run.run_id, "created_at": created.isoformat(), "run_id": run.run_id,
        "job_name": run.job_name, "step_key": ", ".join(dict.fromkeys(s for s in steps if s)) or None,
        "error": redact("\n".join(errors))[:MAX_ERROR_CHARS],
    }


def post_alert(alert: dict, url: str, log) -> bool:  # noqa: ANN001 - dagster logger
    """POST the alert JSON to the webhook; log (never raise) on failure. Returns whether it was accepted."""
    try:
        response = requests.post(url, json=alert, timeout=WEBHOOK_TIMEOUT_S)
        response.raise_for_status()
    except requests.RequestException as exc:
        log.warning(f"alert webhook ({WEBHOOK_ENV}) POST failed: {type(exc).__name__}: {redact(str(exc))}")
        return False
    return True


@dg.run_failure_sensor(
    name="run_failure_alert_sensor", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
    description="On any failed run of this code location: records an alert (run, job, failed step, error) in "
                "the alerts table and the log, and POSTs it to TRACKING_ALERT_WEBHOOK when set.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, warehouse: WarehouseResource) -> None:
    alert = build_alert(context)
    context.log.error(f"ALERT run {alert['run_id']} of {alert['job_name']} failed at step "
                      f"{alert['step_key'] or '(none)'}: {alert['error']}")
    row = pd.DataFrame([{**alert, "created_at": pd.Timestamp(alert["created_at"])}])
    warehouse.get().replace(Write("alerts", row, {"alert_id": [alert["alert_id"]]}))
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if url:
        post_alert(alert, url, context.log)
