"""Secrets come only from environment variables and never reach logs, event records, metadata, tables or reports;
hostile portfolio names are stored and read back unchanged (bound parameters and quoted COPY throughout)."""

import shutil
import uuid
from pathlib import Path

import boto3
import dagster as dg
import psycopg2
import pytest
from dagster._serdes import serialize_value

from tracking_pipeline.defs.resources import build_resources
from tracking_pipeline.warehouse import open_warehouse
from tracking_pipeline_tests.helpers import (
    postgres_instance_env, run_chain, run_job, upload_folder, write_portfolio,
)

START, END = "2018-06-25", "2018-07-31"
SECRET = "SECRET123-planted-f00d"
BUCKET = f"secure-{uuid.uuid4().hex[:8]}"
REPO = Path(__file__).resolve().parent.parent
HOSTILE_NAMES = [
    "O'Brien \"Alpha\"; DROP TABLE price_data; --",
    "x' OR '1'='1",
    "Robert'); DELETE FROM portfolio_definitions WHERE ('1'='1",
    "\\N",
    "%s %(name)s ? $1 :name",
    "tab\tcomma,newline\nend",
]


@pytest.fixture(autouse=True)
def history_from_start(tracking_env, monkeypatch):
    """The runs here begin at START: so do the partitions (a day's history never reaches before them)."""
    monkeypatch.setenv("TRACKING_PARTITIONS_START", START)


def _with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


def _all_database_text(url: str) -> str:
    """Every row of every table in the database (Dagster's storages and the warehouse) as text."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        chunks = []
        for (table,) in cur.fetchall():
            cur.execute(f'SELECT t::text FROM "{table}" t')
            chunks.extend(row[0] for row in cur.fetchall())
    return "\n".join(chunks)


def _tree_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file())


def test_planted_secrets_never_leave_the_environment(tracking_env, postgres_url, s3_server, monkeypatch, capfd):
    """The same secret as the warehouse password (TRACKING_WAREHOUSE URL), the Dagster instance's Postgres
    password (DAGSTER_PG_PASSWORD) and AWS_SECRET_ACCESS_KEY; the chain runs on an S3 lake with reports to S3,
    plus a run that fails on an unreachable warehouse. Nowhere does the secret appear: the run's event log,
    run records and snapshots, any Dagster or warehouse table, asset metadata, DAGSTER_HOME files (compute
    logs), the lake cache, the S3 reports, or the console."""
    warehouse_url = _with_password(postgres_url, SECRET)
    home = tracking_env.root / "dagster_home_secure"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for name, value in postgres_instance_env(postgres_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", SECRET)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    upload_folder(tracking_env.lake, BUCKET, "prod")
    monkeypatch.setenv("TRACKING_LAKE", f"s3://{BUCKET}/prod")
    monkeypatch.setenv("TRACKING_REPORTS", f"s3://{BUCKET}/reports")
    monkeypatch.setenv("TRACKING_WAREHOUSE", warehouse_url)

    resources = build_resources()
    assert isinstance(resources["warehouse"].url, dg.EnvVar) and isinstance(resources["lake"].root, dg.EnvVar)
    assert SECRET not in open_warehouse(warehouse_url).describe()

    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_chain(tracking_env.defs(), instance, START, END)
        monkeypatch.setenv("TRACKING_WAREHOUSE", _with_password(postgres_url.replace("localhost", "127.0.0.1:1"),
                                                                  SECRET))
        failed = run_job(tracking_env.defs(), "portfolio_registry_job", instance, raise_on_error=False)
        assert not failed.success
        runs = instance.get_runs()
        assert len(runs) == 4
        event_text = "\n".join(serialize_value(entry) for run in runs for entry in instance.all_logs(run.run_id))
        metadata_text = "\n".join(
            serialize_value(entry.asset_materialization.metadata)
            for run in runs for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION))
        run_text = "\n".join(serialize_value(run) for run in runs)
    assert "Connection refused" in event_text or "could not connect" in event_text.lower()
    assert "lake_warnings" not in metadata_text and "dagster/row_count" in metadata_text

    reports = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="reports/")["Contents"]
    report_text = "\n".join(boto3.client("s3").get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read().decode()
                            for o in reports)
    console = capfd.readouterr()
    haystacks = {"event log": event_text, "asset metadata": metadata_text, "run records": run_text,
                 "database tables": _all_database_text(postgres_url), "DAGSTER_HOME files": _tree_text(home),
                 "lake cache": _tree_text(tracking_env.root / "lake_cache"), "S3 reports": report_text,
                 "console": console.out + console.err}
    assert len(haystacks["database tables"]) > 100_000 and len(report_text) > 1000
    leaked = [where for where, text in haystacks.items() if SECRET in text]
    assert not leaked, f"secret found in: {leaked}"


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request, tracking_env, monkeypatch) -> str:
    if request.param == "duckdb":
        return tracking_env.warehouse
    url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("TRACKING_WAREHOUSE", url)
    return url


def test_hostile_portfolio_names_round_trip(tracking_env, warehouse_url):
    """Portfolios named with quotes, semicolons, SQL fragments, driver placeholders and COPY's NULL marker are
    registered, valued and read back byte for byte; no statement was altered (price_data still there)."""
    for path in (tracking_env.lake / "portfolios").glob("*.yaml"):
        path.unlink()
    for i, name in enumerate(HOSTILE_NAMES):
        write_portfolio(tracking_env.lake, f"hostile_{i}.yaml", {
            "name": name, "description": f"{name} -- {i}", "source": "';--", "start_date": "2018-07-02",
            "holdings": [{"effective_date": "2018-07-02", "weights": {"SPY": 0.5, "AAPL": 0.25}}]})
    run_chain(tracking_env.defs(), tracking_env.instance, START, END, downstream=False)
    wh = open_warehouse(warehouse_url)
    stored = wh.read_table("portfolio_definitions", order_by="name")
    assert sorted(stored["name"]) == sorted(HOSTILE_NAMES)
    assert sorted(stored["description"]) == sorted(f"{n} -- {i}" for i, n in enumerate(HOSTILE_NAMES))
    assert set(stored["source"]) == {"';--"}
    for name in HOSTILE_NAMES:
        found = wh.query("SELECT d.name, COUNT(*) AS n FROM portfolio_definitions d JOIN portfolio_daily_nav v "
                         "ON v.portfolio_id = d.portfolio_id WHERE d.name = ? GROUP BY d.name", [name])
        assert found["name"].tolist() == [name] and int(found["n"].iat[0]) > 0
    assert int(wh.scalar("SELECT COUNT(*) FROM price_data")) > 0
