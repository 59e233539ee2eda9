"""Lake access: a local folder, and S3 through moto's real HTTP server (AWS_ENDPOINT_URL) with the local-cache
fallback of seed 000 ("S3 Fallbacks"): S3 down -> the cached copy and a warning; no cache either -> a clear error."""

from __future__ import annotations

import uuid

import dagster as dg
import pandas as pd
import pytest

from tracking_pipeline.lake import open_lake
from tracking_pipeline.lake.portfolios import load_portfolios
from tracking_pipeline.lake.errors import LakeInputError
from tracking_pipeline.lake.storage import Lake
from tracking_pipeline.lake.tables import TABLE_PATTERNS, load_prices
from tracking_pipeline_tests.helpers import make_lake, run_assets, upload_folder

START, END = "2018-07-02", "2018-07-31"
TICKERS = ["AAPL", "MSFT", "SPY"]


@pytest.fixture
def bucket() -> str:
    """A bucket name of its own: moto keeps buckets for the whole process, across server restarts."""
    return f"lake-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def small_lake(tmp_path):
    lake = make_lake(tmp_path / "lake", START, END, tickers=TICKERS)
    nested = lake / "prices" / "2018" / "extra.csv"
    nested.parent.mkdir()
    nested.write_text("date,ticker,adj_close\n2018-07-02,ZZZ,10\n2018-07-03,ZZZ,11\n")
    return lake


def direct_prices(lake) -> pd.DataFrame:  # noqa: ANN001
    """The lake's price rows read with pandas alone, in load_prices' shape."""
    frames = [pd.read_parquet(p) for p in (lake / "prices").glob("*.parquet")]
    frames.append(pd.read_csv(lake / "prices" / "2018" / "extra.csv"))
    frame = pd.concat(frames, ignore_index=True)
    frame["trade_date"] = pd.to_datetime(frame["date"].astype(str))
    return frame.sort_values(["trade_date", "ticker"], ignore_index=True)


def test_local_listing_and_reading(small_lake):
    lake = open_lake(str(small_lake))
    assert lake.list("prices", TABLE_PATTERNS) == ["prices/etfs.parquet", "prices/stocks.parquet"]
    assert lake.list("prices", TABLE_PATTERNS, recursive=True) == [
        "prices/2018/extra.csv", "prices/etfs.parquet", "prices/stocks.parquet"]
    assert lake.list("nothing_here", TABLE_PATTERNS) == []
    assert lake.read_bytes("prices/2018/extra.csv").startswith(b"date,ticker")
    prices = load_prices(lake)
    want = direct_prices(small_lake)
    assert list(prices["trade_date"]) == list(want["trade_date"])
    assert list(prices["ticker"]) == list(want["ticker"])
    assert prices["adj_close"].to_numpy() == pytest.approx(want["adj_close"].to_numpy(), rel=0, abs=0)
    window = load_prices(lake, "2018-07-03", "2018-07-05", ["AAPL"])
    assert list(window["trade_date"].dt.strftime("%Y-%m-%d")) == ["2018-07-03", "2018-07-05"]
    with pytest.raises(FileNotFoundError, match="prices/none.csv: file not found"):
        lake.read_bytes("prices/none.csv")
    with pytest.raises(FileNotFoundError, match="TRACKING_LAKE folder .*missing.* does not exist"):
        open_lake(str(small_lake / "missing"))


def test_s3_reads_then_falls_back_to_the_cache_with_a_warning(small_lake, s3_server, bucket, tmp_path):
    assert upload_folder(small_lake, bucket, "team/lake") > 0
    cache = tmp_path / "cache"
    lake = Lake(f"s3://{bucket}/team/lake", cache_dir=cache)
    online = load_prices(lake)
    specs, errors = load_portfolios(lake, "SPY", ["conservative", "trend_regime_v2"])
    assert lake.warnings == [] and errors == {}
    assert lake.list("prices", TABLE_PATTERNS, recursive=True) == [
        "prices/2018/extra.csv", "prices/etfs.parquet", "prices/stocks.parquet"]
    pd.testing.assert_frame_equal(online, load_prices(open_lake(str(small_lake))))

    s3_server.stop()
    offline_lake = Lake(f"s3://{bucket}/team/lake", cache_dir=cache)
    offline = load_prices(offline_lake)
    pd.testing.assert_frame_equal(offline, online)
    assert any("used cached listing" in w for w in offline_lake.warnings)
    assert any("prices/stocks.parquet failed" in w and "used cached copy" in w for w in offline_lake.warnings)
    offline_specs, _ = load_portfolios(offline_lake, "SPY", ["conservative", "trend_regime_v2"])
    assert [s.name for s in offline_specs] == [s.name for s in specs]


def test_s3_unreachable_without_a_cache_is_a_clear_error(small_lake, s3_server, bucket, tmp_path):
    upload_folder(small_lake, bucket, "lake")
    s3_server.stop()
    lake = Lake(f"s3://{bucket}/lake", cache_dir=tmp_path / "empty_cache")
    with pytest.raises(RuntimeError, match=rf"lake s3://{bucket}/lake/prices is unreachable .* no cached listing"):
        load_prices(lake)


def test_s3_object_missing_from_the_cache_is_a_clear_error(small_lake, s3_server, bucket, tmp_path):
    """A cached listing alone is not enough: an object never downloaded cannot be served."""
    upload_folder(small_lake, bucket, "lake")
    cache = tmp_path / "cache"
    Lake(f"s3://{bucket}/lake", cache_dir=cache).list("prices", TABLE_PATTERNS)
    s3_server.stop()
    with pytest.raises(RuntimeError, match=rf"s3://{bucket}/lake/prices/2018/extra.csv: S3 read failed .* "
                                           r"no cached copy exists"):
        load_prices(Lake(f"s3://{bucket}/lake", cache_dir=cache))


def test_fallback_warning_shows_in_the_asset_metadata(tracking_env, s3_server, bucket, monkeypatch):
    upload_folder(make_lake(tracking_env.root / "s3_lake", START, END, tickers=TICKERS), bucket, "lake")
    monkeypatch.setenv("TRACKING_LAKE", f"s3://{bucket}/lake")
    defs = tracking_env.defs()
    run_assets(defs, tracking_env.instance, ("price_data",), START, "2018-07-06")
    event = tracking_env.instance.get_latest_materialization_event(dg.AssetKey("price_data"))
    assert "lake_warnings" not in event.asset_materialization.metadata
    s3_server.stop()
    run_assets(defs, tracking_env.instance, ("price_data",), START, "2018-07-06")
    event = tracking_env.instance.get_latest_materialization_event(dg.AssetKey("price_data"))
    warnings = event.asset_materialization.metadata["lake_warnings"].value
    assert "used cached copy" in warnings and f"s3://{bucket}/lake/prices/stocks.parquet" in warnings
    assert len(tracking_env.warehouse_handle().read_table("price_data")) == 4 * len(TICKERS)  # 07-02, 03, 05, 06


def test_a_window_reads_the_same_rows_as_the_whole_file(small_lake):
    """load_prices(start, end) converts and checks only the window's rows: the same rows as the full read cut."""
    lake = open_lake(str(small_lake))
    everything = load_prices(lake)
    for start, end in [("2018-07-02", "2018-07-02"), ("2018-07-05", "2018-07-20"), ("2018-07-31", "2018-07-31"),
                       ("2018-06-01", "2018-06-29")]:
        window = load_prices(lake, start, end)
        want = everything[everything["trade_date"].between(pd.Timestamp(start), pd.Timestamp(end))]
        pd.testing.assert_frame_equal(window, want.reset_index(drop=True))


def test_a_window_checks_its_own_rows_and_every_date(small_lake):
    """A bad price outside the window does not stop it (its own day's run reports it, with the file's row
    number); a date in the future fails every window, since no run would ever read that row."""
    extra = small_lake / "prices" / "2018" / "extra.csv"
    extra.write_text("date,ticker,adj_close\n2018-07-02,ZZZ,10\n2018-07-03,ZZZ,11\n2018-07-16,ZZZ,0\n")
    lake = open_lake(str(small_lake))
    assert len(load_prices(lake, "2018-07-02", "2018-07-13")) > 0
    with pytest.raises(LakeInputError, match=r"prices/2018/extra.csv.*row 3.*field 'adj_close'"):
        load_prices(lake, "2018-07-13", "2018-07-16")
    extra.write_text("date,ticker,adj_close\n2018-07-02,ZZZ,10\n2999-07-03,ZZZ,11\n")
    with pytest.raises(LakeInputError, match=r"row 2.*field 'date'"):
        load_prices(lake, "2018-07-02", "2018-07-02")
