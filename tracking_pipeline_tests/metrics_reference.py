"""Independent reference for every `portfolio_metrics` figure (CONTRACT §4 as amended), shared by the tests.

The figures come from empyrical-reloaded and quantstats where they have the function (empyrical for the returns,
volatility, ratios, drawdown, VaR/CVaR at 95% and 99%, alpha/beta; quantstats for win rate and Treynor), from pandas
for the 21-day compounded VaR (rolling product), and from a plain loop over the NAV path for the drawdown dates and
durations (no library publishes them with the contract's conventions). The short-period rules are applied on top:
cagr/calmar only from 360 calendar days, risk figures only from 20 returns, var_95_1m only from 252.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings

import empyrical as ep
import numpy as np
import pandas as pd
import quantstats as qs

from tracking_pipeline.analytics.metrics import CONTRACT_RULES, PeriodRules

RISK = ("volatility", "sharpe_ratio", "sortino_ratio", "var_95", "cvar_95", "var_99", "cvar_99", "var_95_1m", "beta",
        "alpha", "tracking_error", "information_ratio", "treynor_ratio")
DATES = ("max_drawdown_start", "max_drawdown_trough", "max_drawdown_recovery")
DURATIONS = ("max_drawdown_duration", "current_drawdown_duration")


def drawdown_walk(r: np.ndarray, days: list[dt.date], anchor: dt.date) -> dict:
    """The drawdown figures by walking the NAV path [1, cumprod(1 + r)] (dated anchor, days) one point at a time."""
    nav, peak, dd = 1.0, 1.0, [0.0]
    for x in r:
        nav *= 1.0 + x
        peak = max(peak, nav)
        dd.append(0.0 if nav >= peak else nav / peak - 1.0)
    dates = [anchor, *days]
    trough = min(range(len(dd)), key=lambda i: (dd[i], i))  # the first minimum
    peak_at = max(i for i in range(trough + 1) if dd[i] == 0.0)
    recovered = [i for i in range(trough + 1, len(dd)) if dd[i] == 0.0]
    last_zero = max(i for i in range(len(dd)) if dd[i] == 0.0)
    end = len(dd) - 1
    return {
        "current_drawdown": dd[-1],
        "max_drawdown_start": dates[peak_at], "max_drawdown_trough": dates[trough],
        "max_drawdown_recovery": dates[recovered[0]] if recovered else None,
        "max_drawdown_duration": (recovered[0] if recovered else end) - peak_at,
        "current_drawdown_duration": end - last_zero,
    }


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def library_figures(r: pd.Series, b: pd.Series | None, rf_annual: float, anchor: dt.date | pd.Timestamp,
                    rules: PeriodRules = CONTRACT_RULES) -> dict:
    """Every figure of a period whose returns are `r` (indexed by trading day; `b` the benchmark's on the same days,
    None for no benchmark), measured from the NAV of `anchor`; None where the contract (with `rules` as its
    short-period thresholds) says NULL."""
    rf_d = (1.0 + rf_annual) ** (1.0 / 252) - 1.0
    anchor = pd.Timestamp(anchor).date()
    days = [pd.Timestamp(d).date() for d in r.index]
    x = r.to_numpy(float)
    n = len(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dated = pd.Series(x, index=pd.DatetimeIndex(r.index))
        out = {
            "total_return": ep.cum_returns_final(x), "cagr": ep.annual_return(x, period="daily"),
            "volatility": ep.annual_volatility(x, period="daily"),
            "sharpe_ratio": ep.sharpe_ratio(x, risk_free=rf_d, period="daily"),
            "sortino_ratio": ep.sortino_ratio(x, required_return=rf_d, period="daily"),
            "max_drawdown": ep.max_drawdown(x), "calmar_ratio": ep.calmar_ratio(x, period="daily"),
            # quantstats answers 0.0 when every return is 0; the contract says NULL
            "win_rate": qs.stats.win_rate(dated) if np.any(x != 0) else np.nan,
            "var_95": ep.value_at_risk(x, cutoff=0.05), "cvar_95": ep.conditional_value_at_risk(x, cutoff=0.05),
            "var_99": ep.value_at_risk(x, cutoff=0.01), "cvar_99": ep.conditional_value_at_risk(x, cutoff=0.01),
            "var_95_1m": np.percentile((1.0 + dated).rolling(21).apply(np.prod, raw=True).dropna() - 1.0, 5)
            if n >= 21 else np.nan,
        }
        if b is None:
            out.update(beta=np.nan, alpha=np.nan, tracking_error=np.nan, information_ratio=np.nan,
                       treynor_ratio=np.nan)
        else:
            y = b.to_numpy(float)
            alpha, beta = ep.alpha_beta_aligned(x, y, risk_free=rf_d, period="daily")
            active = x - y
            out.update(alpha=alpha, beta=beta, tracking_error=ep.annual_volatility(active, period="daily"),
                       information_ratio=np.mean(active) / np.std(active, ddof=1) * math.sqrt(252),
                       treynor_ratio=qs.stats.treynor_ratio(dated, pd.Series(y, index=dated.index), periods=252,
                                                            rf=rf_annual) if np.isfinite(beta) else np.nan)
    out = {k: _finite(v) for k, v in out.items()}
    if out["treynor_ratio"] == 0.0:  # quantstats answers 0 for a zero beta; the contract says NULL
        out["treynor_ratio"] = None
    if (days[-1] - anchor).days < rules.min_annualised_days:
        out["cagr"] = out["calmar_ratio"] = None
    if n < rules.min_risk_returns:
        out.update({k: None for k in RISK})
    if n < rules.min_var_1m_returns:
        out["var_95_1m"] = None
    out.update(drawdown_walk(x, days, anchor))
    out.update(period_start=days[0], period_end=days[-1])
    return out


def assert_figures_match(row: dict, ref: dict, context: str, tol: float = 1e-9,
                         columns: tuple[str, ...] | None = None) -> dict[str, float]:
    """Each figure equals the reference (floats to `tol` relative to max(1, |ref|), dates and durations exactly);
    NULL exactly where the reference is. Returns the largest float difference per figure."""
    diffs: dict[str, float] = {}
    for name in columns or tuple(k for k in ref if k not in ("period_start", "period_end")):
        got, want = row[name], ref[name]
        if got is not None and not isinstance(got, str) and pd.isna(got):
            got = None
        if want is None:
            assert got is None, f"{context}: {name} = {got!r}, expected NULL"
            continue
        assert got is not None, f"{context}: {name} is NULL, expected {want!r}"
        if name in DATES:
            assert pd.Timestamp(got).date() == want, f"{context}: {name} = {got}, expected {want}"
        elif name in DURATIONS:
            assert int(got) == want, f"{context}: {name} = {got}, expected {want}"
        else:
            diff = abs(float(got) - want)
            diffs[name] = diff
            assert diff <= tol * max(1.0, abs(want)), f"{context}: {name} = {got!r}, reference {want!r} ({diff:.3g})"
    return diffs
