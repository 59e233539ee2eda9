"""End to end as users drive it: `dagster-webserver` and `dagster-daemon` on the project's dagster.yaml, runs and an
asset backfill launched through the UI's GraphQL API (the buttons' own calls).

Two daily runs submitted in reverse date order wait in the queue (no daemon yet); once the daemon starts they run
one at a time, earliest day first. The downstream sensor then refreshes metrics and reports once. An asset backfill
from the lineage page (it runs as __ASSET_JOB) is followed by another refresh. Every table then equals an in-order
run of the same days and the instance's partition status matches the rows."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests

from tracking_pipeline.defs.automation.daily_runs import PRIORITY_TAG, RANGE_END_TAG, RANGE_START_TAG, date_priority
from tracking_pipeline.warehouse import open_warehouse
from tracking_pipeline_tests.helpers import assert_same_tables, make_lake, table_snapshot
from tracking_pipeline_tests.test_entry_points import BOOKS, LAKE_END, LAKE_START, TICKERS, status_matches_rows

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TIMEOUT_S = 600
LOCATION = "tracking_pipeline"
BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(root: Path, lake: Path) -> dict[str, str]:
    home = root / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKING_", "DAGSTER_"))}
    env.update(DAGSTER_HOME=str(home), TRACKING_LAKE=str(lake), TRACKING_WAREHOUSE=str(root / "warehouse.duckdb"),
               TRACKING_REPORTS=str(root / "reports"), TRACKING_LAKE_CACHE=str(root / "cache"), NO_COLOR="1")
    return env


def _run(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "tracking_pipeline", *args], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _wait(what: str, predicate, timeout: float = TIMEOUT_S):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def served(tmp_path):
    """A lake, the history up to LAKE_START..01-31 backfilled by the CLI, and the webserver on a free port."""
    lake = make_lake(tmp_path / "lake", LAKE_START, LAKE_END, tickers=TICKERS, portfolios=BOOKS)
    env = _environment(tmp_path, lake)
    _run(env, "backfill", "--start", LAKE_START, "--end", "2018-01-31")
    port = _free_port()
    logs = open(tmp_path / "webserver.log", "w")  # noqa: SIM115 - closed below
    web = subprocess.Popen([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w",
                            str(REPO / "workspace.yaml")], cwd=REPO, env=env, stdout=logs, stderr=subprocess.STDOUT)
    daemon = {}
    try:
        url = f"http://127.0.0.1:{port}"
        _wait("the webserver", lambda: _up(url), 180)
        yield {"url": url, "env": env, "root": tmp_path, "daemon": daemon}
    finally:
        for proc in [web, *daemon.values()]:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        logs.close()


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/server_info", timeout=5).ok
    except requests.RequestException:
        return False


def _failures(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> list[str]:
    """Status and step errors of runs, for assertion messages."""
    out = []
    for run in runs:
        errors = [(e.dagster_event.step_failure_data.error.cause or e.dagster_event.step_failure_data.error).message[:1500]
                  for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)]
        out.append(f"{run.run_id[:8]} {run.job_name} {run.status.value}: {errors}")
    return out


def _graphql(url: str, query: str, variables: dict) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=120)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _daily_assets(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every daily asset of the served definitions (what "select all" on the lineage page takes)."""
    from tracking_pipeline.defs.automation.daily_runs import daily_asset_keys
    from tracking_pipeline.definitions import build_definitions

    for name, value in env.items():
        if name.startswith("TRACKING_"):
            monkeypatch.setenv(name, value)
    return [key.to_user_string() for key in daily_asset_keys(build_definitions().get_repository_def())]


def test_queue_order_downstream_refresh_and_asset_backfill_through_the_daemon(served, tmp_path, monkeypatch):
    from dagster_graphql import DagsterGraphQLClient

    url, env = served["url"], served["env"]
    daily_assets = _daily_assets(env, monkeypatch)
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(url.rsplit(":", 1)[1]))
    submitted = {}
    for day in ("2018-02-02", "2018-02-01"):  # the later day first, as catching-up ticks may arrive
        submitted[day] = client.submit_job_execution(
            "daily_assets_job", repository_location_name=LOCATION, repository_name="__repository__",
            tags={RANGE_START_TAG: day, RANGE_END_TAG: day, PRIORITY_TAG: date_priority(day)})

    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    try:
        assert {instance.get_run_by_id(r).status for r in submitted.values()} == {dg.DagsterRunStatus.QUEUED}
        logs = open(tmp_path / "daemon.log", "w")  # noqa: SIM115 - the fixture terminates the process
        served["daemon"]["daemon"] = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")], cwd=REPO, env=env,
            stdout=logs, stderr=subprocess.STDOUT)

        def finished(run_ids):  # noqa: ANN001, ANN202
            runs = [instance.get_run_record_by_id(r) for r in run_ids]
            return runs if all(r.dagster_run.is_finished for r in runs) else None

        records = dict(zip(submitted, _wait("the two daily runs", lambda: finished(list(submitted.values())))))
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records.values()), \
            _failures(instance, [r.dagster_run for r in records.values()])
        # one at a time (tracking/chain limit), earliest day first (priority): 02-01 ended before 02-02 began
        assert records["2018-02-01"].end_time <= records["2018-02-02"].start_time

        def downstream_runs():  # noqa: ANN202
            return instance.get_runs(dg.RunsFilter(job_name="downstream_job"))

        first_refresh = _wait("the downstream refresh", lambda: [
            r for r in downstream_runs() if r.status == dg.DagsterRunStatus.SUCCESS])
        assert len(first_refresh) == 1  # one refresh for the batch of two runs

        data = _graphql(url, BACKFILL, {"params": {
            "partitionNames": ["2018-02-05", "2018-02-06", "2018-02-07"],
            "assetSelection": [{"path": [name]} for name in daily_assets], "fromFailure": False}})
        assert data["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", data
        backfill_id = data["launchPartitionBackfill"]["backfillId"]
        _wait("the asset backfill", lambda: instance.get_backfill(backfill_id).status.value in (
            "COMPLETED", "COMPLETED_SUCCESS", "FAILED", "COMPLETED_FAILED"))
        backfill_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        assert backfill_runs and {r.job_name for r in backfill_runs} == {"__ASSET_JOB"}
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in backfill_runs), _failures(instance, backfill_runs)
        refreshed = _wait("the refresh after the asset backfill", lambda: [
            r for r in downstream_runs() if r.status == dg.DagsterRunStatus.SUCCESS and r.run_id not in
            {x.run_id for x in first_refresh}])
        assert len(refreshed) == 1

        wh = open_warehouse(env["TRACKING_WAREHOUSE"])
        ends = wh.query("SELECT MAX(period_end) AS last FROM portfolio_metrics WHERE period_type = 'all'")
        assert str(ends["last"].iloc[0])[:10] == "2018-02-07"
        status_matches_rows(instance, wh)
    finally:
        instance.dispose()

    (tmp_path / "reference").mkdir()
    reference_env = _environment(tmp_path / "reference", Path(env["TRACKING_LAKE"]))
    _run(reference_env, "backfill", "--start", LAKE_START, "--end", "2018-02-07")
    counts = assert_same_tables(table_snapshot(open_warehouse(env["TRACKING_WAREHOUSE"])),
                                table_snapshot(open_warehouse(reference_env["TRACKING_WAREHOUSE"])), tol=1e-9)
    assert counts["portfolio_daily_nav"] > 0 and counts["portfolio_metrics"] > 0
