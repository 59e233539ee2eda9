"""HTML of the Performance Tracker: Jinja2 templates with autoescaping (`templates/performance/`), seed 000's
palette and typography, and the cell formatting shared by the report pages and the app.

Every value reaches a page through a template variable, so portfolio names, descriptions, tickers and factor names
holding markup are shown as text. Numbers are formatted here once (`fmt`), so a card, a table and the app show a
figure the same way: percentages with two decimals and no negative zero, ratios with two decimals, '–' when the
warehouse holds NULL.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).parent / "templates" / "performance"
MISSING = "–"
HTML_SPECIAL = re.compile(r"[&<>'\"]")
METRIC_LABELS = {
    "total_return": "Total return", "cagr": "CAGR", "sharpe_ratio": "Sharpe", "sortino_ratio": "Sortino",
    "max_drawdown": "Max drawdown", "calmar_ratio": "Calmar", "volatility": "Volatility", "win_rate": "Win rate",
    "var_95": "VaR 95% (1d)", "cvar_95": "CVaR 95% (1d)", "beta": "Beta", "alpha": "Alpha",
    "tracking_error": "Tracking error", "information_ratio": "Information ratio", "var_99": "VaR 99% (1d)",
    "cvar_99": "CVaR 99% (1d)", "var_95_1m": "VaR 95% (1m)", "treynor_ratio": "Treynor",
    "current_drawdown": "Current drawdown", "max_drawdown_start": "Peak", "max_drawdown_trough": "Trough",
    "max_drawdown_recovery": "Recovery", "max_drawdown_duration": "Duration (days)",
    "current_drawdown_duration": "Current duration (days)",
}
METRIC_FORMAT = {
    "sharpe_ratio": "num", "sortino_ratio": "num", "calmar_ratio": "num", "beta": "num", "information_ratio": "num",
    "treynor_ratio": "num", "max_drawdown_start": "day", "max_drawdown_trough": "day",
    "max_drawdown_recovery": "day", "max_drawdown_duration": "int", "current_drawdown_duration": "int",
}
"""How each metric is shown; every other metric is a percentage."""


def _missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt(value: Any, kind: str = "pct", digits: int = 2) -> str:
    """One value as shown: 'pct' (12.34%), 'spct' (+12.34%), 'num' (1.23), 'int' (1,234), 'day' (2019-03-14),
    'text'; NULL/NaN as '–'; a value rounding to zero is shown unsigned (never '-0.00%')."""
    if isinstance(value, float) and kind in NUMBER_KINDS:  # most cells: no pandas missing-value test needed
        number = value
    else:
        if _missing(value):
            return MISSING
        if kind == "text":
            return str(value)
        if kind == "day":
            return pd.Timestamp(value).strftime("%Y-%m-%d")
        number = float(value)
    if not math.isfinite(number):
        return MISSING
    if kind == "int":
        return f"{int(round(number)):,}"
    scaled = number * 100 if kind in ("pct", "spct") else number
    scaled = round(scaled, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    sign = "+" if kind == "spct" and scaled > 0 else ""
    unit = "%" if kind in ("pct", "spct") else ""
    return f"{sign}{scaled:,.{digits}f}{unit}"


NUMBER_KINDS = frozenset({"pct", "spct", "num", "int"})


def metric_kind(metric: str) -> str:
    return METRIC_FORMAT.get(metric, "pct")


def sign_class(value: Any) -> str:
    """'positive' / 'negative' for a signed figure (nothing for zero or missing)."""
    if not isinstance(value, float) and _missing(value):
        return ""
    number = float(value)
    if not math.isfinite(number) or round(number, 6) == 0:
        return ""
    return "positive" if number > 0 else "negative"


def heat_style(value: Any, scale: float = 0.08) -> str:
    """Background of a heat-coloured return cell: green for gains, red for losses, stronger up to `scale`."""
    if not isinstance(value, float) and _missing(value):
        return ""
    number = float(value)
    if not math.isfinite(number):
        return ""
    alpha = 0.06 + 0.5 * min(abs(number) / scale, 1.0)
    rgb = "16, 185, 129" if number >= 0 else "239, 68, 68"
    return f"background: rgba({rgb}, {alpha:.2f})"


def table_view(frame: pd.DataFrame, kinds: str | Mapping[str, str] = "pct", best: pd.DataFrame | None = None,
               heat: bool = False, signed: bool | Sequence[str] = False, index_label: str = "",
               labels: Mapping[str, str] | None = None, badges: Sequence[str] | None = None) -> dict[str, Any]:
    """A frame as a table for the `table` macro: header, one row per index value with its formatted cells; `best`
    (a boolean frame like `frame`) marks cells, `heat` colours returns, `signed` colours numbers by sign (all, or
    the columns named); `labels` renames columns and `badges` adds a badge per row."""
    columns = list(frame.columns)
    column_kinds = [kinds if isinstance(kinds, str) else kinds.get(c, "text") for c in columns]
    coloured = [signed is True and k in ("pct", "spct", "num") or (not isinstance(signed, bool) and c in signed)
                for c, k in zip(columns, column_kinds)]
    marks = np.zeros(frame.shape, dtype=bool)
    if best is not None:
        aligned = best if best.index.equals(frame.index) else best.reindex(index=frame.index)
        marks = aligned.reindex(columns=columns).eq(True).to_numpy()  # a column or row `best` lacks: not marked
    rows = []
    for i, (label, values) in enumerate(zip(frame.index, frame.to_numpy(object))):
        cells = []
        for value, kind, colour, mark in zip(values, column_kinds, coloured, marks[i]):
            css = " ".join(c for c in ("best" if mark else "", sign_class(value) if colour else "") if c)
            cells.append({"text": fmt(value, kind), "css": css,
                          "style": heat_style(value) if heat and kind in ("pct", "spct") else ""})
        rows.append({"label": fmt(label, "day") if isinstance(label, (pd.Timestamp, dt.date)) else str(label),
                     "badge": badges[i] if badges is not None else "", "cells": cells,
                     "cells_html": Markup("".join(_cell_html(c) for c in cells))})
    return {"index_label": index_label, "columns": [(labels or {}).get(c, str(c)) for c in columns], "rows": rows}


def _cell_html(cell: Mapping[str, str]) -> str:
    """One `<td>` of a table row, escaped (the `table` macro writes a row's cells from this: a 20-year page has
    thousands of cells, which Jinja2 renders one attribute lookup at a time)."""
    css = f' class="{_escaped(cell["css"])}"' if cell["css"] else ""
    style = f' style="{_escaped(cell["style"])}"' if cell["style"] else ""
    return f"<td{css}{style}>{_escaped(cell['text'])}</td>"


def _escaped(text: str) -> str:
    """`escape(text)` as a plain string; formatted numbers, class names and heat styles (most of a table) hold no
    character to escape and skip markupsafe."""
    return str(escape(text)) if HTML_SPECIAL.search(text) else text


def kpi_cards(metrics: Mapping[str, Any], names: Sequence[str]) -> list[dict[str, Any]]:
    """The KPI cards of one series: label, formatted value, sign class and the raw value (kept in a data
    attribute, so tests compare a card with the stored row)."""
    out = []
    for name in names:
        value = metrics.get(name)
        raw = None if _missing(value) else float(value)
        out.append({"metric": name, "label": METRIC_LABELS[name], "text": fmt(value, metric_kind(name)),
                    "css": sign_class(value) if name != "volatility" else "",
                    "value": repr(raw) if raw is not None else ""})
    return out


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The templates' environment: autoescaping on for every template, undefined variables an error."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(fmt=fmt, sign=sign_class)
    return env


def render(template: str, **context: Any) -> str:
    """A page from its template."""
    return environment().get_template(template).render(**context)


def fragment(macro: str, *args: Any, **kwargs: Any) -> Markup:
    """One macro of `macros.html.j2` (the KPI cards, a table, a badge row): the app shows the report's HTML."""
    return getattr(environment().get_template("macros.html.j2").module, macro)(*args, **kwargs)


def stylesheet() -> Markup:
    """The pages' CSS (seed 000's palette and typography) inside a <style> element."""
    return Markup("<style>") + Markup(environment().get_template("style.css.j2").render()) + Markup("</style>")
