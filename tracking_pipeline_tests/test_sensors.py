"""The portfolio registration sensor on a local lake and on an S3-compatible server (moto over HTTP), and the
downstream sensor after a successful daily run.

Sensor ticks are evaluated as the daemon does (`evaluate_tick` on a context carrying the previous cursor) and
the run requests are executed in-process on the same instance, so the second phase (the history backfill after
the registry run succeeded) sees the real run.
"""

from __future__ import annotations

import json
import uuid
import socket
from pathlib import Path

import boto3
import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from tracking_pipeline.defs.automation.sensors import REGISTRATION_TAG
from tracking_pipeline.defs.portfolios.assets import PORTFOLIO_TAG
from tracking_pipeline.lake.portfolios import portfolio_id_for
from tracking_pipeline_tests.helpers import QUIET, run_chain, write_portfolio

SENSOR = "portfolio_registration_sensor"
FIRST, LAST = "2018-01-02", "2018-04-30"
EXISTING = {"name": "Existing", "start_date": "2018-01-02", "variants": ["raw", "trend_regime_v2"],
            "holdings": [{"effective_date": "2018-01-02", "weights": {"SPY": 0.6, "AGG": 0.3}}]}
NEWCOMER = {"name": "Newcomer", "start_date": "2018-02-01", "initial_nav": 250, "variants": ["raw", "conservative"],
            "holdings": [{"effective_date": "2018-02-01", "weights": {"AAPL": 0.5, "MSFT": 0.4}}]}


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None,
         name: str = SENSOR) -> dg.SensorExecutionData:
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                 resources=defs.resources) as context:
        return defs.resolve_sensor_def(name).evaluate_tick(context)


def execute(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Run a sensor's request in-process with its job, tags and asset selection."""
    job = defs.resolve_job_def(request.job_name)
    return job.execute_in_process(instance=instance, tags=request.tags, asset_selection=request.asset_selection,
                                  run_config=QUIET)


def only_portfolios(lake: Path, *specs: dict) -> None:
    for path in (lake / "portfolios").iterdir():
        path.unlink()
    for i, spec in enumerate(specs):
        write_portfolio(lake, f"p{i}.yaml", spec)


def expected_navs(wh, spec: dict) -> pd.DataFrame:  # noqa: ANN001
    """Independent reference (rf = 0, one rebalance): buy-and-hold shares plus idle cash for raw; the variant
    compounds equity(t) * raw return with equity(t) = the model's actual allocation decided the day before."""
    (entry,) = spec["holdings"]
    weights = entry["weights"]
    start = pd.Timestamp(spec["start_date"])
    prices = wh.query("SELECT trade_date, ticker, adj_close FROM price_data WHERE trade_date >= ?", [start.date()])
    prices = prices.pivot(index="trade_date", columns="ticker", values="adj_close").sort_index()
    nav0 = float(spec.get("initial_nav", 100))
    held = sum(w * nav0 * prices[t] / prices[t].iloc[0] for t, w in weights.items())
    raw = held + nav0 * (1 - sum(weights.values()))
    out = {"raw": raw}
    for model in spec["variants"]:
        if model == "raw":
            continue
        alloc = wh.query("SELECT trade_date, actual_allocation FROM overlay_signals WHERE model = ?", [model])
        alloc = alloc.set_index("trade_date")["actual_allocation"].sort_index()
        equity = alloc.shift(1).reindex(raw.index)
        equity.iloc[0] = alloc.loc[raw.index[0]]
        returns = (raw / raw.shift(1) - 1).fillna(0.0) * equity
        returns.iloc[0] = 0.0
        out[model] = nav0 * (1 + returns).cumprod()
    return pd.DataFrame(out)


def stored_navs(wh, portfolio_id: int) -> pd.DataFrame:  # noqa: ANN001
    frame = wh.query("SELECT trade_date, variant, nav FROM portfolio_daily_nav WHERE portfolio_id = ?",
                     [portfolio_id])
    return frame.pivot(index="trade_date", columns="variant", values="nav").sort_index()


def nav_rows(wh, portfolio_id: int) -> pd.DataFrame:  # noqa: ANN001
    return wh.query("SELECT * FROM portfolio_daily_nav WHERE portfolio_id = ? ORDER BY trade_date, variant",
                    [portfolio_id])


def plant_sentinel(wh, portfolio_id: int, day: str) -> None:  # noqa: ANN001
    """Set one stored raw NAV to -1: any recomputation of that portfolio would overwrite it."""
    from tracking_pipeline.warehouse import Write

    when = pd.Timestamp(day).date()
    row = wh.read_table("portfolio_daily_nav", "portfolio_id = ? AND trade_date = ? AND variant = 'raw'",
                        [portfolio_id, when])
    assert len(row) == 1
    wh.replace(Write("portfolio_daily_nav", row.assign(nav=-1.0),
                     {"portfolio_id": [portfolio_id], "trade_date": (when, when), "variant": ["raw"]}))


def test_registration_sensor_local_lake(tracking_env):
    env = tracking_env
    only_portfolios(env.lake, EXISTING)
    defs = env.defs()
    run_chain(defs, env.instance, FIRST, LAST, downstream=False)
    wh = env.warehouse_handle()
    existing_id, new_id = portfolio_id_for("Existing"), portfolio_id_for("Newcomer")
    plant_sentinel(wh, existing_id, "2018-03-01")
    before = nav_rows(wh, existing_id)

    # first tick: baseline only; unchanged files: nothing, same versions
    first = tick(defs, env.instance, None)
    assert not first.run_requests and "baseline" in first.skip_message
    assert set(json.loads(first.cursor)["files"]) == {"portfolios/p0.yaml"}
    again = tick(defs, env.instance, first.cursor)
    assert not again.run_requests and json.loads(again.cursor) == json.loads(first.cursor)

    # new file: phase 1 requests the registry run only
    write_portfolio(env.lake, "newcomer.yaml", NEWCOMER)
    new = tick(defs, env.instance, again.cursor)
    (registry,) = new.run_requests
    assert registry.job_name == "portfolio_registry_job" and REGISTRATION_TAG in registry.tags
    # the registry run has not happened yet: the next tick waits and requests nothing again
    waiting = tick(defs, env.instance, new.cursor)
    assert not waiting.run_requests and "waiting" in waiting.skip_message
    assert execute(defs, env.instance, registry).success

    # phase 2: that portfolio's history, start_date .. the latest materialized day, its rows only
    done = tick(defs, env.instance, waiting.cursor)
    (backfill,) = done.run_requests
    assert backfill.job_name == "daily_assets_job"
    assert backfill.tags["dagster/asset_partition_range_start"] == "2018-02-01"
    assert backfill.tags["dagster/asset_partition_range_end"] == LAST
    assert backfill.tags[PORTFOLIO_TAG] == str(new_id)
    assert dg.AssetKey("portfolio_daily_nav") in backfill.asset_selection
    assert dg.AssetKey("price_data") not in backfill.asset_selection
    assert execute(defs, env.instance, backfill).success
    got, want = stored_navs(wh, new_id), expected_navs(wh, NEWCOMER)
    assert got.index[0] == pd.Timestamp("2018-02-01") and got.index[-1] == pd.Timestamp(LAST)
    assert list(got.index) == list(want.index) and set(got.columns) == {"raw", "conservative"}
    np.testing.assert_allclose(got[want.columns].to_numpy(), want.to_numpy(), rtol=1e-10)
    pd.testing.assert_frame_equal(nav_rows(wh, existing_id), before)  # sentinel survived

    # cursor persistence: nothing more to do
    quiet = tick(defs, env.instance, done.cursor)
    assert not quiet.run_requests and json.loads(quiet.cursor)["pending"] == {}

    # changed file: new weights -> registry, then a backfill replacing that portfolio's history
    changed_spec = dict(NEWCOMER, holdings=[{"effective_date": "2018-02-01", "weights": {"AAPL": 0.2, "MSFT": 0.7}}])
    write_portfolio(env.lake, "newcomer.yaml", changed_spec)
    changed = tick(defs, env.instance, quiet.cursor)
    (registry,) = changed.run_requests
    assert execute(defs, env.instance, registry).success
    rebuilt = tick(defs, env.instance, changed.cursor)
    (backfill,) = rebuilt.run_requests
    assert execute(defs, env.instance, backfill).success
    got, want = stored_navs(wh, new_id), expected_navs(wh, changed_spec)
    np.testing.assert_allclose(got[want.columns].to_numpy(), want.to_numpy(), rtol=1e-10)
    pd.testing.assert_frame_equal(nav_rows(wh, existing_id), before)

    # removed file: registry only (marks it inactive), no backfill, history kept
    kept = nav_rows(wh, new_id)
    (env.lake / "portfolios" / "newcomer.yaml").unlink()
    removed = tick(defs, env.instance, rebuilt.cursor)
    (registry,) = removed.run_requests
    assert registry.job_name == "portfolio_registry_job"
    assert json.loads(removed.cursor) == {"files": json.loads(first.cursor)["files"], "pending": {}}
    assert execute(defs, env.instance, registry).success
    assert not tick(defs, env.instance, removed.cursor).run_requests
    active = wh.query("SELECT name, is_active FROM portfolio_definitions").set_index("name")["is_active"]
    assert not bool(active["Newcomer"]) and bool(active["Existing"])
    pd.testing.assert_frame_equal(nav_rows(wh, new_id), kept)


def test_deactivated_portfolio_registers_without_backfill(tracking_env):
    env = tracking_env
    only_portfolios(env.lake, EXISTING)
    defs = env.defs()
    run_chain(defs, env.instance, FIRST, "2018-02-28", downstream=False)
    cursor = tick(defs, env.instance, None).cursor
    write_portfolio(env.lake, "p0.yaml", dict(EXISTING, is_active=False))
    result = tick(defs, env.instance, cursor)
    (registry,) = result.run_requests
    assert json.loads(result.cursor)["pending"] == {}
    assert execute(defs, env.instance, registry).success
    assert not tick(defs, env.instance, result.cursor).run_requests
    wh = env.warehouse_handle()
    assert not bool(wh.scalar("SELECT is_active FROM portfolio_definitions WHERE name = 'Existing'"))
    assert int(wh.scalar("SELECT COUNT(*) FROM portfolio_daily_nav")) > 0


def test_downstream_sensor_follows_every_materialization_once_per_batch(tracking_env):
    """Daily-asset materializations from any job (here daily_assets_job, then the implicit asset job a UI asset
    backfill runs as) request one downstream_job each batch; nothing while a daily run is in flight."""
    env = tracking_env
    only_portfolios(env.lake, EXISTING)
    defs = env.defs()
    sensor = "downstream_after_daily_sensor"
    first = tick(defs, env.instance, None, sensor)
    assert not first.run_requests and "no new materialization" in first.skip_message
    for day in ("2018-01-02", "2018-01-03"):  # two runs before the sensor looks: one batch
        assert defs.resolve_job_def("daily_assets_job").execute_in_process(
            instance=env.instance, run_config=QUIET, partition_key=day).success
    data = tick(defs, env.instance, None, sensor)
    (request,) = data.run_requests
    assert request.job_name in (None, "downstream_job") and defs.resolve_sensor_def(sensor).job_name == "downstream_job"
    assert not tick(defs, env.instance, data.cursor, sensor).run_requests  # nothing new: nothing requested

    busy = dg.DagsterRun(job_name="daily_assets_job", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED)
    env.instance.add_run(busy)
    asset_job = defs.resolve_implicit_global_asset_job_def()
    assert asset_job.name == "__ASSET_JOB"
    assert asset_job.execute_in_process(instance=env.instance, run_config=QUIET, partition_key="2018-01-04",
                                        asset_selection=[dg.AssetKey("price_data")]).success
    waiting = tick(defs, env.instance, data.cursor, sensor)
    assert not waiting.run_requests and "waiting for 1 queued or running run" in waiting.skip_message
    env.instance.report_run_canceled(busy)
    (after_backfill,) = tick(defs, env.instance, data.cursor, sensor).run_requests
    assert after_backfill.run_key != request.run_key
    assert defs.resolve_job_def("downstream_job").execute_in_process(
        instance=env.instance, run_config=QUIET, tags=after_backfill.tags).success


# --- S3 ----------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_lake(tracking_env, monkeypatch):
    """The env's lake uploaded to a bucket on moto's threaded S3 server; TRACKING_LAKE points at it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3")
    client.create_bucket(Bucket="lake")
    only_portfolios(tracking_env.lake, EXISTING)
    for path in tracking_env.lake.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), "lake", f"tracking/{path.relative_to(tracking_env.lake).as_posix()}")
    monkeypatch.setenv("TRACKING_LAKE", "s3://lake/tracking")
    try:
        yield client
    finally:
        server.stop()


def test_registration_sensor_on_s3(tracking_env, s3_lake):
    env = tracking_env
    client = s3_lake
    defs = env.defs()

    baseline = tick(defs, env.instance, None)
    files = json.loads(baseline.cursor)["files"]
    assert list(files) == ["portfolios/p0.yaml"]
    etag = client.head_object(Bucket="lake", Key="tracking/portfolios/p0.yaml")["ETag"].strip('"')
    assert files["portfolios/p0.yaml"] == etag
    assert not tick(defs, env.instance, baseline.cursor).run_requests

    # new file
    client.put_object(Bucket="lake", Key="tracking/portfolios/newcomer.yaml", Body=yaml.safe_dump(NEWCOMER))
    new = tick(defs, env.instance, baseline.cursor)
    (registry,) = new.run_requests
    pending = json.loads(new.cursor)["pending"]
    assert [p["name"] for ps in pending.values() for p in ps] == ["Newcomer"]
    assert execute(defs, env.instance, registry).success  # the registry reads the lake over S3
    wh = env.warehouse_handle()
    assert set(wh.query("SELECT name FROM portfolio_definitions")["name"]) == {"Existing", "Newcomer"}
    # no daily partitions materialized in this instance: the backfill is left to the daily job, pending cleared
    follow = tick(defs, env.instance, new.cursor)
    assert not follow.run_requests and json.loads(follow.cursor)["pending"] == {}

    # same content re-uploaded: same ETag, no change
    client.put_object(Bucket="lake", Key="tracking/portfolios/newcomer.yaml", Body=yaml.safe_dump(NEWCOMER))
    assert not tick(defs, env.instance, follow.cursor).run_requests

    # changed file
    client.put_object(Bucket="lake", Key="tracking/portfolios/newcomer.yaml",
                      Body=yaml.safe_dump(dict(NEWCOMER, description="changed")))
    changed = tick(defs, env.instance, follow.cursor)
    assert [r.job_name for r in changed.run_requests] == ["portfolio_registry_job"]
    assert json.loads(changed.cursor)["files"]["portfolios/newcomer.yaml"] != \
        json.loads(follow.cursor)["files"]["portfolios/newcomer.yaml"]

    # removed file (before that registry ran): a new registry request; the removed portfolio is no longer pending
    client.delete_object(Bucket="lake", Key="tracking/portfolios/newcomer.yaml")
    removed = tick(defs, env.instance, changed.cursor)
    (registry,) = removed.run_requests
    assert json.loads(removed.cursor) == {"files": {"portfolios/p0.yaml": etag}, "pending": {}}
    assert execute(defs, env.instance, registry).success
    assert not bool(wh.scalar("SELECT is_active FROM portfolio_definitions WHERE name = 'Newcomer'"))


# --- run failure alerts ----------------------------------------------------------------------------------------

class _Webhook:
    """A tiny HTTP server on 127.0.0.1 recording the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        import http.server
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "_Webhook":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.server.shutdown()
        self.server.server_close()


def _failed_daily_run(env) -> tuple[dg.Definitions, dg.ExecuteInProcessResult]:  # noqa: ANN001
    """A daily run that fails in price_data: the lake holds a price file with a non-positive price."""
    (env.lake / "prices" / "bad.csv").write_text("date,ticker,adj_close\n2018-01-02,ZZZ,-5\n")
    defs = env.defs()
    result = defs.resolve_job_def("daily_assets_job").execute_in_process(
        instance=env.instance, run_config=QUIET, partition_key="2018-01-02", raise_on_error=False)
    assert not result.success
    return defs, result


def _evaluate_failure_sensor(defs: dg.Definitions, env, result: dg.ExecuteInProcessResult) -> None:  # noqa: ANN001
    sensor = defs.resolve_sensor_def("run_failure_alert_sensor")
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=result.get_run_failure_event(), dagster_instance=env.instance,
        dagster_run=result.dagster_run, resources={"warehouse": defs.resources["warehouse"]},
        repository_def=defs.get_repository_def()).for_run_failure()
    sensor(context)


def test_failure_sensor_records_alert_and_posts_webhook(tracking_env, monkeypatch):
    env = tracking_env
    defs, result = _failed_daily_run(env)
    with _Webhook() as hook:
        monkeypatch.setenv("TRACKING_ALERT_WEBHOOK", hook.url)
        _evaluate_failure_sensor(defs, env, result)
        _evaluate_failure_sensor(defs, env, result)  # a re-evaluation does not duplicate the row
    alerts = env.warehouse_handle().read_table("alerts")
    assert len(alerts) == 1
    alert = alerts.iloc[0]
    assert alert["run_id"] == result.run_id and alert["alert_id"] == result.run_id
    assert alert["job_name"] == "daily_assets_job"
    assert alert["step_key"] == "price_data"
    assert "bad.csv" in alert["error"] and "adj_close" in alert["error"]
    assert len(hook.received) == 2
    posted = hook.received[0]
    assert posted["run_id"] == result.run_id and posted["step_key"] == "price_data"
    assert posted["error"] == alert["error"]
    assert hook.url not in json.dumps(posted)


def test_failure_sensor_survives_an_unreachable_webhook(tracking_env, monkeypatch):
    env = tracking_env
    defs, result = _failed_daily_run(env)
    monkeypatch.setenv("TRACKING_ALERT_WEBHOOK", f"http://127.0.0.1:{_free_port()}/nobody")
    _evaluate_failure_sensor(defs, env, result)
    assert list(env.warehouse_handle().read_table("alerts")["run_id"]) == [result.run_id]


def test_alert_text_redacts_secrets():
    from tracking_pipeline.defs.automation.alerts import redact

    environ = {"AWS_SECRET_ACCESS_KEY": "abcd1234secret", "TRACKING_ALERT_WEBHOOK": "https://hooks.example/T0k3n",
               "TRACKING_WAREHOUSE": "postgresql://app:pw@db/prod", "HOME": "/root"}
    text = ("connect postgresql://app:pw@db/prod failed; key abcd1234secret; hook https://hooks.example/T0k3n; "
            "other postgresql://u:hunter2@h/d; home /root")
    out = redact(text, environ)
    for secret in ("abcd1234secret", "T0k3n", ":pw@", "hunter2"):
        assert secret not in out
    assert "<AWS_SECRET_ACCESS_KEY>" in out and "<TRACKING_WAREHOUSE>" in out and "postgresql://u:***@h/d" in out
    assert "home /root" in out  # not a secret-looking variable
