"""What the Performance Tracker shows, read from the warehouse (Dagster-free): the Streamlit app
(`tracking_pipeline/app/`) and the HTML report (`reporting/performance.py`) both call these functions, so a number is
computed once, by the pipeline's own code, wherever it is shown.

Two kinds of functions:

- readers (`wh` first): portfolios, NAV with the benchmark as a series of its own, stored `portfolio_metrics` rows,
  metrics of any range (`range_metrics`: the stored row when the range is a stored period, else computed live by
  `services.performance.get_metrics`), overlay decisions, risk snapshots, stress tests, rebalancing events, rolling
  metrics;
- table builders (pure, frames in and out, tested against hand-computed values): period returns, the annual and
  monthly tables, the comparison with the best value marked, the aggregate table, crisis windows, drawdowns.

A *series* is a variant (`raw`, an overlay) or `benchmark`: the portfolio's benchmark ticker's adj_close on the
portfolio's NAV days (as in `portfolio_metrics`), shown as a NAV starting at the portfolio's initial NAV.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from tracking_pipeline.analytics.metrics import compute_metrics
from tracking_pipeline.analytics.stress import HISTORICAL_SCENARIOS
from tracking_pipeline.services.performance import (
    BENCHMARK, NAV_RETURNS, active_portfolios, benchmark_prices, get_metrics, in_list, load_series, series_from,
    to_polars,
)
from tracking_pipeline.warehouse import TABLES, Warehouse

RAW = "raw"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
KPIS = ("cagr", "sharpe_ratio", "sortino_ratio", "max_drawdown", "volatility", "calmar_ratio")
"""The six KPI cards of seed 000 §3, in order."""
HIGHER_IS_BETTER = ("total_return", "cagr", "sharpe_ratio", "sortino_ratio", "calmar_ratio", "max_drawdown",
                    "win_rate", "alpha", "information_ratio", "var_95", "cvar_95", "current_drawdown")
LOWER_IS_BETTER = ("volatility",)
AGGREGATE_METRICS = ("total_return", "cagr", "sharpe_ratio", "sortino_ratio", "max_drawdown", "calmar_ratio",
                     "volatility", "win_rate", "var_95", "cvar_95", "beta", "alpha", "tracking_error",
                     "information_ratio")
CRISIS_WINDOWS: dict[str, tuple[dt.date, dt.date, str]] = {
    **{name: (sc.start, sc.end, sc.description) for name, sc in HISTORICAL_SCENARIOS.items()},
    "2025 tariff shock": (dt.date(2025, 2, 19), dt.date(2025, 4, 8), "Tariff announcements sell-off"),
}
"""Market episodes, S&P 500 closing peak to closing trough: the stress tests' episodes plus later ones. A window is
shown for a portfolio when its NAV covers both days."""
TIMEFRAMES = {"daily": "day", "weekly": "week", "monthly": "month"}
"""The app's timeframes and the period of their rows (stored `week`/`month` metrics rows; NAV days for daily)."""


# --------------------------------------------------------------------------- helpers


def series_order(variants: Iterable[str]) -> list[str]:
    """Series in display order: raw, the overlays alphabetically, the benchmark last."""
    names = set(variants)
    return ([RAW] if RAW in names else []) + sorted(names - {RAW, BENCHMARK}) + (
        [BENCHMARK] if BENCHMARK in names else [])


def series_label(series: str, benchmark: str) -> str:
    """How a series is named on screen: 'Raw', '+conservative', ..., and the benchmark's ticker."""
    if series == RAW:
        return "Raw"
    if series == BENCHMARK:
        return f"{benchmark} (benchmark)"
    return f"+{series}"


def parse_json(value: Any) -> Any:
    """A JSON column's value as Python (DuckDB returns text, PostgreSQL parsed objects); None when empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return json.loads(value) if isinstance(value, str) else value


def _ids(portfolio_ids: Iterable[int]) -> list[int]:
    return [int(i) for i in portfolio_ids]


def has_table(wh: Warehouse, name: str) -> bool:
    """Whether a declared table exists in the warehouse (tables of newer versions may be missing on a read-only
    copy of an older warehouse)."""
    if name not in TABLES:
        return False
    return bool(wh.scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = ?", [name]))


# --------------------------------------------------------------------------- readers


def portfolio_list(wh: Warehouse) -> pd.DataFrame:
    """Active portfolios with NAV: id, name, description, source, benchmark, start_date, initial_nav, the variants
    stored (display order), first_day and last_day (the as-of day), ordered by name."""
    defs = wh.read_table("portfolio_definitions", "is_active", order_by="name, portfolio_id")
    spans = wh.query("SELECT portfolio_id, variant, MIN(trade_date) AS first_day, MAX(trade_date) AS last_day "
                     "FROM portfolio_daily_nav GROUP BY portfolio_id, variant")
    spans["portfolio_id"] = spans["portfolio_id"].astype("int64")
    per = spans.groupby("portfolio_id").agg(first_day=("first_day", "min"), last_day=("last_day", "max"),
                                            variants=("variant", lambda v: series_order(v)))
    defs["portfolio_id"] = defs["portfolio_id"].astype("int64")
    out = defs.join(per, on="portfolio_id", how="inner")
    out["description"] = out["description"].fillna("")
    return out[["portfolio_id", "name", "description", "source", "benchmark", "start_date", "initial_nav",
                "variants", "first_day", "last_day"]].reset_index(drop=True)


def as_of(wh: Warehouse) -> pd.Timestamp | None:
    """The last NAV day in the warehouse (what the pages are 'as of')."""
    day = wh.scalar("SELECT MAX(trade_date) FROM portfolio_daily_nav")
    return None if day is None or pd.isna(day) else pd.Timestamp(day)


def nav_history(wh: Warehouse, portfolios: pd.DataFrame) -> pd.DataFrame:
    """NAV of every series of `portfolios` (rows of `portfolio_list`): portfolio_id, variant, trade_date, nav,
    daily_return, cumulative_return, equity_allocation, with the benchmark as `variant = 'benchmark'`: its
    adj_close on the portfolio's NAV days scaled to the initial NAV on the first day (returns between consecutive
    NAV days, as the benchmark rows of `portfolio_metrics`)."""
    nav = _stored_nav(wh, portfolios)
    return _with_benchmark(nav, _prices(wh, nav, portfolios), portfolios)


def nav_and_returns(wh: Warehouse, portfolios: pd.DataFrame) -> tuple[pd.DataFrame, pl.DataFrame]:
    """`nav_history` and `return_series` of `portfolios` from one read of their NAV and benchmark prices (a report
    page shows both; at 1x a batch of 25 books reads in 1.40 s instead of 1.52 s)."""
    nav = _stored_nav(wh, portfolios)
    prices = _prices(wh, nav, portfolios)
    series = series_from(to_polars(nav, NAV_RETURNS), prices,
                         active_portfolios(wh, _ids(portfolios["portfolio_id"])))
    return _with_benchmark(nav, prices, portfolios), series


def _stored_nav(wh: Warehouse, portfolios: pd.DataFrame) -> pd.DataFrame:
    """The stored NAV rows of `portfolios`, by portfolio, variant and day."""
    where, params = in_list("portfolio_id", _ids(portfolios["portfolio_id"]))
    nav = wh.query("SELECT portfolio_id, variant, trade_date, nav, daily_return, cumulative_return, "
                   f"equity_allocation FROM portfolio_daily_nav WHERE {where} "
                   "ORDER BY portfolio_id, variant, trade_date", params)
    nav["portfolio_id"] = nav["portfolio_id"].astype("int64")
    nav["trade_date"] = pd.to_datetime(nav["trade_date"])
    return nav


def _prices(wh: Warehouse, nav: pd.DataFrame, portfolios: pd.DataFrame) -> pl.DataFrame:
    """The benchmark prices of the portfolios in `nav` over its days (`performance.benchmark_prices`)."""
    if nav.empty:
        return benchmark_prices(wh, [], None, None)
    held = portfolios["portfolio_id"].astype("int64").isin(nav["portfolio_id"].unique())
    return benchmark_prices(wh, portfolios.loc[held, "benchmark"].tolist(), nav["trade_date"].min().date(),
                            nav["trade_date"].max().date())


def _with_benchmark(nav: pd.DataFrame, prices: pl.DataFrame, portfolios: pd.DataFrame) -> pd.DataFrame:
    """`nav` and each portfolio's benchmark rows made from `prices` (see `nav_history`)."""
    if nav.empty:
        return nav
    days = nav[["portfolio_id", "trade_date"]].drop_duplicates().merge(
        portfolios[["portfolio_id", "benchmark", "initial_nav"]], on="portfolio_id")
    closes = prices.rename({"ticker": "benchmark"}).to_pandas()
    closes["trade_date"] = closes["trade_date"].astype(nav["trade_date"].dtype)
    bench = days.merge(closes, on=["benchmark", "trade_date"], how="left").sort_values(
        ["portfolio_id", "trade_date"], ignore_index=True)
    first = bench.groupby("portfolio_id")["adj_close"].transform("first")
    growth = bench["adj_close"] / first
    bench = bench.assign(variant=BENCHMARK, nav=growth * bench["initial_nav"], cumulative_return=growth - 1.0,
                         daily_return=bench.groupby("portfolio_id")["adj_close"].pct_change(fill_method=None)
                         .fillna(0.0), equity_allocation=np.nan)
    return pd.concat([nav, bench[nav.columns]], ignore_index=True)


def in_range(nav: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """NAV rows of [start, end] plus each series' last NAV day before `start` (the anchor the first return is
    measured from), so a path rebased on its first row ends at the range's total return."""
    before = nav[nav["trade_date"] < start]
    anchors = before.groupby(["portfolio_id", "variant"])["trade_date"].transform("max")
    keep = (nav["trade_date"].between(start, end)) | nav.index.isin(before.index[before["trade_date"] == anchors])
    return nav[keep]


def by_day(rows: pd.DataFrame, values: str, columns: str = "variant", index: str = "trade_date") -> pd.DataFrame:
    """`rows.pivot(index=index, columns=columns, values=values)`: by reshaping when the rows are one block per
    column value, each over the same increasing days (a portfolio's NAV or rolling rows as read: 6x faster than
    pandas' pivot), by pandas otherwise."""
    keys = rows[columns].to_numpy(object)
    if len(keys) and rows[values].dtype == np.float64 and rows[index].dtype.kind == "M":
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        names, n = keys[starts], len(keys) // len(starts)
        if len(set(names)) == len(names) and len(keys) == n * len(starts):
            days = rows[index].to_numpy().reshape(len(starts), n)
            if (days == days[0]).all() and (np.diff(days[0]) > np.timedelta64(0)).all():
                order = np.argsort(names)  # pandas orders the columns
                return pd.DataFrame(rows[values].to_numpy().reshape(len(starts), n)[order].T,
                                    index=pd.DatetimeIndex(days[0], name=index),
                                    columns=pd.Index(names[order], dtype=rows[columns].dtype, name=columns))
    return rows.pivot(index=index, columns=columns, values=values)


def growth_paths(nav: pd.DataFrame) -> pd.DataFrame:
    """Wide frames of one portfolio's NAV rows (days x series): cumulative return rebased on the first day and the
    drawdown (`nav / running max - 1`), returned as a frame with column MultiIndex (figure, series)."""
    wide = by_day(nav, "nav").sort_index()
    wide = wide[series_order(wide.columns)]
    first = wide.bfill().iloc[0]
    cumulative = wide / first - 1.0
    drawdown = wide / wide.cummax() - 1.0
    return pd.concat({"cumulative": cumulative, "drawdown": drawdown}, axis=1)


def resample_path(frame: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """A days-indexed frame at the timeframe's period ends (the last day of each week or month; daily unchanged):
    a chart of weekly or monthly points."""
    period = TIMEFRAMES[timeframe]
    if period == "day" or frame.empty:
        return frame
    keys = frame.index.to_period("W" if period == "week" else "M")
    last = ~pd.Series(keys).duplicated(keep="last").to_numpy()
    return frame[last]


def stored_metrics(wh: Warehouse, portfolio_ids: Iterable[int],
                   period_types: Sequence[str] | None = None) -> pd.DataFrame:
    """`portfolio_metrics` rows of these portfolios (all series), optionally of some period types only."""
    where, params = in_list("portfolio_id", _ids(portfolio_ids))
    if period_types is not None:
        types, type_params = in_list("period_type", list(period_types))
        where, params = f"{where} AND {types}", params + type_params
    rows = wh.read_table("portfolio_metrics", where, params,
                         order_by="portfolio_id, variant, period_type, period_start")
    return rows.astype({"portfolio_id": "int64", "variant": object, "period_type": object})


def range_metrics(wh: Warehouse, portfolio_id: int, series: Sequence[str], start: dt.date, end: dt.date,
                  rf_annual: float) -> pd.DataFrame:
    """One row per series: the metrics of the returns dated in [start, end] with `source` 'table' (the stored
    `portfolio_metrics` row of that period) or 'live' (computed by the same code from the stored NAV), by
    `services.performance.get_metrics`; series without a return in the range are left out."""
    rows = []
    for name in series:
        row = get_metrics(wh, int(portfolio_id), name, start, end, rf_annual=rf_annual)
        if row is not None:
            rows.append(row)
    return pd.DataFrame(rows).set_index("variant") if rows else pd.DataFrame()


def return_series(wh: Warehouse, portfolio_ids: Iterable[int]) -> pl.DataFrame:
    """The return series of `portfolio_metrics` (`services.performance.load_series`: every variant and the
    benchmark, with `prev_date`, `r` and `b`) of these active portfolios."""
    return load_series(wh, active_portfolios(wh, _ids(portfolio_ids)))


def overlay_history(wh: Warehouse, models: Sequence[str], start: dt.date | None = None,
                    end: dt.date | None = None) -> pd.DataFrame:
    """`overlay_signals` rows of these models (optionally in [start, end]); `signals`/`impacts` as stored (see
    `parse_json`)."""
    where, params = in_list("model", list(models))
    if start is not None:
        where, params = f"{where} AND trade_date >= ?", [*params, start]
    if end is not None:
        where, params = f"{where} AND trade_date <= ?", [*params, end]
    return wh.read_table("overlay_signals", where, params, order_by="model, trade_date")


SNAPSHOT_SERIES = ["portfolio_id", "snapshot_date", "market_beta_weighted", "market_beta_direct", "hhi",
                   "effective_num_positions", "top_3_concentration", "top_10_concentration",
                   "realized_volatility_21d", "realized_volatility_63d", "expected_volatility_21d",
                   "max_allocation_drift"]
"""The numeric snapshot columns charted over time (the JSON columns are read for the latest day only)."""


def _scope(portfolio_ids: Iterable[int], date_column: str, start: dt.date | None,
           end: dt.date | None) -> tuple[str, list[Any]]:
    """WHERE text and parameters: these portfolios, `date_column` in [start, end] (either bound optional)."""
    where, params = in_list("portfolio_id", _ids(portfolio_ids))
    if start is not None:
        where, params = f"{where} AND {date_column} >= ?", [*params, start]
    if end is not None:
        where, params = f"{where} AND {date_column} <= ?", [*params, end]
    return where, params


def _latest_rows(wh: Warehouse, table: str, portfolio_ids: Iterable[int], end: dt.date | None,
                 order_by: str | None = None) -> pd.DataFrame:
    """The rows of `table` on each portfolio's last `snapshot_date` (on or before `end`)."""
    where, params = _scope(portfolio_ids, "snapshot_date", None, end)
    rows = wh.read_table(table, f"(portfolio_id, snapshot_date) IN (SELECT portfolio_id, MAX(snapshot_date) FROM "
                                f"{table} WHERE {where} GROUP BY portfolio_id)", params, order_by=order_by)
    rows["portfolio_id"] = rows["portfolio_id"].astype("int64")
    return rows


def snapshot_history(wh: Warehouse, portfolio_ids: Iterable[int], start: dt.date | None = None,
                     end: dt.date | None = None) -> pd.DataFrame:
    """The numeric `portfolio_snapshots` columns of these portfolios over time (optionally in [start, end])."""
    where, params = _scope(portfolio_ids, "snapshot_date", start, end)
    frame = wh.query(f"SELECT {', '.join(SNAPSHOT_SERIES)} FROM portfolio_snapshots WHERE {where} "
                     "ORDER BY portfolio_id, snapshot_date", params)
    frame["portfolio_id"] = frame["portfolio_id"].astype("int64")
    frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"])
    return frame


def latest_snapshots(wh: Warehouse, portfolio_ids: Iterable[int], end: dt.date | None = None) -> dict[int, dict]:
    """Each portfolio's last snapshot row (on or before `end`) with its JSON columns parsed, by portfolio_id."""
    rows = _latest_rows(wh, "portfolio_snapshots", portfolio_ids, end)
    out = {}
    for row in rows.to_dict("records"):
        for column, kind in TABLES["portfolio_snapshots"].columns:
            if kind == "json":
                row[column] = parse_json(row.get(column))
        out[int(row["portfolio_id"])] = row
    return out


def sector_table(snapshot: dict[str, Any] | None) -> pd.DataFrame:
    """A snapshot's `sector_exposure` as rows: sector, portfolio, benchmark, diff (largest portfolio weight
    first)."""
    exposure = (snapshot or {}).get("sector_exposure") or {}
    frame = pd.DataFrame([{"sector": k, **v} for k, v in exposure.items()],
                         columns=["sector", "portfolio", "benchmark", "diff"])
    return frame.sort_values(["portfolio", "sector"], ascending=[False, True], ignore_index=True)


def stress_tests(wh: Warehouse, portfolio_ids: Iterable[int], end: dt.date | None = None) -> pd.DataFrame:
    """Each portfolio's stress tests on its last stress date (on or before `end`): market shocks first (by
    shock), then the historical replays."""
    return _latest_rows(wh, "portfolio_stress_tests", portfolio_ids, end,
                        order_by="portfolio_id, scenario NOT LIKE 'Market%', market_shock, scenario")


def _optional_table(wh: Warehouse, table: str, portfolio_ids: Iterable[int], date_column: str,
                    start: dt.date | None, end: dt.date | None, order_by: str,
                    columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of a table added by a later version (empty when the warehouse does not have it); all its columns, or
    `columns`."""
    if not has_table(wh, table):
        return pd.DataFrame(columns=TABLES[table].pick(columns))
    where, params = _scope(portfolio_ids, date_column, start, end)
    rows = wh.read_table(table, where, params, order_by=order_by, columns=columns)
    rows["portfolio_id"] = rows["portfolio_id"].astype("int64")
    return rows


def rebalancing_history(wh: Warehouse, portfolio_ids: Iterable[int]) -> pd.DataFrame:
    """`rebalancing_events` of these portfolios (newest first); empty when the table does not exist."""
    return _optional_table(wh, "rebalancing_events", portfolio_ids, "event_date", None, None,
                           "portfolio_id, event_date DESC")


def rolling_history(wh: Warehouse, portfolio_ids: Iterable[int], start: dt.date | None = None,
                    end: dt.date | None = None, statistics: Sequence[str] | None = None) -> pd.DataFrame:
    """`portfolio_rolling_metrics` rows of these portfolios (every series), with every statistic or only
    `statistics` (besides the keys); empty when the table does not exist."""
    columns = None if statistics is None else ["portfolio_id", "trade_date", "variant", *statistics]
    return _optional_table(wh, "portfolio_rolling_metrics", portfolio_ids, "trade_date", start, end,
                           "portfolio_id, variant, trade_date", columns)


# --------------------------------------------------------------------------- table builders (pure)


def best_mask(frame: pd.DataFrame, higher: bool = True) -> pd.DataFrame:
    """True on each row's best value (all of them when tied); missing values are never best."""
    best = frame.max(axis=1) if higher else frame.min(axis=1)
    return frame.eq(best, axis=0) & frame.notna()


def period_label(start: pd.Series, period: str) -> pd.Series:
    """How a period is named: '2019' (year), 'Q1 2019', 'Mar 2019', '2019-W12' (ISO week), '2019-03-14' (day)."""
    start = pd.to_datetime(start)
    if period == "year":
        return start.dt.year.astype(str)
    if period == "quarter":
        return "Q" + start.dt.quarter.astype(str) + " " + start.dt.year.astype(str)
    if period == "month":
        return start.dt.strftime("%b %Y")
    if period == "week":
        iso = start.dt.isocalendar()
        return iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)
    return start.dt.strftime("%Y-%m-%d")


def _narrow(rows: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """`rows` with only the columns a table reads (those present): its many selections then copy a few columns,
    not every metric."""
    return rows[[c for c in columns if c in rows.columns]]


def period_table(rows: pd.DataFrame, period_type: str, series: Sequence[str],
                 value: str = "total_return") -> pd.DataFrame:
    """Stored periods of one type (newest first) x series: `value` of the `portfolio_metrics` rows of one
    portfolio, indexed by the period's label."""
    mine = rows[rows["period_type"] == period_type]
    variants = mine["variant"].to_numpy(object)
    starts = pd.DatetimeIndex(mine["period_start"]).to_numpy()
    days = np.unique(starts)
    present = set(variants)
    columns = [s for s in series if s in present]
    grid = np.full((len(days), len(columns)), np.nan)
    row = len(days) - 1 - np.searchsorted(days, starts)  # newest first
    values = mine[value].to_numpy(float)
    for i, s in enumerate(columns):
        mask = variants == s
        grid[row[mask], i] = values[mask]
    labels = period_label(pd.Series(days[::-1]), period_type)
    return pd.DataFrame(grid, index=pd.Index(labels, name="period"), columns=columns)


def daily_table(nav: pd.DataFrame, series: Sequence[str]) -> pd.DataFrame:
    """NAV days (newest first) x series: the stored `daily_return` (the benchmark's from its prices), the start
    row of each series (no return yet) left out."""
    firsts = nav.groupby("variant")["trade_date"].transform("min")
    wide = nav[nav["trade_date"] > firsts].pivot(index="trade_date", columns="variant", values="daily_return")
    wide = wide.sort_index(ascending=False).reindex(columns=[s for s in series if s in wide.columns])
    wide.index = pd.Index(period_label(pd.Series(wide.index), "day"), name="period")
    wide.columns.name = None
    return wide


def annual_table(rows: pd.DataFrame, series: Sequence[str]) -> pd.DataFrame:
    """Years (newest first) x series: each year's stored total return, plus `note`: 'YTD' for a year whose last
    return is not on its last trading day and 'from <day>' for one whose returns begin after its first week."""
    rows = _narrow(rows, ("period_type", "variant", "period_start", "period_end", "total_return"))
    table = period_table(rows, "year", series)
    years = rows[rows["period_type"] == "year"]
    starts = pd.DatetimeIndex(years["period_start"])
    _, at = np.unique(starts.to_numpy(), return_index=True)  # each year's first row, as the table's rows
    first, last = starts[at[::-1]], pd.DatetimeIndex(years["period_end"])[at[::-1]]
    note = ["YTD" if (e.month, e.day) < (12, 24) else f"from {b:%Y-%m-%d}" if (b.month, b.day) > (1, 9) else ""
            for b, e in zip(first, last)]
    return table.assign(note=note)


def monthly_tables(rows: pd.DataFrame, series: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Each series' stored month returns as years (oldest first) x Jan..Dec, with its stored year return in `Year`
    (the years with a month row; filled by position, as a page makes one for each of its series)."""
    rows = _narrow(rows, ("period_type", "variant", "period_start", "total_return"))
    months = rows[rows["period_type"] == "month"]
    years = rows[rows["period_type"] == "year"]
    m_variant, m_start = months["variant"].to_numpy(object), pd.DatetimeIndex(months["period_start"])
    m_year, m_month, m_r = m_start.year.to_numpy(), m_start.month.to_numpy(), months["total_return"].to_numpy(float)
    y_variant, y_r = years["variant"].to_numpy(object), years["total_return"].to_numpy(float)
    y_year = pd.DatetimeIndex(years["period_start"]).year.to_numpy()
    out = {}
    for s in series:
        mine = m_variant == s
        shown = np.unique(m_year[mine])
        grid = np.full((len(shown), 13), np.nan)
        grid[np.searchsorted(shown, m_year[mine]), m_month[mine] - 1] = m_r[mine]
        own = y_variant == s
        at = np.searchsorted(shown, y_year[own])
        found = at < len(shown)
        found[found] &= shown[at[found]] == y_year[own][found]
        grid[at[found], 12] = y_r[own][found]
        out[s] = pd.DataFrame(grid, index=pd.Index(shown, name="year"), columns=[*MONTHS, "Year"])
    return out


def monthly_table(rows: pd.DataFrame, series: str) -> pd.DataFrame:
    """One series' stored month returns as years (oldest first) x Jan..Dec, with its stored year return in
    `Year`."""
    return monthly_tables(rows, [series])[series]


def aggregate_table(metrics: pd.DataFrame, series: Sequence[str],
                    columns: Sequence[str] = AGGREGATE_METRICS) -> pd.DataFrame:
    """Metrics (rows) x series for one period, with `best`: the series with the best value of each metric where
    'best' has a direction (higher, or lower for volatility); '' for beta and the like."""
    present = [s for s in series if s in metrics.index]
    table = metrics.reindex(index=present, columns=list(columns)).T.astype(float)
    best = []
    for metric, values in zip(table.index, table.to_numpy()):
        known = ~np.isnan(values)
        if not known.any() or (metric not in HIGHER_IS_BETTER and metric not in LOWER_IS_BETTER):
            best.append("")
            continue
        top = values[known].min() if metric in LOWER_IS_BETTER else values[known].max()
        best.append(", ".join(c for c, v, k in zip(table.columns, values, known) if k and v == top))
    return table.assign(best=pd.Series(best, index=table.index, dtype=object))


def window_metrics(series: pl.DataFrame, windows: pd.DataFrame, rf_annual: float) -> pd.DataFrame:
    """Metrics of every series over every window, in one pass of the pipeline's metric code.

    `series` is a `load_series` frame (portfolio_id, variant, trade_date, prev_date, r, b); `windows` has `window`,
    `after` and `through` (and optionally `portfolio_id`: a window of that portfolio only): the returns dated in
    (after, through], i.e. from the NAV of `after` to the NAV of `through`. A series is measured over a window
    only when it has a NAV on or before `after` (its first return's prev_date) and a return on or after
    `through`; other windows are left out."""
    if series.is_empty() or windows.empty:
        return pd.DataFrame(columns=["portfolio_id", "variant", "window", "total_return", "max_drawdown"])
    series = series.filter(pl.col("r").is_not_null() & pl.col("r").is_finite())
    spans = series.group_by("portfolio_id", "variant").agg(pl.col("prev_date").min().alias("_first_nav"),
                                                         pl.col("trade_date").max().alias("_last_day"))
    per_portfolio = "portfolio_id" in windows.columns
    columns = ["portfolio_id"] * per_portfolio + ["window", "after", "through"]
    win = pl.from_pandas(windows[columns].assign(
        after=pd.to_datetime(windows["after"]).dt.date, through=pd.to_datetime(windows["through"]).dt.date))
    if per_portfolio:
        win = win.with_columns(pl.col("portfolio_id").cast(pl.Int64))
    joined = series.join(spans, on=["portfolio_id", "variant"])
    joined = joined.join(win, on="portfolio_id") if per_portfolio else joined.join(win, how="cross")
    inside = (joined
              .filter((pl.col("trade_date") > pl.col("after")) & (pl.col("trade_date") <= pl.col("through"))
                      & (pl.col("_first_nav") <= pl.col("after")) & (pl.col("_last_day") >= pl.col("through")))
              .drop("_first_nav", "_last_day", "after", "through"))
    if inside.is_empty():
        return pd.DataFrame(columns=["portfolio_id", "variant", "window", "total_return", "max_drawdown"])
    return compute_metrics(inside, ["portfolio_id", "variant", "window"], rf_annual).to_pandas()


def crisis_windows(windows: dict[str, tuple[dt.date, dt.date, str]] = CRISIS_WINDOWS) -> pd.DataFrame:
    """The crisis windows as a `window_metrics` frame (peak close to trough close)."""
    return pd.DataFrame([{"window": name, "after": start, "through": end, "description": text}
                         for name, (start, end, text) in windows.items()])


def crisis_table(measured: pd.DataFrame, windows: pd.DataFrame, series: Sequence[str]) -> pd.DataFrame:
    """One portfolio's crisis rows: per window present in its data (window order) and series, the return and max
    drawdown, with the benchmark's return and the difference (`vs_benchmark`); picked by position (a page's few
    rows: no merge or sort)."""
    if measured.empty:
        return pd.DataFrame(columns=["window", "description", "after", "through", "variant", "total_return",
                                     "max_drawdown", "benchmark_return", "vs_benchmark"])
    names, variants = measured["window"].to_numpy(object), measured["variant"].to_numpy(object)
    returns = measured["total_return"].to_numpy(float)
    order = {w: i for i, w in enumerate(windows["window"])}
    rank = {s: i for i, s in enumerate(series)}
    bench = {w: r for w, v, r in zip(names, variants, returns) if v == BENCHMARK}
    keep = sorted((i for i, (w, v) in enumerate(zip(names, variants)) if w in order and v in rank),
                  key=lambda i: (order[names[i]], rank[variants[i]]))
    window = windows.iloc[[order[names[i]] for i in keep]].reset_index(drop=True)
    rows = pd.DataFrame({"window": names[keep], "description": window["description"], "after": window["after"],
                         "through": window["through"], "variant": variants[keep], "total_return": returns[keep],
                         "max_drawdown": measured["max_drawdown"].to_numpy(float)[keep],
                         "benchmark_return": np.array([bench.get(names[i], np.nan) for i in keep], dtype=float)})
    rows["vs_benchmark"] = rows["total_return"] - rows["benchmark_return"]
    return rows


def comparison_table(rows: pd.DataFrame, last_year: pd.DataFrame, series: Sequence[str]) -> pd.DataFrame:
    """Total return per period (All, YTD, Last 12 months, each year newest first) x series, from one portfolio's
    stored `all`, `ytd` and `year` rows and `last_year` (a `window_metrics` frame of the last 12 months)."""
    rows = _narrow(rows, ("period_type", "variant", "period_start", "total_return"))
    kinds, variants = rows["period_type"].to_numpy(object), rows["variant"].to_numpy(object)
    returns = rows["total_return"].to_numpy(float)

    def picked(period_type: str) -> dict[str, float]:
        mine = kinds == period_type
        return dict(zip(variants[mine], returns[mine]))

    ytd_starts = rows["period_start"][kinds == "ytd"]
    ytd_label = f"YTD {pd.Timestamp(ytd_starts.min()).year}" if len(ytd_starts) else "YTD"
    top = {"All": picked("all"), ytd_label: picked("ytd"),
           "Last 12 months": dict(zip(last_year["variant"], last_year["total_return"])) if len(last_year) else {}}
    years = period_table(rows, "year", series)
    present = set(years.columns).union(*top.values())
    columns = [s for s in series if s in present]
    head = pd.DataFrame([[values.get(s, np.nan) for s in columns] for values in top.values()], index=list(top),
                        columns=columns, dtype=float)
    table = pd.concat([head, years.reindex(columns=columns)])
    table.index.name = "period"
    return table.astype(float)


DRAWDOWN_FIELDS = ("max_drawdown", "max_drawdown_start", "max_drawdown_trough", "max_drawdown_recovery",
                   "max_drawdown_duration", "current_drawdown", "current_drawdown_duration")


def drawdown_table(rows: pd.DataFrame, series: Sequence[str], period_type: str = "all") -> pd.DataFrame:
    """Series x the deepest drawdown's figures (depth, peak, trough, recovery, duration) and the current drawdown,
    from the stored rows of one period type; the columns a warehouse lacks are left out."""
    columns = [c for c in DRAWDOWN_FIELDS if c in rows.columns]
    mine = rows.loc[rows["period_type"] == period_type, ["variant", *columns]].set_index("variant")
    return mine.reindex(index=[s for s in series if s in mine.index], columns=columns)


def latest_decision(signals: pd.DataFrame, model: str) -> dict[str, Any] | None:
    """A model's last decision: day, target, actual, trade flag, each factor's impact (largest magnitude first)
    and the signals it used."""
    mine = signals[signals["model"] == model]
    if mine.empty:
        return None
    row = mine.iloc[-1]
    impacts = parse_json(row["impacts"]) or {}
    ordered = sorted(impacts.items(), key=lambda kv: (-abs(kv[1] or 0.0), kv[0]))
    return {"model": model, "trade_date": pd.Timestamp(row["trade_date"]), "target": row["target_allocation"],
            "actual": row["actual_allocation"], "trade_required": bool(row["trade_required"]),
            "impacts": ordered, "signals": parse_json(row["signals"]) or {}}


def allocation_changes(signals: pd.DataFrame, model: str) -> pd.DataFrame:
    """A model's allocation changes (newest first): the day, the allocation before and after, the change and the
    target that triggered it."""
    mine = signals[signals["model"] == model].sort_values("trade_date")
    before = mine["actual_allocation"].shift(1)
    changed = mine["trade_required"].fillna(False).astype(bool).to_numpy()
    out = pd.DataFrame({"trade_date": mine["trade_date"], "from": before, "to": mine["actual_allocation"],
                        "change": mine["actual_allocation"] - before, "target": mine["target_allocation"]})[changed]
    return out.iloc[::-1].reset_index(drop=True)
