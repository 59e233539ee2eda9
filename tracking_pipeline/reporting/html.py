"""Rendering the performance dashboard: one self-contained HTML page per portfolio plus an index.

Pure functions from frames to HTML text; charts are inline SVG so the pages open anywhere (mail, S3, file://).
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from tracking_pipeline.trading_calendar import month_ends

PALETTE = {"raw": "#1f77b4", "conservative": "#2ca02c", "trend_regime_v2": "#ff7f0e", "benchmark": "#7f7f7f"}
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#f5f7fa;color:#1a202c}
header{background:linear-gradient(135deg,#1e3a8a,#3b82f6);color:#fff;padding:24px 32px}
header h1{margin:0;font-size:26px} header p{margin:6px 0 0;opacity:.85}
main{padding:24px 32px;max-width:1200px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-bottom:20px}
.card{background:#fff;border-radius:8px;padding:14px 16px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card .label{font-size:12px;color:#64748b;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:22px;font-weight:600;margin-top:4px}
.pos{color:#15803d}.neg{color:#b91c1c}
section{background:#fff;border-radius:8px;padding:16px 20px;margin-bottom:20px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
section h2{font-size:17px;margin:0 0 12px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:6px 8px;text-align:right;border-bottom:1px solid #e2e8f0} th:first-child,td:first-child{text-align:left}
th{background:#f1f5f9;font-weight:600}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:12px;height:3px;margin-right:5px;vertical-align:middle}
a{color:#1d4ed8}
"""


def pct(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value * 100:.{digits}f}%"


def num(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def line_chart(series: dict[str, pd.Series], width: int = 1100, height: int = 300, percent: bool = False) -> str:
    """An SVG line chart of aligned series (date index), one colour per variant."""
    frames = {k: s.dropna() for k, s in series.items() if len(s.dropna()) > 1}
    if not frames:
        return "<p>not enough data</p>"
    lo = min(float(s.min()) for s in frames.values())
    hi = max(float(s.max()) for s in frames.values())
    start = min(s.index.min() for s in frames.values())
    end = max(s.index.max() for s in frames.values())
    span = max((end - start).days, 1)
    pad = 40
    scale_y = (height - 2 * pad) / (hi - lo if hi > lo else 1.0)

    def points(s: pd.Series) -> str:
        """SVG `points` text of a series, formatted in one vectorised pass."""
        days = (pd.DatetimeIndex(s.index) - start).days.to_numpy(float)
        x = np.round(pad + days / span * (width - 2 * pad), 1)
        y = np.round(height - pad - (s.to_numpy(float) - lo) * scale_y, 1)
        pairs = np.column_stack([x, y]).ravel().tolist()
        return ("%.1f,%.1f " * len(x) % tuple(pairs))[:-1]

    lines = []
    for name, s in frames.items():
        points_text = points(s)
        lines.append(f'<polyline fill="none" stroke="{PALETTE.get(name, "#9333ea")}" stroke-width="1.6" '
                     f'points="{points_text}"><title>{html.escape(name)}</title></polyline>')
    ticks = []
    for value in np.linspace(lo, hi, 5):
        y = height - pad - (value - lo) * scale_y
        label = pct(value, 0) if percent else f"{value:,.0f}"
        ticks.append(f'<line x1="{pad}" x2="{width - pad}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
                     f'<text x="4" y="{y + 4:.1f}" font-size="11" fill="#64748b">{label}</text>')
    years = pd.date_range(start, end, freq="YS")
    for year in years:
        x = pad + (year - start).days / span * (width - 2 * pad)
        ticks.append(f'<text x="{x:.1f}" y="{height - 12}" font-size="11" fill="#64748b">{year.year}</text>')
    legend = "".join(f'<span><i style="background:{PALETTE.get(n, "#9333ea")}"></i>{html.escape(n)}</span>'
                     for n in frames)
    return (f'<div class="legend">{legend}</div><svg viewBox="0 0 {width} {height}" width="100%" '
            f'role="img">{"".join(ticks)}{"".join(lines)}</svg>')


def metrics_table(metrics: pd.DataFrame) -> str:
    """KPI table per variant for the `all` period."""
    rows = []
    for r in metrics.itertuples(index=False):
        rows.append(f"<tr><td>{html.escape(r.variant)}</td><td>{pct(r.total_return)}</td><td>{pct(r.cagr)}</td>"
                    f"<td>{pct(r.volatility)}</td><td>{num(r.sharpe_ratio)}</td><td>{num(r.sortino_ratio)}</td>"
                    f"<td>{pct(r.max_drawdown)}</td><td>{num(r.calmar_ratio)}</td><td>{pct(r.win_rate, 1)}</td>"
                    f"<td>{num(r.beta)}</td><td>{pct(r.var_95)}</td></tr>")
    head = ("<tr><th>Variant</th><th>Total return</th><th>CAGR</th><th>Volatility</th><th>Sharpe</th>"
            "<th>Sortino</th><th>Max drawdown</th><th>Calmar</th><th>Win rate</th><th>Beta</th><th>VaR 95</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def monthly_table(nav: pd.Series) -> str:
    """Monthly returns (rows: years, columns: months) of one NAV series: each month's last NAV over the previous
    month's (the first month over the first NAV)."""
    ends = month_ends(pd.DatetimeIndex(nav.index))
    month_end = nav.reindex(ends).to_numpy(float)
    returns = month_end / np.r_[nav.to_numpy(float)[:1], month_end[:-1]] - 1
    by_month = dict(zip((ends.year * 12 + ends.month - 1).tolist(), returns.tolist()))
    head = "<tr><th>Year</th>" + "".join(f"<th>{m}</th>" for m in
                                         ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                          "Nov", "Dec"]) + "</tr>"
    body = []
    for year in sorted({m // 12 for m in by_month}):
        cells = "".join(
            f'<td class="{"pos" if v > 0 else "neg"}">{pct(v, 1)}</td>' if v is not None and not math.isnan(v)
            else "<td></td>" for v in (by_month.get(year * 12 + m) for m in range(12)))
        body.append(f"<tr><td>{year}</td>{cells}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def portfolio_page(name: str, description: str, nav: pd.DataFrame, metrics: pd.DataFrame,
                   benchmark: str, generated: str) -> str:
    """The page of one portfolio: KPI cards, NAV and drawdown charts, KPI table, monthly returns."""
    wide = nav.pivot(index="trade_date", columns="variant", values="nav").sort_index()
    growth = wide / wide.iloc[0] * 100
    drawdowns = wide / wide.cummax() - 1
    raw = metrics[metrics["variant"] == "raw"]
    cards = ""
    if len(raw):
        r = raw.iloc[0]
        for label, value in [("Total return", pct(r.total_return)), ("CAGR", pct(r.cagr)),
                             ("Sharpe", num(r.sharpe_ratio)), ("Max drawdown", pct(r.max_drawdown)),
                             ("Volatility", pct(r.volatility)), ("Last NAV", f"{wide['raw'].iloc[-1]:,.2f}")]:
            cls = "neg" if value.startswith("-") else ""
            cards += f'<div class="card"><div class="label">{label}</div><div class="value {cls}">{value}</div></div>'
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(name)}</title>
<style>{CSS}</style></head><body>
<header><h1>{html.escape(name)}</h1><p>{html.escape(description)} · benchmark {html.escape(benchmark)} ·
{wide.index[0].date()} to {wide.index[-1].date()} · generated {generated}</p></header>
<main><div class="cards">{cards}</div>
<section><h2>Growth of 100 (raw and risk-overlay variants)</h2>{line_chart({c: growth[c] for c in growth})}</section>
<section><h2>Drawdown</h2>{line_chart({c: drawdowns[c] for c in drawdowns}, height=220, percent=True)}</section>
<section><h2>Performance since inception</h2>{metrics_table(metrics)}</section>
<section><h2>Monthly returns (raw)</h2>{monthly_table(wide['raw'])}</section>
<p><a href="index.html">All portfolios</a></p></main></body></html>"""


def index_page(rows: list[dict], generated: str) -> str:
    """The index: one line per portfolio with its raw KPIs and a link."""
    body = "".join(
        f'<tr><td><a href="{html.escape(r["file"])}">{html.escape(r["name"])}</a></td><td>{r["last_day"]}</td>'
        f'<td>{pct(r["total_return"])}</td><td>{pct(r["cagr"])}</td><td>{num(r["sharpe_ratio"])}</td>'
        f'<td>{pct(r["max_drawdown"])}</td></tr>' for r in rows)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Portfolio performance</title>
<style>{CSS}</style></head><body><header><h1>Portfolio performance</h1><p>generated {generated}</p></header>
<main><section><h2>Portfolios (raw variant, since inception)</h2><table><tr><th>Portfolio</th><th>Last day</th>
<th>Total return</th><th>CAGR</th><th>Sharpe</th><th>Max drawdown</th></tr>{body}</table></section></main></body></html>"""
