"""The Performance Tracker page (seed 000 §8): sidebar filters and the tabs, each isolated (seed §9).

Every number comes from the warehouse through `services/tracker.py` (the functions the HTML report uses) and is
formatted by `reporting/html.py`; the cards, tables and headings are the report's autoescaped Jinja macros, the
charts the report's Plotly figures. Reads are cached per warehouse version (a DuckDB copy, or PostgreSQL's latest
day and row counts), so a page is recomputed only when the data or a filter changes, and only the open tab runs.
"""

from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from tracking_pipeline.app.snapshot import View, WarehouseBusy, WarehouseMissing, make_reader
from tracking_pipeline.reporting import charts
from tracking_pipeline.reporting.html import METRIC_LABELS, fmt, fragment, metric_kind, stylesheet, table_view
from tracking_pipeline.reporting.performance import (
    changes_view, comparison_views, crisis_view, decision_facts, drawdown_view, kpi_blocks, rebalancing_view,
    risk_facts, risk_figures, sectors_view, stress_view,
)
from tracking_pipeline.services import tracker
from tracking_pipeline.services.performance import BENCHMARK
from tracking_pipeline.settings import load_settings

TABS = ["Dashboard", "Comparison", "Annual", "Monthly", "Signals", "Risk", "Export", "Strategies"]
TIMEFRAME_PERIOD = {"daily": "day", "weekly": "week", "monthly": "month"}
FIRST_COPY_WAIT_S = 20.0


@dataclass(frozen=True)
class Filters:
    """The sidebar's choices."""

    portfolio_ids: tuple[int, ...]
    start: dt.date
    end: dt.date
    series: tuple[str, ...]
    timeframe: str


# --------------------------------------------------------------------------- data (cached per warehouse version)


@st.cache_resource(show_spinner=False)
def reader(url: str):  # noqa: ANN201 - SnapshotReader | DirectReader
    return make_reader(url)


def _wh(url: str, version: str):  # noqa: ANN202
    return reader(url).warehouse(version)


@st.cache_data(show_spinner=False, max_entries=16)
def portfolios(url: str, version: str) -> pd.DataFrame:
    return tracker.portfolio_list(_wh(url, version))


@st.cache_data(show_spinner=False, max_entries=16)
def as_of(url: str, version: str) -> pd.Timestamp | None:
    return tracker.as_of(_wh(url, version))


@st.cache_data(show_spinner=False, max_entries=32)
def nav(url: str, version: str, ids: tuple[int, ...]) -> pd.DataFrame:
    wh = _wh(url, version)
    listed = tracker.portfolio_list(wh)
    return tracker.nav_history(wh, listed[listed["portfolio_id"].isin(ids)])


@st.cache_data(show_spinner=False, max_entries=32)
def stored(url: str, version: str, ids: tuple[int, ...]) -> pd.DataFrame:
    return tracker.stored_metrics(_wh(url, version), ids)


@st.cache_data(show_spinner=False, max_entries=128)
def range_metrics(url: str, version: str, pid: int, series: tuple[str, ...], start: dt.date, end: dt.date,
                  rf: float) -> pd.DataFrame:
    return tracker.range_metrics(_wh(url, version), pid, series, start, end, rf)


@st.cache_data(show_spinner=False, max_entries=32)
def last_year(url: str, version: str, pid: int, end: dt.date, rf: float) -> pd.DataFrame:
    """The last 12 months up to `end` of every series (the comparison's 'Last 12 months' row)."""
    windows = pd.DataFrame({"window": ["Last 12 months"], "after": [pd.Timestamp(end) - pd.DateOffset(years=1)],
                            "through": [pd.Timestamp(end)]})
    return tracker.window_metrics(tracker.return_series(_wh(url, version), [pid]), windows, rf)


@st.cache_data(show_spinner=False, max_entries=32)
def crisis(url: str, version: str, pid: int, rf: float) -> pd.DataFrame:
    return tracker.window_metrics(tracker.return_series(_wh(url, version), [pid]), tracker.crisis_windows(), rf)


@st.cache_data(show_spinner=False, max_entries=32)
def signals(url: str, version: str, models: tuple[str, ...]) -> pd.DataFrame:
    return tracker.overlay_history(_wh(url, version), models)


@st.cache_data(show_spinner=False, max_entries=32)
def risk_data(url: str, version: str, pid: int, start: dt.date, end: dt.date) -> dict:
    wh = _wh(url, version)
    return {"history": tracker.snapshot_history(wh, [pid], start, end),
            "latest": tracker.latest_snapshots(wh, [pid], end).get(pid),
            "stress": tracker.stress_tests(wh, [pid], end), "rebalancing": tracker.rebalancing_history(wh, [pid]),
            "rolling": tracker.rolling_history(wh, [pid], start, end)}


@st.cache_data(show_spinner=False, max_entries=8)
def strategies(url: str, version: str, period: str) -> dict[str, pd.DataFrame]:
    from tracking_pipeline.services.strategies import strategies_page

    return strategies_page(_wh(url, version), period)


# --------------------------------------------------------------------------- page


def show_error(what: str, exc: BaseException) -> None:
    """A failure of one part: a clear message, the error verbatim (never as markup), the traceback folded."""
    st.error(f"{what} could not be shown ({type(exc).__name__}). The rest of the page keeps working.")
    st.code(str(exc) or type(exc).__name__, language=None)
    with st.expander("Error details"):
        st.code(traceback.format_exc(), language=None)


def isolated(name: str, render: Callable[..., None], *args: object) -> None:
    """Run one tab; an exception shows a message in that tab only."""
    try:
        render(*args)
    except Exception as exc:  # noqa: BLE001 - seed §9: a failing tab must not take the page down
        show_error(f"The {name} tab", exc)


def show_performance_tracker() -> None:
    """The whole page: data source and freshness, sidebar, tabs (only the open one runs)."""
    settings = load_settings()
    url = settings.warehouse
    st.html(stylesheet())
    st.title("Performance Tracker")
    try:
        view = reader(url).view(wait=FIRST_COPY_WAIT_S)
    except WarehouseMissing as exc:
        st.warning(str(exc))
        return
    except WarehouseBusy as exc:
        st.info(f"{exc}. Reload in a moment.")
        return
    listed = portfolios(url, view.version)
    day = as_of(url, view.version)
    st.caption(freshness(view, day, url))
    if listed.empty:
        st.info("The warehouse holds no portfolio with NAV yet: run `make demo` or the pipeline.")
        return
    filters = sidebar(listed)
    if not filters.portfolio_ids:
        st.info("Select at least one portfolio in the sidebar.")
        return
    ctx = Context(url, view, listed, filters, settings.risk_free_rate)
    tabs = st.tabs(TABS, key="tab", on_change="rerun")
    for name, tab in zip(TABS, tabs):
        if tab.open is False:
            continue
        with tab:
            isolated(name, RENDERERS[name], ctx)


def freshness(view: View, day: pd.Timestamp | None, url: str) -> str:
    """The as-of line: the last NAV day shown, where it is read from and whether a pipeline run is writing."""
    text = f"Data as of {fmt(day, 'day')} · warehouse {view.warehouse.describe()}"
    if view.busy:
        text += " · the pipeline is writing the warehouse: this is the last copy, newer data appears after its step"
    return text


def sidebar(listed: pd.DataFrame) -> Filters:
    """Portfolio multi-select (preselected by `?portfolio=<name>` in the URL, repeatable; else the first), date
    range, variants (raw, each overlay, benchmark), timeframe."""
    names = dict(zip(listed["portfolio_id"].astype(int), listed["name"]))
    wanted = set(st.query_params.get_all("portfolio"))
    default = [i for i, name in names.items() if name in wanted] or list(names)[:1]
    ids = st.sidebar.multiselect("Portfolios", list(names), default=default, format_func=names.get,
                                 key="portfolios")
    chosen = listed[listed["portfolio_id"].isin(ids)] if ids else listed
    first, last = chosen["first_day"].min().date(), chosen["last_day"].max().date()
    picked = st.sidebar.date_input("Date range", value=(first, last), min_value=first, max_value=last,
                                   key="date_range")
    picked = tuple(picked) if isinstance(picked, (tuple, list)) else (picked,)
    start = max(picked[0], first) if picked else first
    end = min(picked[1], last) if len(picked) > 1 else last
    available = tracker.series_order({v for vs in chosen["variants"] for v in vs} | {BENCHMARK})
    series = st.sidebar.multiselect("Variants", available, default=available, key="variants",
                                    format_func=lambda s: "Benchmark" if s == BENCHMARK else
                                    tracker.series_label(s, ""))
    timeframe = st.sidebar.selectbox("Timeframe", list(TIMEFRAME_PERIOD), key="timeframe")
    return Filters(tuple(int(i) for i in ids), start, end, tuple(series), timeframe)


@dataclass(frozen=True)
class Context:
    url: str
    view: View
    listed: pd.DataFrame
    filters: Filters
    rf: float

    @property
    def version(self) -> str:
        return self.view.version

    def portfolios(self) -> list[pd.Series]:
        rows = self.listed.set_index("portfolio_id")
        return [rows.loc[i].rename(i) for i in self.filters.portfolio_ids if i in rows.index]

    def series_of(self, p: pd.Series) -> list[str]:
        """The selected series this portfolio has (its variants and the benchmark)."""
        mine = set(p["variants"]) | {BENCHMARK}
        return [s for s in self.filters.series if s in mine]


def heading(p: pd.Series) -> None:
    config = [("Benchmark", p["benchmark"]), ("Start", fmt(p["start_date"], "day")),
              ("Initial NAV", fmt(p["initial_nav"], "num")), ("As of", fmt(p["last_day"], "day"))]
    st.html(fragment("pt_heading", p["name"], p["description"], config))


def portfolio_sections(ctx: Context, render: Callable[[Context, pd.Series], None]) -> None:
    """A tab's content for each selected portfolio, each isolated from the others."""
    for p in ctx.portfolios():
        heading(p)
        isolated("This portfolio's section", render, ctx, p)


def range_nav(ctx: Context, p: pd.Series) -> pd.DataFrame:
    """The portfolio's selected series in the date range (with the anchor day before it)."""
    frame = nav(ctx.url, ctx.version, ctx.filters.portfolio_ids)
    mine = frame[(frame["portfolio_id"] == p.name) & frame["variant"].isin(ctx.series_of(p))]
    return tracker.in_range(mine, pd.Timestamp(ctx.filters.start), pd.Timestamp(ctx.filters.end))


def chart(figure: dict, key: str) -> None:
    st.plotly_chart(figure, theme=None, config=charts.PLOTLY_CONFIG, key=key)


# --------------------------------------------------------------------------- tabs


def dashboard_tab(ctx: Context) -> None:
    portfolio_sections(ctx, _dashboard)


def _dashboard(ctx: Context, p: pd.Series) -> None:
    f = ctx.filters
    series = ctx.series_of(p)
    metrics = range_metrics(ctx.url, ctx.version, int(p.name), tuple(series), f.start, f.end, ctx.rf)
    if metrics.empty:
        st.info("No return in the selected range.")
        return
    st.html(fragment("kpi_blocks", kpi_blocks(metrics, series, p["benchmark"])))
    paths = tracker.growth_paths(range_nav(ctx, p))
    frame = tracker.resample_path(paths, f.timeframe)
    chart(charts.cumulative_chart(frame["cumulative"], p["benchmark"]), f"cum-{p.name}")
    chart(charts.drawdown_chart(frame["drawdown"], p["benchmark"]), f"dd-{p.name}")


def comparison_tab(ctx: Context) -> None:
    portfolio_sections(ctx, _comparison)


def _comparison(ctx: Context, p: pd.Series) -> None:
    f = ctx.filters
    series = ctx.series_of(p)
    labels = {s: tracker.series_label(s, p["benchmark"]) for s in series}
    period = TIMEFRAME_PERIOD[f.timeframe]
    if period == "day":
        rows = range_nav(ctx, p)
        table = tracker.daily_table(rows[rows["trade_date"] >= pd.Timestamp(f.start)], series)
    else:
        rows = stored(ctx.url, ctx.version, ctx.filters.portfolio_ids)
        mine = rows[(rows["portfolio_id"] == p.name) & rows["period_end"].between(pd.Timestamp(f.start),
                                                                                  pd.Timestamp(f.end))]
        table = tracker.period_table(mine, period, series)
    st.markdown(f"**{f.timeframe.capitalize()} returns** (stored rows; best of each period marked)")
    st.html(fragment("pt_table", table_view(table, "pct", best=tracker.best_mask(table), signed=True,
                                            index_label="Period", labels=labels), scroll=True))
    metrics = range_metrics(ctx.url, ctx.version, int(p.name), tuple(series), f.start, f.end, ctx.rf)
    if metrics.empty:
        return
    sources = ", ".join(sorted({"stored" if s == "table" else "live" for s in metrics["source"]}))
    st.markdown(f"**Aggregate metrics, {f.start} – {f.end}** ({sources})")
    st.html(fragment("pt_table", _aggregate(metrics, series, labels)))
    all_rows = stored(ctx.url, ctx.version, ctx.filters.portfolio_ids)
    st.markdown("**Since inception, YTD, last 12 months and each year** (stored rows)")
    view, _ = comparison_views(all_rows[all_rows["portfolio_id"] == p.name],
                               last_year(ctx.url, ctx.version, int(p.name), p["last_day"].date(), ctx.rf), series,
                               p["benchmark"])
    st.html(fragment("pt_table", view))


def _aggregate(metrics: pd.DataFrame, series: list[str], labels: dict[str, str]) -> dict:
    """The aggregate table of a range (metrics x series, best marked)."""
    table = tracker.aggregate_table(metrics, series)
    values = table.drop(columns="best")
    shown = pd.DataFrame({c: [fmt(v, metric_kind(m)) for m, v in values[c].items()] for c in values.columns},
                         index=[METRIC_LABELS[m] for m in values.index])
    shown["Best"] = [", ".join(labels[s] for s in b.split(", ")) if b else "" for b in table["best"]]
    best = pd.DataFrame({c: [c in b.split(", ") for b in table["best"]] for c in values.columns}, index=shown.index)
    return table_view(shown, {c: "text" for c in shown.columns}, best=best, index_label="Metric", labels=labels)


def annual_tab(ctx: Context) -> None:
    portfolio_sections(ctx, _annual)


def _annual(ctx: Context, p: pd.Series) -> None:
    f = ctx.filters
    series = ctx.series_of(p)
    rows = stored(ctx.url, ctx.version, ctx.filters.portfolio_ids)
    mine = rows[(rows["portfolio_id"] == p.name) & (rows["period_start"].dt.year <= f.end.year)
                & (rows["period_end"].dt.year >= f.start.year)]
    annual = tracker.annual_table(mine, series)
    values = annual.drop(columns="note")
    st.html(fragment("pt_table", table_view(values, "pct", best=tracker.best_mask(values), signed=True,
                                            index_label="Year", badges=annual["note"].tolist(),
                                            labels={s: tracker.series_label(s, p["benchmark"]) for s in series})))


def monthly_tab(ctx: Context) -> None:
    portfolio_sections(ctx, _monthly)


def _monthly(ctx: Context, p: pd.Series) -> None:
    f = ctx.filters
    rows = stored(ctx.url, ctx.version, ctx.filters.portfolio_ids)
    mine = rows[(rows["portfolio_id"] == p.name) & (rows["period_start"].dt.year <= f.end.year)
                & (rows["period_end"].dt.year >= f.start.year)]
    tables = tracker.monthly_tables(mine, ctx.series_of(p))
    for s, table in tables.items():
        st.html(fragment("pt_h3", tracker.series_label(s, p["benchmark"])))
        st.html(fragment("pt_table", table_view(table, "pct", heat=True, index_label="Year")))


def signals_tab(ctx: Context) -> None:
    f = ctx.filters
    models = sorted({s for p in ctx.portfolios() for s in ctx.series_of(p)} - {tracker.RAW, BENCHMARK})
    if not models:
        st.info("Select an overlay variant in the sidebar to see its signals.")
        return
    history = signals(ctx.url, ctx.version, tuple(models))
    shown = history[history["trade_date"].between(pd.Timestamp(f.start), pd.Timestamp(f.end))]
    for model in models:
        isolated("This overlay's section", _signals, shown, model)


def _signals(history: pd.DataFrame, model: str) -> None:
    st.html(fragment("pt_h3", model))
    decision = tracker.latest_decision(history, model)
    if decision is None:
        st.info("No decision in the selected range.")
        return
    st.html(fragment("pt_facts", decision_facts(decision)))
    mine = history[history["model"] == model].set_index("trade_date")
    chart(charts.allocation_chart(mine[["actual_allocation"]].rename(columns={"actual_allocation": model}),
                                  mine[["target_allocation"]].rename(columns={"target_allocation": model})),
          f"alloc-{model}")
    chart(charts.impacts_chart(model, decision["impacts"]), f"impacts-{model}")
    changes = tracker.allocation_changes(history, model)
    st.markdown(f"**{len(changes)} allocation changes in the range**")
    st.html(fragment("pt_table", changes_view(changes), scroll=True))


def risk_tab(ctx: Context) -> None:
    portfolio_sections(ctx, _risk)


def _risk(ctx: Context, p: pd.Series) -> None:
    from tracking_pipeline.services.portfolio_risk import rebalance_threshold

    f = ctx.filters
    data = risk_data(ctx.url, ctx.version, int(p.name), f.start, f.end)
    snapshot = data["latest"]
    if snapshot is None:
        st.info("No risk snapshot in the selected range.")
        return
    st.markdown(f"**Snapshot of {fmt(snapshot['snapshot_date'], 'day')}**")
    st.html(fragment("pt_facts", risk_facts(snapshot)))
    sectors = tracker.sector_table(snapshot)
    try:
        threshold = rebalance_threshold()
    except ValueError as exc:
        st.warning(str(exc))
        threshold = None
    figures = risk_figures(data["history"], sectors, threshold)
    left, right = st.columns(2)
    for i, (key, figure) in enumerate(figures.items()):
        with (left if i % 2 == 0 else right):
            chart(figure, f"{key}-{p.name}")
    if len(data["stress"]):
        st.markdown(f"**Stress tests ({fmt(data['stress']['snapshot_date'].max(), 'day')})**")
        st.html(fragment("pt_table", stress_view(data["stress"])))
    st.markdown("**Sector exposure vs benchmark**")
    st.html(fragment("pt_table", sectors_view(sectors)))
    rows = stored(ctx.url, ctx.version, ctx.filters.portfolio_ids)
    st.markdown("**Drawdowns since inception** (stored rows)")
    st.html(fragment("pt_table", drawdown_view(rows[rows["portfolio_id"] == p.name], ctx.series_of(p),
                                               p["benchmark"])))
    rolling = data["rolling"]
    if len(rolling):
        labels = {s: tracker.series_label(s, p["benchmark"]) for s in ctx.series_of(p)}
        wide = rolling.pivot(index="trade_date", columns="variant", values="sharpe_252")
        wide = wide[[s for s in ctx.series_of(p) if s in wide.columns]]
        chart(charts.line_chart(wide, "Rolling 1-year Sharpe", ".2f", names=labels, dashed=(BENCHMARK,)),
              f"rolling-{p.name}")
    events = rebalancing_view(data["rebalancing"])
    if events is not None:
        st.markdown("**Rebalancing history**")
        st.html(fragment("pt_table", events, scroll=True))
    crisis_rows = tracker.crisis_table(crisis(ctx.url, ctx.version, int(p.name), ctx.rf),
                                       tracker.crisis_windows(), ctx.series_of(p))
    view = crisis_view(crisis_rows, ctx.series_of(p), p["benchmark"])
    if view is not None:
        st.markdown("**Crisis periods**")
        st.html(fragment("pt_table", view))


def export_tab(ctx: Context) -> None:
    f = ctx.filters
    frames, metric_rows = [], []
    for p in ctx.portfolios():
        frames.append(range_nav(ctx, p).assign(portfolio=p["name"]))
        metrics = range_metrics(ctx.url, ctx.version, int(p.name), tuple(ctx.series_of(p)), f.start, f.end, ctx.rf)
        if len(metrics):
            metric_rows.append(metrics.reset_index().assign(portfolio=p["name"]))
    navs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    navs = navs[navs["trade_date"] >= pd.Timestamp(f.start)] if len(navs) else navs
    metrics = pd.concat(metric_rows, ignore_index=True) if metric_rows else pd.DataFrame()
    st.markdown(f"{len(navs):,} NAV rows and {len(metrics):,} metric rows for the selection "
                f"({f.start} – {f.end}).")
    st.download_button("NAV (CSV)", csv_bytes(navs), file_name=f"nav_{f.start}_{f.end}.csv", mime="text/csv",
                       key="export-nav")
    st.download_button("Metrics (CSV)", csv_bytes(metrics), file_name=f"metrics_{f.start}_{f.end}.csv",
                       mime="text/csv", key="export-metrics")
    st.dataframe(metrics, hide_index=True)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as CSV; text cells starting like a spreadsheet formula are quoted with a leading apostrophe."""
    text = frame.copy()
    for column in text.columns[text.dtypes == object]:
        cells = text[column].astype("string")
        text[column] = cells.where(~cells.str.match(r"^[=+\-@]").fillna(False), "'" + cells)
    return text.to_csv(index=False).encode("utf-8")


def strategies_tab(ctx: Context) -> None:
    period = st.selectbox("Window", ["30d", "90d", "365d"], index=1, key="strategy_period")
    data = strategies(ctx.url, ctx.version, period)
    if data["strategy_table"].empty:
        st.info("No strategy metrics in the warehouse (the trade ledger is optional).")
        return
    for title, key in (("Strategies by stock type", "strategy_table"), ("Top performers", "top_performers"),
                       ("Outcome status", "outcomes"), ("Confidence calibration", "calibration"),
                       ("Open trades", "open_trades"), ("Volume-spike candidates", "candidates"),
                       ("System health", "health")):
        st.markdown(f"**{title}**")
        st.dataframe(data[key], hide_index=True)


RENDERERS: dict[str, Callable[[Context], None]] = {
    "Dashboard": dashboard_tab, "Comparison": comparison_tab, "Annual": annual_tab, "Monthly": monthly_tab,
    "Signals": signals_tab, "Risk": risk_tab, "Export": export_tab, "Strategies": strategies_tab,
}
