"""The chain materializes a small lake end to end on DuckDB (a fast smoke test; deeper tests live elsewhere)."""

from tracking_pipeline_tests.helpers import run_chain


def test_chain_writes_every_daily_table(tracking_env):
    run_chain(tracking_env.defs(), tracking_env.instance, "2018-01-02", "2018-12-31")
    wh = tracking_env.warehouse_handle()
    counts = {t: int(wh.scalar(f"SELECT COUNT(*) FROM {t}"))
              for t in ("price_data", "market_features", "overlay_signals", "portfolio_daily_nav")}
    assert counts["market_features"] == 251
    assert counts["overlay_signals"] == 251 * 2
    assert counts["price_data"] == 251 * 78
    assert counts["portfolio_daily_nav"] > 0
