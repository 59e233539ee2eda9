"""Alerts: a row in the `alerts` table, an error in the sensor log, and an optional webhook POST.

Two sources: a failed run (its job, failed step(s) and error) and a failed ERROR-severity asset check (e.g. one
portfolio that could not be computed while the others were written: the step succeeds, the check fails). Values of secret-looking environment
variables (keys, tokens, passwords, connection URLs, the webhook itself) and passwords inside URLs are
redacted before anything is stored or sent. TRACKING_ALERT_WEBHOOK, when set, receives the alert as JSON
(5 s timeout); a failed POST is logged, never raised, so the alert row is kept either way.
"""

from __future__ import annotations

import datetime as dt
import json
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
CHECK_HISTORY = 50
"""Evaluations read per check and tick (more than a tick ever sees: checks run once per step)."""


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


def record_alert(alert: dict, warehouse: WarehouseResource, log, warning: bool = False) -> None:  # noqa: ANN001
    """Store the alert (replacing a row with the same id), log it (as an error, or as a warning for a strategy in
    WARNING status), POST it when a webhook is set."""
    (log.warning if warning else log.error)(
        f"ALERT {alert['job_name']} run {alert['run_id']} at {alert['step_key'] or '(no step)'}: {alert['error']}")
    row = pd.DataFrame([{**alert, "created_at": pd.Timestamp(alert["created_at"])}])
    warehouse.get().replace(Write("alerts", row, {"alert_id": [alert["alert_id"]]}))
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if url:
        post_alert(alert, url, log)


def check_alert(record, run_job: str, now: dt.datetime | None = None) -> dict[str, str | None]:  # noqa: ANN001
    """The alert of a failed ERROR check: alert_id `check:<check>:<record id>`, the run and job that reported it,
    `asset:check` as the step, and the check's metadata (e.g. which portfolios failed and why) as the error."""
    evaluation = record.event.dagster_event.event_specific_data
    key = record.key
    detail = "; ".join(f"{k}: {_metadata_text(v)}" for k, v in (evaluation.metadata or {}).items())
    created = now or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    return {
        "alert_id": f"check:{key.asset_key.to_user_string()}:{key.name}:{record.id}",
        "created_at": created.isoformat(), "run_id": record.run_id, "job_name": run_job,
        "step_key": f"{key.asset_key.to_user_string()}:{key.name}",
        "error": redact(f"asset check {key.name} on {key.asset_key.to_user_string()} failed (ERROR)"
                        + (f": {detail}" if detail else ""))[:MAX_ERROR_CHARS],
    }


def _metadata_text(value) -> str:  # noqa: ANN001 - a dagster MetadataValue
    raw = getattr(value, "value", value)
    return json.dumps(raw, default=str) if isinstance(raw, (dict, list)) else str(raw)


@dg.sensor(
    name="check_failure_alert_sensor", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
    description="On any failed ERROR-severity asset check (e.g. a portfolio that could not be computed while the "
                "others were written): records an alert in the alerts table and the log, and POSTs it to "
                "TRACKING_ALERT_WEBHOOK when set, as for failed runs.",
)
def check_failure_alert_sensor(context: dg.SensorEvaluationContext,
                               warehouse: WarehouseResource) -> dg.SensorResult:
    """The cursor maps each check to the id of the newest evaluation already seen; the first tick only records
    the current ids (older failures were reported when they happened, or predate the sensor)."""
    seen = json.loads(context.cursor) if context.cursor else None
    storage = context.instance.event_log_storage
    latest: dict[str, int] = {}
    alerts = []
    for key in sorted(context.repository_def.asset_graph.asset_check_keys, key=str):
        name = f"{key.asset_key.to_user_string()}:{key.name}"
        records = storage.get_asset_check_execution_history(key, limit=CHECK_HISTORY)
        latest[name] = max((r.id for r in records), default=(seen or {}).get(name, 0))
        if seen is None:
            continue
        for record in records:
            if record.id <= seen.get(name, 0) or record.event is None or record.event.dagster_event is None:
                continue
            evaluation = record.event.dagster_event.event_specific_data
            if getattr(evaluation, "passed", True) or evaluation.severity != dg.AssetCheckSeverity.ERROR:
                continue
            run = context.instance.get_run_by_id(record.run_id)
            alerts.append(check_alert(record, run.job_name if run else "unknown"))
    cursor = json.dumps(latest, sort_keys=True)
    if not alerts:
        return dg.SensorResult(skip_reason="no new failed ERROR check" if seen is not None else "baseline recorded",
                               cursor=cursor)
    for alert in alerts:
        record_alert(alert, warehouse, context.log)
    return dg.SensorResult(cursor=cursor)


@dg.run_failure_sensor(
    name="run_failure_alert_sensor", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
    description="On any failed run of this code location: records an alert (run, job, failed step, error) in "
                "the alerts table and the log, and POSTs it to TRACKING_ALERT_WEBHOOK when set.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, warehouse: WarehouseResource) -> None:
    record_alert(build_alert(context), warehouse, context.log)
