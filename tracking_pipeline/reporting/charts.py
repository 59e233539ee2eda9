"""Plotly figures of the Performance Tracker, as plain dicts (`{"data": [...], "layout": {...}}`): the Streamlit app
passes them to `st.plotly_chart`, the HTML report embeds them as JSON drawn by plotly.js shipped beside the pages.

Seed 000 §3's chart styles: the strategy line #0284c7, the benchmark #94a3b8 dotted, drawdowns as filled areas,
allocations filled from zero; axes in the cards' units (returns and drawdowns as percentages, allocations as
percentages, betas and ratios as numbers) with Plotly's round ticks. Every text taken from the data (series names,
sectors, factors) goes through `plotly_text`, since Plotly interprets a few HTML tags in labels.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd

from tracking_pipeline.services.tracker import RAW, series_label
from tracking_pipeline.services.performance import BENCHMARK

FONT = "system-ui, -apple-system, 'Segoe UI', Arial, sans-serif"
STRATEGY, BENCHMARK_COLOUR, DANGER, ALLOCATION = "#0284c7", "#94a3b8", "#ef4444", "#3b82f6"
OVERLAY_COLOURS = ["#10b981", "#f59e0b", "#8b5cf6", "#ec4899", "#14b8a6", "#a16207"]
RANGE_BUTTONS = [
    {"step": "all", "label": "Full"},
    {"count": 1, "step": "year", "stepmode": "todate", "label": "YTD"},
    {"count": 1, "step": "year", "stepmode": "backward", "label": "1Y"},
    {"count": 3, "step": "year", "stepmode": "backward", "label": "3Y"},
]
"""The range buttons of the time charts (seed 000's Full History / OOS buttons, adapted to tracking)."""
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True,
                 "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


def plotly_text(text: object) -> str:
    """A label from the data as Plotly text: its `<`, `>` and `&` as entities, so a name holding markup is shown
    as written (Plotly renders a few tags such as <a> and <b> in labels)."""
    return html.escape(str(text), quote=False)


def colours(series: Sequence[str]) -> dict[str, str]:
    """A colour per series: raw the strategy blue, the overlays in turn, the benchmark grey."""
    overlays = iter(OVERLAY_COLOURS * 4)
    return {s: STRATEGY if s == RAW else BENCHMARK_COLOUR if s == BENCHMARK else next(overlays) for s in series}


def _fill(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def values(data: pd.Series | np.ndarray, digits: int = 5) -> list[float | None]:
    """Rounded numbers for a trace (NaN and inf as null: a gap in the line)."""
    a = np.asarray(data, dtype=float)
    out = np.round(a, digits).tolist()
    finite = np.isfinite(a)
    if not finite.all():
        for i in np.flatnonzero(~finite):
            out[i] = None
    return out


_last_dates: list[tuple[np.ndarray, list[str]]] = [(np.array([], dtype="datetime64[D]"), [])]
"""The last (days, ISO dates) made, as one pair read and replaced at once (the app renders in threads)."""


def dates(index: pd.Index) -> list[str]:
    """ISO dates of a DatetimeIndex (the x of a time chart), formatted by numpy (5x faster than strftime); the
    last list made is given again for the same days (a page's charts share their x axes)."""
    days = pd.DatetimeIndex(index).to_numpy("datetime64[D]")
    seen, made = _last_dates[0]
    if np.array_equal(seen, days):
        return made
    made = np.datetime_as_string(days, unit="D").tolist()
    _last_dates[0] = (days, made)
    return made


def layout(title: str, y_format: str | None = ".0%", height: int = 360, range_buttons: bool = False,
           **extra: Any) -> dict[str, Any]:
    """The common layout: white background, light grid, legend on top, unified hover, seed typography."""
    xaxis: dict[str, Any] = {"type": "date", "gridcolor": "#e2e8f0", "linecolor": "#e2e8f0"}
    if range_buttons:
        xaxis["rangeselector"] = {"buttons": RANGE_BUTTONS, "x": 1, "xanchor": "right", "y": 1.02,
                                  "yanchor": "bottom", "bgcolor": "#f8fafc", "activecolor": "#dbeafe",
                                  "font": {"size": 11}}
    yaxis: dict[str, Any] = {"gridcolor": "#e2e8f0", "zerolinecolor": "#cbd5e1"}
    if y_format:
        yaxis["tickformat"] = y_format
        yaxis["hoverformat"] = ".2%" if "%" in y_format else ".2f"
        yaxis["tickformat"] = ".1~%" if y_format == ".0%" else y_format
    out = {"title": {"text": plotly_text(title), "font": {"size": 14, "color": "#0f172a"}, "x": 0, "xanchor": "left",
                     "y": 1, "yref": "container", "yanchor": "top", "pad": {"t": 10}},
           "height": height, "margin": {"l": 56, "r": 16, "t": 76, "b": 36},
           "font": {"family": FONT, "size": 12, "color": "#334155"}, "paper_bgcolor": "#ffffff",
           "plot_bgcolor": "#ffffff", "hovermode": "x unified", "xaxis": xaxis, "yaxis": yaxis,
           "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"}}
    out.update(extra)
    return out


def _line(x: list[str], y: list, name: str, colour: str, dash: str | None = None, width: float = 2.0,
          fill: str | None = None) -> dict[str, Any]:
    trace: dict[str, Any] = {"type": "scatter", "mode": "lines", "x": x, "y": y, "name": plotly_text(name),
                             "line": {"color": colour, "width": width}}
    if dash:
        trace["line"]["dash"] = dash
    if fill:
        trace.update(fill="tozeroy", fillcolor=fill)
    return trace


def _series_traces(frame: pd.DataFrame, benchmark: str, fill_alpha: float | None = None) -> list[dict[str, Any]]:
    """One line per column (a series name) of a days-indexed frame, benchmark dotted."""
    x = dates(frame.index)
    palette = colours(list(frame.columns))
    traces = []
    for column in frame.columns:
        is_bench = column == BENCHMARK
        traces.append(_line(x, values(frame[column]), series_label(column, benchmark), palette[column],
                            dash="dot" if is_bench else None, width=1.5 if is_bench else 2.0,
                            fill=None if fill_alpha is None else _fill(palette[column], fill_alpha)))
    return traces


def cumulative_chart(cumulative: pd.DataFrame, benchmark: str) -> dict[str, Any]:
    """Cumulative return of each series (days x series, rebased at the first day), benchmark dotted, with the
    Full / YTD / 1Y / 3Y range buttons."""
    return {"data": _series_traces(cumulative, benchmark),
            "layout": layout("Cumulative return", ".0%", 400, range_buttons=True)}


def drawdown_chart(drawdown: pd.DataFrame, benchmark: str) -> dict[str, Any]:
    """Drawdown from the running peak of each series as filled areas."""
    return {"data": _series_traces(drawdown, benchmark, fill_alpha=0.08),
            "layout": layout("Drawdown", ".0%", 300, range_buttons=True)}


def allocation_chart(allocation: pd.DataFrame, targets: pd.DataFrame | None = None) -> dict[str, Any]:
    """Equity allocation of each overlay (days x model) filled from zero, optionally its target dotted."""
    x = dates(allocation.index)
    palette = dict(zip(allocation.columns, [ALLOCATION, *OVERLAY_COLOURS]))
    data = [_line(x, values(allocation[m], 4), f"{m} equity", palette[m], fill=_fill(palette[m], 0.2))
            for m in allocation.columns]
    if targets is not None:
        tx = dates(targets.index)
        data += [_line(tx, values(targets[m], 4), f"{m} target", palette.get(m, ALLOCATION), dash="dot", width=1.0)
                 for m in targets.columns]
    lay = layout("Equity allocation", ".0%", 300, range_buttons=True)
    lay["yaxis"]["range"] = [0, 1.05]
    return {"data": data, "layout": lay}


def line_chart(frame: pd.DataFrame, title: str, y_format: str | None = ".0%",
               names: Mapping[str, str] | None = None, dashed: Sequence[str] = (), height: int = 300,
               shapes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A time chart of the frame's columns (days x columns), named by `names`, `dashed` columns dotted."""
    x = dates(frame.index)
    palette = dict(zip(frame.columns, [STRATEGY, *OVERLAY_COLOURS, BENCHMARK_COLOUR]))
    data = [_line(x, values(frame[c]), (names or {}).get(c, c), palette[c], dash="dot" if c in dashed else None)
            for c in frame.columns]
    lay = layout(title, y_format, height)
    if shapes:
        lay["shapes"] = shapes
    return {"data": data, "layout": lay}


def threshold_line(y: float) -> dict[str, Any]:
    """A horizontal dashed line across the plot (e.g. the rebalance threshold)."""
    return {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
            "line": {"color": DANGER, "width": 1, "dash": "dash"}}


def sector_chart(sectors: pd.DataFrame) -> dict[str, Any]:
    """Sector weights of the portfolio against its benchmark (grouped horizontal bars)."""
    names = [plotly_text(s) for s in sectors["sector"]]
    data = [{"type": "bar", "orientation": "h", "y": names, "x": values(sectors[col], 4), "name": label,
             "marker": {"color": colour}}
            for col, label, colour in (("portfolio", "Portfolio", STRATEGY), ("benchmark", "Benchmark",
                                                                              BENCHMARK_COLOUR))]
    lay = layout("Sector exposure vs benchmark", None, max(260, 28 * len(names) + 80), barmode="group",
                 hovermode="y unified")
    lay["xaxis"] = {"tickformat": ".1~%", "hoverformat": ".2%", "gridcolor": "#e2e8f0"}
    lay["yaxis"] = {"autorange": "reversed", "automargin": True}
    return {"data": data, "layout": lay}


def impacts_chart(model: str, impacts: Sequence[tuple[str, float]]) -> dict[str, Any]:
    """Each factor's contribution to a model's latest target allocation (horizontal bars, green adds equity)."""
    names = [plotly_text(k) for k, _ in impacts]
    vals = values([v if v is not None else np.nan for _, v in impacts], 4)
    data = [{"type": "bar", "orientation": "h", "y": names, "x": vals, "name": plotly_text(model),
             "marker": {"color": ["#10b981" if (v or 0) >= 0 else DANGER for v in vals]}}]
    lay = layout(f"{model}: factor impacts on the target", None, max(200, 30 * len(names) + 80),
                 hovermode="y unified", showlegend=False)
    lay["xaxis"] = {"tickformat": "+.0%", "hoverformat": "+.2%", "gridcolor": "#e2e8f0", "zerolinecolor": "#94a3b8"}
    lay["yaxis"] = {"autorange": "reversed", "automargin": True}
    return {"data": data, "layout": lay}


def embed_json(figures: Mapping[str, dict[str, Any]]) -> str:
    """The figures of a page as JSON for a `<script type="application/json">` block: each distinct x array is
    stored once (`xs`) and referenced by its position, and `<`, `>`, `&` are escaped so no text can close the
    script element. Encoded by orjson (a 20-year page holds ~130,000 numbers: 5 ms where `json.dumps` took 50),
    which writes NaN and infinities as null (`values` has made them null already)."""
    xs: list[list[Any]] = []
    by_ends: dict[tuple, list[int]] = {}
    out = []
    for fig_id, figure in figures.items():
        data = []
        for trace in figure["data"]:
            trace = dict(trace)
            x = trace.get("x")
            if isinstance(x, list) and len(x) > 20:
                same = by_ends.setdefault((len(x), x[0], x[-1]), [])
                ref = next((i for i in same if xs[i] is x or xs[i] == x), None)
                if ref is None:
                    ref = len(xs)
                    same.append(ref)
                    xs.append(x)
                trace["x"] = {"ref": ref}
            data.append(trace)
        out.append({"id": fig_id, "data": data, "layout": figure["layout"]})
    text = orjson.dumps({"xs": xs, "figures": out, "config": PLOTLY_CONFIG}).decode("utf-8")
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
