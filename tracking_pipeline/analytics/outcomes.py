"""Outcome monitoring (seed 004): explosive growth, comparison with a baseline period, CRITICAL / WARNING / GOOD,
confidence calibration (Brier score) and market timing, over the same trailing windows as the strategy metrics.

Pure functions of the closed trades; the thresholds and the baseline come from `OutcomeConfig` (seed 004's values
by default, overridden by the lake's reference/trade_analytics.yaml).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tracking_pipeline.analytics.trade_windows import (
    BANDS, PERIODS, Windows, confidence_band, predictions, ratio, windows,
)

CRITICAL, WARNING, GOOD = "CRITICAL", "WARNING", "GOOD"
SEVERITY = {GOOD: 0, WARNING: 1, CRITICAL: 2}


@dataclass(frozen=True)
class Baseline:
    """The reference performance: explicit figures, or (when `start`/`end` are set) those of the trades closed in
    that period, computed from the ledger."""

    win_rate: float | None = 0.73
    avg_return: float | None = 1.52
    explosive_rate: float | None = 0.467
    start: dt.date | None = None
    end: dt.date | None = None
    label: str = "June-July 2024 (seed 004)"


@dataclass(frozen=True)
class OutcomeConfig:
    """Seed 004's thresholds: CRITICAL under a 40% win rate or a -15% average return; WARNING under 60% confidence
    accuracy ("thesis accuracy") or 70% progress towards the baseline ("discovery quality"); a status needs at
    least `min_trades` closed trades in the window. Explosive growth: a trade return above `explosive_return`."""

    explosive_return: float = 0.50
    critical_win_rate: float = 0.40
    critical_avg_return: float = -0.15
    warning_accuracy: float = 0.60
    warning_progress: float = 0.70
    min_trades: int = 5
    status_period: str = "30d"
    baseline: Baseline = field(default_factory=Baseline)


def status(n: np.ndarray, win_rate: np.ndarray, avg_return: np.ndarray, accuracy: np.ndarray,
           progress: np.ndarray | None, config: OutcomeConfig) -> tuple[np.ndarray, np.ndarray]:
    """(status, reasons) per row: CRITICAL when a critical threshold is crossed, else WARNING when a warning one
    is, else GOOD; None with fewer than min_trades trades. A NULL figure crosses no threshold."""
    checks = [
        (CRITICAL, win_rate < config.critical_win_rate, f"win rate below {config.critical_win_rate:.0%}"),
        (CRITICAL, avg_return < config.critical_avg_return, f"average return below {config.critical_avg_return:.0%}"),
        (WARNING, accuracy < config.warning_accuracy, f"confidence accuracy below {config.warning_accuracy:.0%}"),
    ]
    if progress is not None:
        checks.append((WARNING, progress < config.warning_progress,
                       f"progress towards the baseline below {config.warning_progress:.0%}"))
    rows = len(n)
    level = np.zeros(rows, dtype=int)
    reasons = [[] for _ in range(rows)]
    for name, crossed, text in checks:
        hit = np.flatnonzero(np.nan_to_num(np.asarray(crossed, dtype=float), nan=0.0) > 0)
        level[hit] = np.maximum(level[hit], SEVERITY[name])
        for i in hit:
            reasons[i].append(text)
    names = np.array([GOOD, WARNING, CRITICAL], dtype=object)[level]
    enough = np.asarray(n) >= config.min_trades
    names[~enough] = None
    return names, np.array(["; ".join(r) if ok else None for r, ok in zip(reasons, enough)], dtype=object)


def _sorted(trades: pd.DataFrame) -> pd.DataFrame:
    return trades.sort_values(["exit_date", "trade_id"], kind="mergesort", ignore_index=True)


def baseline_figures(t: pd.DataFrame, w: Windows, config: OutcomeConfig) -> dict[str, np.ndarray]:
    """The baseline's win rate, average return and explosive growth rate for each window's as-of day: the
    configured figures, or (for a baseline period) those of the trades closed in that period up to the as-of
    day (no look-ahead; NULL before the period has a closed trade). `t`: the trades sorted by exit date."""
    b = config.baseline
    rows = len(w.n)
    if b.start is None:
        return {k: np.full(rows, np.nan if v is None else float(v))
                for k, v in (("win_rate", b.win_rate), ("avg_return", b.avg_return),
                             ("explosive_rate", b.explosive_rate))}
    exits = np.asarray(t["exit_date"].to_numpy(), dtype="datetime64[D]")
    until = np.minimum(np.asarray(w.period_end, dtype="datetime64[D]"), np.datetime64(b.end, "D"))
    lo = np.full(rows, np.searchsorted(exits, np.datetime64(b.start, "D"), side="left"))
    period = Windows(w.period_type, w.period_start, w.period_end, lo,
                     np.maximum(np.searchsorted(exits, until, side="right"), lo))
    pct = t["profit_loss_pct"].to_numpy(float)
    return {"win_rate": ratio(period.count(t["profit_loss"].to_numpy(float) > 0), period.n),
            "avg_return": ratio(period.total(pct), period.n),
            "explosive_rate": ratio(period.count(pct > config.explosive_return), period.n)}


def _progress(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """current / target where the target is positive, else NULL."""
    target = np.asarray(target, dtype=float)
    return ratio(np.asarray(current, dtype=float), np.where(target > 0, target, 0.0))


def outcomes(trades: pd.DataFrame, as_of: pd.DatetimeIndex, config: OutcomeConfig,
             periods: dict[str, int | None] = PERIODS) -> pd.DataFrame:
    """Per as-of day and period, over all closed trades: closed_trades, win_rate, avg_return, explosive_rate,
    confidence_accuracy, brier_score, the market timing averages, the baseline and the progress towards it,
    recovery_progress, performance_gap, status and status_reasons (docs/strategies.md)."""
    t = _sorted(trades)
    w = windows(t["exit_date"].to_numpy(), t["entry_date"].to_numpy(), as_of, periods)
    pct, pnl = t["profit_loss_pct"].to_numpy(float), t["profit_loss"].to_numpy(float)
    conf = t["routing_confidence"].to_numpy(float)
    won = pnl > 0
    is_pred, correct = predictions(conf, won)
    has_conf = ~np.isnan(conf)
    delay = pd.to_numeric(t["entry_delay_days"]).to_numpy(float)
    cost = t["timing_cost"].to_numpy(float)
    cost_amount = t["timing_cost_amount"].to_numpy(float)
    timed = ~np.isnan(delay) & ~np.isnan(cost)
    n = w.n
    out = w.frame()
    out["closed_trades"] = n
    out["win_rate"] = ratio(w.count(won), n)
    out["avg_return"] = ratio(w.total(pct), n)
    out["explosive_rate"] = ratio(w.count(pct > config.explosive_return), n)
    out["confidence_accuracy"] = ratio(w.count(correct), w.count(is_pred))
    out["brier_score"] = ratio(w.total(np.where(has_conf, (conf - won) ** 2, 0.0)), w.count(has_conf))
    out["timed_trades"] = w.count(timed)
    out["avg_entry_delay_days"] = ratio(w.total(np.where(timed, delay, 0.0)), w.count(timed))
    out["avg_timing_cost"] = ratio(w.total(np.where(timed, cost, 0.0)), w.count(timed))
    out["timing_cost_amount"] = w.total(np.where(timed, cost_amount, 0.0))
    out["timing_score"] = ratio(w.count(timed & (delay <= 1)), w.count(timed))
    base = baseline_figures(t, w, config)
    for name in ("win_rate", "avg_return", "explosive_rate"):
        out[f"baseline_{name}"] = base[name]
        out[f"progress_{name}"] = _progress(out[name].to_numpy(float), base[name])
    progress = out[["progress_win_rate", "progress_avg_return", "progress_explosive_rate"]].clip(0.0, 1.0)
    out["recovery_progress"] = progress.mean(axis=1, skipna=True)
    out["performance_gap"] = out["avg_return"] - out["baseline_avg_return"]
    out["status"], out["status_reasons"] = status(
        n, out["win_rate"].to_numpy(float), out["avg_return"].to_numpy(float),
        out["confidence_accuracy"].to_numpy(float), out["recovery_progress"].to_numpy(float), config)
    return out.rename(columns={"period_end": "as_of_date"})


def calibration(trades: pd.DataFrame, as_of: pd.DatetimeIndex,
                periods: dict[str, int | None] = PERIODS) -> pd.DataFrame:
    """Confidence calibration per as-of day, period and band (high > 80%, medium 50-80%, low < 50%, and all):
    trades, winners, win_rate, mean_confidence, calibration_gap = win_rate - mean_confidence, seed 001's correct
    predictions and accuracy (NULL for the medium band, which predicts nothing), and the Brier score
    mean((confidence - profitable)^2). Trades without a confidence are left out."""
    t = _sorted(trades[trades["routing_confidence"].notna()])
    w = windows(t["exit_date"].to_numpy(), t["entry_date"].to_numpy(), as_of, periods)
    conf = t["routing_confidence"].to_numpy(float)
    won = t["profit_loss"].to_numpy(float) > 0
    band = confidence_band(conf)
    is_pred, correct = predictions(conf, won)
    parts = []
    for name in (*BANDS, "all"):
        inside = np.ones(len(t), dtype=bool) if name == "all" else band == name
        part = w.frame()
        part.insert(2, "band", name)
        n = w.count(inside)
        part["trades"] = n
        part["winners"] = w.count(inside & won)
        part["win_rate"] = ratio(part["winners"], n)
        part["mean_confidence"] = ratio(w.total(np.where(inside, conf, 0.0)), n)
        part["calibration_gap"] = part["win_rate"] - part["mean_confidence"]
        predicted = w.count(inside & is_pred)
        part["correct"] = np.where(predicted > 0, w.count(inside & correct), np.nan) if name != "medium" else np.nan
        part["accuracy"] = ratio(w.count(inside & correct), predicted)
        part["brier_score"] = ratio(w.total(np.where(inside, (conf - won) ** 2, 0.0)), n)
        parts.append(part)
    return pd.concat(parts, ignore_index=True).rename(columns={"period_end": "as_of_date"})


def worst(statuses: list[str | None]) -> str | None:
    """The most severe of the statuses given (None when there is none)."""
    known = [s for s in statuses if s in SEVERITY]
    return max(known, key=SEVERITY.__getitem__) if known else None

