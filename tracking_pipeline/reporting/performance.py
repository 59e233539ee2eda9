"""The HTML performance report (`performance_dashboard`): one page per portfolio and an index, with plotly.js
written once beside them and a CSV export per portfolio, so the folder (or S3 prefix) opens with no network.

`read_inputs` reads a batch of portfolios' data from the warehouse in a few queries (the asset holds its warehouse
session only for that), `page_files` renders their pages from what was read (seed 000 §3's sections adapted to
tracking: header with a config badge, KPI cards per series, comparison and aggregate tables with the best value marked,
annual and monthly tables, crisis periods, cumulative / drawdown / allocation charts, drawdowns and rolling metrics,
signals, risk, CSV), `write_files` writes them. Every figure comes from the warehouse through
`services/tracker.py`: stored rows, or (last 12 months, crisis windows) the pipeline's metric code over stored NAV.
`report_files` does it batch by batch (`REPORT_BATCH` portfolios), so the step's memory is one batch's data and
pages whatever the number of books (200 books x 20 years: 1.0 GiB, where all at once took 4.8 GiB), and with more
than one batch renders batches in parallel processes (one per CPU).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from markupsafe import Markup

from tracking_pipeline.reporting import charts
from tracking_pipeline.reporting.html import METRIC_LABELS, fmt, kpi_cards, metric_kind, render, table_view
from tracking_pipeline.reporting.output import write_file
from tracking_pipeline.services import tracker
from tracking_pipeline.services.performance import BENCHMARK
from tracking_pipeline.warehouse import Warehouse

APP_URL_ENV = "TRACKING_APP_URL"
DEFAULT_APP_URL = "http://localhost:8501"
CHANGES_SHOWN = 60
"""Allocation changes listed per overlay on a page (the CSV holds them all through overlay_signals)."""
REPORT_PERIODS = ("all", "ytd", "year", "month")
"""The stored periods a page shows (and its metrics CSV holds); weeks and quarters are in the app."""
INDEX_METRICS = ("total_return", "cagr", "sharpe_ratio", "sortino_ratio", "max_drawdown", "volatility",
                 "calmar_ratio")
ROLLING_CHARTS = (("chart-rolling-sharpe", "sharpe_252", "Rolling 1-year Sharpe", ".2f"),
                  ("chart-rolling-vol", "volatility_63", "Rolling 3-month volatility", ".0%"))
"""The rolling statistics a page charts (id, `portfolio_rolling_metrics` column, title, axis format): the only ones
it reads."""
REPORT_BATCH = 25
"""Portfolios read and rendered together: bounds the report step's memory by a batch, not by the number of books."""


def app_url() -> str:
    """Where the Performance Tracker app is served (TRACKING_APP_URL; `make dashboard` serves the default)."""
    return os.environ.get(APP_URL_ENV, "").strip() or DEFAULT_APP_URL


def page_file(name: str, portfolio_id: int) -> str:
    """A portfolio page's file name: the name's letters and digits (names may hold any character), and the id
    when nothing is left."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()
    return f"{slug or f'portfolio_{portfolio_id}'}.html"


def index_location(root: str) -> str:
    """Where the report's index is: its absolute path for a folder, the s3:// URL for a prefix."""
    if root.startswith("s3://"):
        return f"{root.rstrip('/')}/index.html"
    return str((Path(root) / "index.html").resolve())


@lru_cache(maxsize=1)
def plotly_bundle() -> tuple[str, bytes]:
    """plotly.js as shipped by the plotly package, and its versioned file name."""
    import plotly.offline

    return f"plotly-{plotly.offline.get_plotlyjs_version()}.min.js", plotly.offline.get_plotlyjs().encode("utf-8")


@dataclass
class ReportFile:
    name: str
    body: bytes
    content_type: str
    kind: str = "page"


@dataclass
class ReportInputs:
    """Everything the report shows, read from the warehouse in one session."""

    portfolios: pd.DataFrame
    nav: pd.DataFrame
    metrics: pd.DataFrame
    windows: pd.DataFrame
    measured: pd.DataFrame
    signals: pd.DataFrame
    snapshots: pd.DataFrame
    latest: dict[int, dict]
    stress: pd.DataFrame
    rebalancing: pd.DataFrame
    rolling: pd.DataFrame
    as_of: pd.Timestamp | None = None
    _parts: dict[str, dict[int, pd.DataFrame]] = field(default_factory=dict, repr=False)
    _csv: dict[str, tuple[dict[int, pl.DataFrame], pl.DataFrame]] = field(default_factory=dict, repr=False)
    _overlays: dict[str, dict[str, Any] | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        """Text columns as Python strings: a page makes hundreds of small selections of its portfolio's rows, which
        pandas' Arrow-backed strings make about a fifth slower."""
        for name, frame in list(vars(self).items()):
            if isinstance(frame, pd.DataFrame):
                text = {c: object for c, kind in frame.dtypes.items() if isinstance(kind, pd.StringDtype)}
                if text:
                    setattr(self, name, frame.astype(text))

    def part(self, name: str, portfolio_id: int) -> pd.DataFrame:
        """One portfolio's rows of one of the frames (each frame is split by portfolio once)."""
        frame = getattr(self, name)
        if name not in self._parts:
            self._parts[name] = {int(k): g for k, g in frame.groupby("portfolio_id", sort=False)} if len(frame) else {}
        return self._parts[name].get(int(portfolio_id), frame.iloc[0:0])

    def csv(self, name: str, portfolio_id: int) -> bytes:
        """One portfolio's rows of one of the frames as CSV (each frame goes to polars once, then is split)."""
        if name not in self._csv:
            table = _csv_table(getattr(self, name))
            parts = table.partition_by("portfolio_id", as_dict=True, maintain_order=True) if len(table) else {}
            self._csv[name] = ({int(k[0]): g for k, g in parts.items()}, table.clear())
        parts, empty = self._csv[name]
        return parts.get(int(portfolio_id), empty).write_csv().encode("utf-8")

    def overlay(self, model: str, first_day: pd.Timestamp) -> dict[str, Any] | None:
        """An overlay's latest decision and its allocation changes since `first_day` (the page's first NAV day),
        with their page views. The decision is the model's, and the newest `CHANGES_SHOWN` changes are the same
        for every page with more changes than that (only the first change in range loses its 'from'), so both are
        made once per batch; a page with fewer gets its own table."""
        if model not in self._overlays:
            decision = tracker.latest_decision(self.signals, model)
            mine = self.signals[self.signals["model"] == model].sort_values("trade_date")
            trades = mine["trade_required"].fillna(False).astype(bool).to_numpy()
            self._overlays[model] = None if decision is None else {
                "signals": mine, "trades_from": np.cumsum(trades[::-1])[::-1], "facts": decision_facts(decision),
                "impacts": charts.impacts_chart(model, decision["impacts"]), "views": {}}
        overlay = self._overlays[model]
        if overlay is None:
            return None
        mine = overlay["signals"]
        first = int(mine["trade_date"].searchsorted(first_day))
        n_changes = int(overlay["trades_from"][first]) if first < len(mine) else 0
        key = None if n_changes > CHANGES_SHOWN else first_day
        if key not in overlay["views"]:
            changes = tracker.allocation_changes(mine.iloc[first:], model)
            overlay["views"][key] = changes_view(changes, CHANGES_SHOWN)
        return {"facts": overlay["facts"], "impacts": overlay["impacts"], "changes": overlay["views"][key],
                "n_changes": n_changes, "shown": min(n_changes, CHANGES_SHOWN)}


def read_inputs(wh: Warehouse, rf_annual: float, portfolios: pd.DataFrame | None = None) -> ReportInputs:
    """The report's data for `portfolios` (rows of `tracker.portfolio_list`; default every active portfolio with
    NAV), in a few queries whatever their number."""
    portfolios = tracker.portfolio_list(wh) if portfolios is None else portfolios
    ids = portfolios["portfolio_id"].tolist()
    windows = tracker.crisis_windows()
    last_year = portfolios[["portfolio_id", "last_day"]].assign(
        window="Last 12 months", after=portfolios["last_day"] - pd.DateOffset(years=1),
        through=portfolios["last_day"])
    nav, series = tracker.nav_and_returns(wh, portfolios)
    measured = pd.concat([tracker.window_metrics(series, windows, rf_annual),
                          tracker.window_metrics(series, last_year, rf_annual)], ignore_index=True)
    models = sorted({v for vs in portfolios["variants"] for v in vs} - {tracker.RAW, BENCHMARK})
    return ReportInputs(
        portfolios=portfolios, nav=nav,
        metrics=tracker.stored_metrics(wh, ids, REPORT_PERIODS),
        windows=windows, measured=measured, signals=tracker.overlay_history(wh, models),
        snapshots=tracker.snapshot_history(wh, ids), latest=tracker.latest_snapshots(wh, ids),
        stress=tracker.stress_tests(wh, ids), rebalancing=tracker.rebalancing_history(wh, ids),
        rolling=tracker.rolling_history(wh, ids, statistics=[c for _, c, _, _ in ROLLING_CHARTS]),
        as_of=tracker.as_of(wh))


# --------------------------------------------------------------------------- page sections


def _labels(series: list[str], benchmark: str) -> dict[str, str]:
    return {s: tracker.series_label(s, benchmark) for s in series}


def kpi_blocks(metrics: pd.DataFrame, series: list[str], benchmark: str) -> list[dict[str, Any]]:
    """The six KPI cards per series from one metrics frame indexed by series (with `source`, `period_start`,
    `period_end`; `period_type` for stored rows)."""
    blocks = []
    for s in series:
        if s not in metrics.index:
            continue
        row = metrics.loc[s]
        source = "stored" if row.get("source", "table") == "table" else "live"
        kind = row.get("period_type")
        note = (f"portfolio_metrics row, period '{kind}'" if source == "stored"
                else "computed from portfolio_daily_nav by the pipeline's metric code")
        blocks.append({"series": s, "label": tracker.series_label(s, benchmark), "source": source,
                       "source_note": note, "period": f"{fmt(row['period_start'], 'day')} – "
                                                     f"{fmt(row['period_end'], 'day')}",
                       "cards": kpi_cards(row.to_dict(), tracker.KPIS)})
    return blocks


def comparison_views(rows: pd.DataFrame, last_year: pd.DataFrame, series: list[str],
                     benchmark: str) -> tuple[dict, dict]:
    """The comparison (periods x series, best marked) and aggregate (metrics x series + best) tables."""
    labels = _labels(series, benchmark)
    comparison = tracker.comparison_table(rows, last_year, series)
    comparison_view = table_view(comparison, "pct", best=tracker.best_mask(comparison), signed=True,
                                 index_label="Period", labels=labels)
    stored_all = rows[rows["period_type"] == "all"].set_index("variant")
    aggregate = tracker.aggregate_table(stored_all, series)
    values = aggregate.drop(columns="best")
    shown = pd.DataFrame({c: [fmt(v, metric_kind(m)) for m, v in values[c].items()] for c in values.columns},
                         index=[METRIC_LABELS[m] for m in values.index])
    shown["Best"] = [", ".join(labels[s] for s in b.split(", ")) if b else "" for b in aggregate["best"]]
    columns = list(shown.columns)
    marks = np.zeros(shown.shape, dtype=bool)
    for i, b in enumerate(aggregate["best"]):
        for s in filter(None, b.split(", ")):
            marks[i, columns.index(s)] = True
    best = pd.DataFrame(marks, index=shown.index, columns=shown.columns)
    kinds = {c: "text" for c in shown.columns}
    return comparison_view, table_view(shown, kinds, best=best, index_label="Metric", labels=labels)


def annual_view(rows: pd.DataFrame, series: list[str], benchmark: str) -> dict:
    annual = tracker.annual_table(rows, series)
    values = annual.drop(columns="note")
    return table_view(values, "pct", best=tracker.best_mask(values), signed=True, index_label="Year",
                      labels=_labels(series, benchmark), badges=annual["note"].tolist())


def monthly_views(rows: pd.DataFrame, series: list[str], benchmark: str) -> list[dict]:
    tables = tracker.monthly_tables(rows, series)
    return [{"label": tracker.series_label(s, benchmark),
             "table": table_view(tables[s], "pct", heat=True, index_label="Year")} for s in series]


def crisis_view(crisis: pd.DataFrame, series: list[str], benchmark: str) -> dict | None:
    """Crisis windows x series (one row each): return, max drawdown, the benchmark's return and the difference;
    the window's dates as the badge of its first row, the best return of each window marked."""
    if crisis.empty:
        return None
    table = pd.DataFrame({"series": [tracker.series_label(s, benchmark) for s in crisis["variant"]],
                          "total_return": crisis["total_return"].to_numpy(),
                          "max_drawdown": crisis["max_drawdown"].to_numpy(),
                          "benchmark_return": crisis["benchmark_return"].to_numpy(),
                          "vs_benchmark": crisis["vs_benchmark"].to_numpy()}, index=crisis["window"].to_numpy())
    first = ~crisis["window"].duplicated().to_numpy()
    badges = [f"{fmt(a, 'day')} → {fmt(t, 'day')}" if f else ""
              for a, t, f in zip(crisis["after"], crisis["through"], first)]
    best = crisis.groupby("window", sort=False)["total_return"].transform("max").eq(crisis["total_return"])
    marks = pd.DataFrame(False, index=table.index, columns=table.columns)
    marks["total_return"] = best.to_numpy()
    return table_view(table, {"series": "text", "total_return": "pct", "max_drawdown": "pct",
                              "benchmark_return": "pct", "vs_benchmark": "spct"}, best=marks,
                      signed=["total_return", "vs_benchmark"], index_label="Window", badges=badges,
                      labels={"series": "Series", "total_return": "Return", "max_drawdown": "Max drawdown",
                              "benchmark_return": f"{benchmark} return", "vs_benchmark": f"vs {benchmark}"})


def drawdown_view(rows: pd.DataFrame, series: list[str], benchmark: str) -> dict:
    table = tracker.drawdown_table(rows, series)
    table.index = [tracker.series_label(s, benchmark) for s in table.index]
    return table_view(table, {c: metric_kind(c) for c in table.columns}, index_label="Series",
                      labels=METRIC_LABELS)


def decision_facts(decision: dict[str, Any]) -> list[dict[str, str]]:
    """The latest decision of an overlay as labelled facts."""
    signals = decision["signals"]
    facts = [{"label": "Decision of", "text": fmt(decision["trade_date"], "day"), "css": ""},
             {"label": "Target equity", "text": fmt(decision["target"]), "css": ""},
             {"label": "Actual equity", "text": fmt(decision["actual"]), "css": ""},
             {"label": "Trade", "text": "yes" if decision["trade_required"] else "no", "css": ""}]
    if "base_allocation" in signals:
        facts.append({"label": "Base allocation", "text": fmt(signals["base_allocation"]), "css": ""})
    if "source" in signals:
        facts.append({"label": "Source", "text": str(signals["source"]), "css": ""})
    return facts


def changes_view(changes: pd.DataFrame, limit: int | None = None) -> dict:
    shown = changes.head(limit) if limit else changes
    return table_view(shown.set_index("trade_date")[["from", "to", "change", "target"]],
                      {"from": "pct", "to": "pct", "change": "spct", "target": "pct"}, signed=True,
                      index_label="Day", labels={"from": "From", "to": "To", "change": "Change",
                                                  "target": "Target"})


def risk_facts(snapshot: dict[str, Any]) -> list[dict[str, str]]:
    """The latest snapshot's betas, concentration, volatility, risk level and drift as labelled facts."""
    rebalance = snapshot.get("rebalance_recommended")
    facts = [
        ("Weighted beta", fmt(snapshot.get("market_beta_weighted"), "num"), ""),
        ("Direct beta", fmt(snapshot.get("market_beta_direct"), "num"), ""),
        ("Beta R²", fmt(snapshot.get("market_beta_r_squared"), "num"), ""),
        ("HHI", fmt(snapshot.get("hhi"), "int"), ""),
        ("Effective positions", fmt(snapshot.get("effective_num_positions"), "num", 1), ""),
        ("Top 3 / top 10", f"{fmt(snapshot.get('top_3_concentration'))} / "
                           f"{fmt(snapshot.get('top_10_concentration'))}", ""),
        ("Realized vol 21d / 63d", f"{fmt(snapshot.get('realized_volatility_21d'))} / "
                                   f"{fmt(snapshot.get('realized_volatility_63d'))}", ""),
        ("Expected vol 21d (HAR)", fmt(snapshot.get("expected_volatility_21d")), ""),
        ("Volatility trend", fmt(snapshot.get("volatility_trend"), "text"), ""),
        ("Vol percentile (1y)", fmt(snapshot.get("volatility_percentile"), "pct", 0), ""),
        ("Risk level", fmt(snapshot.get("risk_level"), "text"), ""),
        ("Max drift", f"{fmt(snapshot.get('max_allocation_drift'))} "
                      f"({fmt(snapshot.get('max_drift_ticker'), 'text')})", ""),
        ("Rebalance", "recommended" if rebalance else "not needed" if rebalance is not None else "–",
         "negative" if rebalance else ""),
    ]
    return [{"label": label, "text": text, "css": css} for label, text, css in facts if "risk_level" in snapshot
            or label != "Risk level"]


def stress_view(stress: pd.DataFrame) -> dict:
    table = stress.set_index("scenario")[["market_shock", "expected_return", "expected_pnl"]]
    return table_view(table, {"market_shock": "pct", "expected_return": "pct", "expected_pnl": "num"}, signed=True,
                      index_label="Scenario", labels={"market_shock": "Market move",
                                                      "expected_return": "Portfolio (expected)",
                                                      "expected_pnl": "P&L on NAV"})


def sectors_view(sectors: pd.DataFrame) -> dict:
    return table_view(sectors.set_index("sector"), {"portfolio": "pct", "benchmark": "pct", "diff": "spct"},
                      signed=["diff"], index_label="Sector",
                      labels={"portfolio": "Portfolio", "benchmark": "Benchmark", "diff": "Difference"})


def rebalancing_view(events: pd.DataFrame) -> dict | None:
    if events.empty:
        return None
    columns = [c for c in ("event_type", "max_drift", "turnover", "traded_value", "estimated_cost", "nav")
               if c in events.columns]
    return table_view(events.set_index("event_date")[columns],
                      {"event_type": "text", "max_drift": "pct", "turnover": "pct", "traded_value": "num",
                       "estimated_cost": "num", "nav": "num"}, index_label="Day",
                      labels={"event_type": "Event", "max_drift": "Max drift", "turnover": "Turnover",
                              "traded_value": "Traded value", "estimated_cost": "Est. cost", "nav": "NAV"})


def risk_figures(history: pd.DataFrame, sectors: pd.DataFrame, threshold: float | None) -> dict[str, dict]:
    """Betas, realized vs expected volatility, sectors, concentration and drift over time."""
    h = history.set_index("snapshot_date")
    figures = {
        "chart-beta": charts.line_chart(h[["market_beta_weighted", "market_beta_direct"]], "Market beta", ".2f",
                                        names={"market_beta_weighted": "Weighted (positions)",
                                               "market_beta_direct": "Direct (portfolio OLS)"}),
        "chart-volatility": charts.line_chart(
            h[["realized_volatility_21d", "realized_volatility_63d", "expected_volatility_21d"]],
            "Realized vs expected volatility", ".0%",
            names={"realized_volatility_21d": "Realized 21d", "realized_volatility_63d": "Realized 63d",
                   "expected_volatility_21d": "Expected 21d (HAR)"}, dashed=("expected_volatility_21d",)),
        "chart-sectors": charts.sector_chart(sectors),
        "chart-concentration": charts.line_chart(h[["top_3_concentration", "top_10_concentration"]],
                                                 "Concentration", ".0%",
                                                 names={"top_3_concentration": "Top 3",
                                                        "top_10_concentration": "Top 10"}),
        "chart-drift": charts.line_chart(h[["max_allocation_drift"]], "Largest drift from target weights", ".0%",
                                         names={"max_allocation_drift": "Max drift"},
                                         shapes=[charts.threshold_line(threshold)] if threshold else None),
    }
    return figures


def portfolio_context(p: pd.Series, inp: ReportInputs, generated: str, plotly_js: str, url: str,
                      csv: list[tuple[str, str]], threshold: float | None) -> dict[str, Any]:
    """Everything one portfolio page shows."""
    pid, benchmark = int(p["portfolio_id"]), str(p["benchmark"])
    series = list(p["variants"]) + [BENCHMARK]
    models = [s for s in p["variants"] if s != tracker.RAW]
    rows = inp.part("metrics", pid)
    nav = inp.part("nav", pid)
    paths = tracker.growth_paths(nav)
    measured = inp.part("measured", pid)
    stored_all = rows[rows["period_type"] == "all"].set_index("variant").assign(source="table")
    comparison, aggregate = comparison_views(rows, measured[measured["window"] == "Last 12 months"], series,
                                             benchmark)
    crisis = tracker.crisis_table(measured[measured["window"] != "Last 12 months"], inp.windows, series)
    figures: dict[str, dict] = {
        "chart-cumulative": charts.cumulative_chart(paths["cumulative"], benchmark),
        "chart-drawdown": charts.drawdown_chart(paths["drawdown"], benchmark),
    }
    if models:
        allocation = tracker.by_day(nav[nav["variant"].isin(models)], "equity_allocation")[models]
        figures["chart-allocation"] = charts.allocation_chart(allocation)
    rolling = inp.part("rolling", pid)
    if not rolling.empty:
        labels = _labels(series, benchmark)
        for fig_id, column, title, form in ROLLING_CHARTS:
            wide = tracker.by_day(rolling, column)
            wide = wide[[s for s in series if s in wide.columns]]
            figures[fig_id] = charts.line_chart(wide, title, form, names=labels, dashed=(BENCHMARK,))
    signals = []
    for model in models:
        overlay = inp.overlay(model, nav["trade_date"].min())
        if overlay is None:
            continue
        chart_id = f"chart-impacts-{len(signals)}"
        figures[chart_id] = overlay["impacts"]
        signals.append({"model": model, "facts": overlay["facts"], "chart": chart_id, "changes": overlay["changes"],
                        "n_changes": overlay["n_changes"], "shown": overlay["shown"]})
    snapshot = inp.latest.get(pid)
    risk: dict[str, Any] = {"day": None, "facts": [], "stress": None, "stress_day": None, "sectors": None,
                            "rebalancing": None}
    if snapshot is not None:
        sectors = tracker.sector_table(snapshot)
        stress = inp.part("stress", pid)
        history = inp.part("snapshots", pid)
        figures.update(risk_figures(history, sectors, threshold))
        risk.update(day=fmt(snapshot["snapshot_date"], "day"), facts=risk_facts(snapshot),
                    stress=stress_view(stress), sectors=sectors_view(sectors),
                    stress_day=fmt(stress["snapshot_date"].max(), "day") if len(stress) else None,
                    rebalancing=rebalancing_view(inp.part("rebalancing", pid)))
    config = [("Variants", ", ".join(tracker.series_label(s, benchmark) for s in p["variants"])),
              ("Benchmark", benchmark), ("Start", fmt(p["start_date"], "day")),
              ("Initial NAV", fmt(p["initial_nav"], "num")), ("As of", fmt(p["last_day"], "day"))]
    if p.get("source"):
        config.insert(0, ("Source", str(p["source"])))
    return {
        "name": p["name"], "description": p["description"], "config": config, "generated": generated,
        "plotly_js": plotly_js, "app_url": url, "csv": csv,
        "kpis": kpi_blocks(stored_all, series, benchmark), "comparison": comparison, "aggregate": aggregate,
        "annual": annual_view(rows, series, benchmark), "monthly": monthly_views(rows, series, benchmark),
        "crisis": crisis_view(crisis, series, benchmark), "drawdowns": drawdown_view(rows, series, benchmark),
        "has_allocation": "chart-allocation" in figures, "has_rolling": "chart-rolling-sharpe" in figures,
        "signals": signals, "risk": risk, "figures_json": Markup(charts.embed_json(figures)),
    }


def index_context(portfolios: pd.DataFrame, stored: pd.DataFrame, as_of: pd.Timestamp | None, files: dict[int, str],
                  generated: str, url: str) -> dict[str, Any]:
    """The index: every portfolio x series with its since-inception KPIs (`stored`: their `all` metric rows), best
    per portfolio marked."""
    rows = []
    for p in portfolios.itertuples(index=False):
        series = list(p.variants) + [BENCHMARK]
        mine = stored[stored["portfolio_id"] == p.portfolio_id].set_index("variant").reindex(series)
        values = mine[list(INDEX_METRICS)].astype(float)
        lower = values.columns.isin(tracker.LOWER_IS_BETTER)
        best = values.eq(np.where(lower, values.min(), values.max())) & values.notna()
        for i, s in enumerate(series):
            rows.append({"portfolio": p.name, "file": files[p.portfolio_id], "first": i == 0,
                         "series": tracker.series_label(s, p.benchmark), "is_benchmark": s == BENCHMARK,
                         "start": fmt(mine.at[s, "period_start"], "day"), "end": fmt(mine.at[s, "period_end"], "day"),
                         "cells": [{"text": fmt(values.at[s, c], metric_kind(c)),
                                    "css": "best" if bool(best.at[s, c]) else ""} for c in INDEX_METRICS]})
    return {"rows": rows, "columns": [METRIC_LABELS[c] for c in INDEX_METRICS], "generated": generated,
            "as_of": fmt(as_of, "day"), "app_url": url}


def csv_files(p: pd.Series, inp: ReportInputs, stem: str) -> list[ReportFile]:
    """The portfolio's NAV (every series) and stored metric rows as CSV."""
    pid = int(p["portfolio_id"])
    return [ReportFile(f"{stem}_{name}.csv", inp.csv(name, pid), "text/csv; charset=utf-8", "csv")
            for name in ("nav", "metrics")]


def _csv_table(frame: pd.DataFrame) -> pl.DataFrame:
    """A frame as polars with its timestamps as dates (YYYY-MM-DD in the CSV), written by polars (pandas' writer
    was the slow part of a report)."""
    return pl.from_pandas(frame.reset_index(drop=True)).with_columns(pl.col(pl.Datetime).dt.date())


def page_names(portfolios: pd.DataFrame) -> dict[int, str]:
    """Each portfolio's page file name, unique (the id appended where two names give the same file)."""
    files: dict[int, str] = {}
    for pid, name in zip(portfolios["portfolio_id"].astype("int64"), portfolios["name"]):
        file = page_file(name, int(pid))
        while file in files.values():
            file = file.replace(".html", f"_{int(pid)}.html")
        files[int(pid)] = file
    return files


def page_files(inp: ReportInputs, files: dict[int, str], generated: str, plotly_js: str, url: str,
               threshold: float | None) -> Iterator[ReportFile]:
    """The page and two CSVs of every portfolio of `inp`, in order."""
    for _, p in inp.portfolios.iterrows():
        name = files[int(p["portfolio_id"])]
        csv = csv_files(p, inp, name.removesuffix(".html"))
        page = render("portfolio.html.j2", **portfolio_context(
            p, inp, generated, plotly_js, url, [("NAV", csv[0].name), ("Metrics", csv[1].name)], threshold))
        yield ReportFile(name, page.encode("utf-8"), "text/html; charset=utf-8")
        yield from csv


def report_files(wh: Warehouse, rf_annual: float, generated: str | None = None, url: str | None = None,
                 threshold: float | None = None, batch: int = REPORT_BATCH,
                 workers: int = 1) -> Iterator[ReportFile]:
    """Every file of the report, made as they are written: plotly.js, then a page and two CSVs per portfolio,
    `batch` portfolios read (each in its own warehouse session) and rendered at a time, the index last. With more
    than one batch, up to `workers` spawned processes read and render batches side by side, each with a connection
    of its own, and the files still come in portfolio order (a script that calls this with workers > 1 needs the
    `if __name__ == "__main__":` guard of spawned multiprocessing). The files depend on neither `batch` nor
    `workers`."""
    generated = generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    url = app_url() if url is None else url
    js_name, js = plotly_bundle()
    yield ReportFile(js_name, js, "application/javascript; charset=utf-8", "script")
    with wh.session() as held:
        portfolios = tracker.portfolio_list(held)
        as_of = tracker.as_of(held)
    files = page_names(portfolios)
    batches = [portfolios.iloc[lo:lo + max(batch, 1)] for lo in range(0, len(portfolios), max(batch, 1))]
    stored = []
    for pages, metrics in _rendered(wh, rf_annual, batches, files, generated, js_name, url, threshold,
                                    workers=workers):
        yield from pages
        stored.append(metrics)
    index = render("index.html.j2", **index_context(
        portfolios, pd.concat(stored, ignore_index=True) if stored else pd.DataFrame(columns=["portfolio_id"]),
        as_of, files, generated, url))
    yield ReportFile("index.html", index.encode("utf-8"), "text/html; charset=utf-8")


def batch_files(wh: Warehouse, rf_annual: float, portfolios: pd.DataFrame, files: dict[int, str], generated: str,
                js_name: str, url: str, threshold: float | None) -> tuple[list[ReportFile], pd.DataFrame]:
    """One batch: its portfolios' pages and CSVs, and their stored `all` metric rows (for the index)."""
    with wh.session(read_only=True) as held:  # the workers' reads run side by side, on DuckDB too
        inp = read_inputs(held, rf_annual, portfolios)
    pages = list(page_files(inp, files, generated, js_name, url, threshold))
    return pages, inp.metrics[inp.metrics["period_type"] == "all"]


def worker_count(batches: int, workers: int) -> int:
    """Processes that render the report's batches: one per batch up to `workers`; 1 (this process) in a daemonic
    process, which may not have children (a Celery worker's)."""
    if multiprocessing.current_process().daemon:
        return 1
    return max(min(workers, batches), 1)


def _rendered(wh: Warehouse, rf_annual: float, batches: list[pd.DataFrame], *args: Any,
              workers: int) -> Iterator[tuple[list[ReportFile], pd.DataFrame]]:
    """`batch_files` of every batch, in order: here, or in `worker_count` spawned processes (a fork would copy the
    step's threads and locks)."""
    count = worker_count(len(batches), workers)
    if count <= 1:
        for portfolios in batches:
            yield batch_files(wh, rf_annual, portfolios, *args)
        return
    with ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: deque[Future] = deque()
        for portfolios in batches:  # at most one batch ahead of the workers waits in memory
            pending.append(pool.submit(batch_files, wh, rf_annual, portfolios, *args))
            if len(pending) > count:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass(frozen=True)
class Written:
    """A report file once written: its name, kind, size and location."""

    name: str
    kind: str
    size: int
    location: str


def write_files(root: str, files: Iterable[ReportFile], client: Any = None) -> list[Written]:
    """Write the files under the reports folder or S3 prefix as they come (plotly.js only when absent), keeping
    none of them; returns what was written, in order (the index last)."""
    return [Written(f.name, f.kind, len(f.body), write_file(root, f.name, f.body, f.content_type, client,
                                                            unless_same_size=f.kind == "script"))
            for f in files]
