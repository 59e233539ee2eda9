"""System health (seed 004's monitor) from plain facts: how far each daily asset lags the data, failed checks and
runs in the last days, table sizes; each component GOOD / WARNING / CRITICAL and the worst of them overall.

Pure: the Dagster layer (defs/monitoring/) gathers the facts from the instance and the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tracking_pipeline.analytics.outcomes import CRITICAL, GOOD, WARNING, worst

STALE_WARNING_SESSIONS = 1
"""A daily asset this many sessions behind the latest day with data is WARNING; one more is CRITICAL."""
FAILED_RUNS_CRITICAL = 3
"""Failed runs in the window: one or more is WARNING, this many CRITICAL."""
WINDOW_DAYS = 7


@dataclass(frozen=True)
class Freshness:
    """A daily asset's latest materialized partition and how many sessions it lags the latest day with data."""

    asset: str
    latest: str | None
    lag: int | None


def freshness_status(lag: int | None) -> str:
    """GOOD when up to date, WARNING one session behind, CRITICAL further behind or never materialized."""
    if lag is None or lag > STALE_WARNING_SESSIONS:
        return CRITICAL
    return WARNING if lag > 0 else GOOD


def runs_status(failed: int) -> str:
    return CRITICAL if failed >= FAILED_RUNS_CRITICAL else (WARNING if failed else GOOD)


def checks_status(failed_error: int, failed_warn: int) -> str:
    """A failed ERROR-severity check is CRITICAL, a failed WARN-severity one WARNING."""
    return CRITICAL if failed_error else (WARNING if failed_warn else GOOD)


def health_rows(reference_day: str | None, freshness: list[Freshness], failed_checks: pd.DataFrame,
                failed_runs: pd.DataFrame, row_counts: dict[str, int]) -> pd.DataFrame:
    """One row per component (component, status, value, detail) and an `overall` row with the worst status.

    `failed_checks`: check, severity ('ERROR'/'WARN'), run_id of each failed evaluation in the window;
    `failed_runs`: run_id, job_name of each failed run in it; row counts are informational (no status)."""
    rows = []
    for f in freshness:
        detail = ("never materialized" if f.latest is None else
                  f"latest partition {f.latest}, {f.lag} session(s) behind {reference_day}")
        rows.append((f"freshness:{f.asset}", freshness_status(f.lag), f.lag, detail))
    errors = failed_checks[failed_checks["severity"] == "ERROR"] if len(failed_checks) else failed_checks
    warns = len(failed_checks) - len(errors)
    names = sorted(set(failed_checks["check"])) if len(failed_checks) else []
    rows.append(("failed_checks_7d", checks_status(len(errors), warns), len(failed_checks),
                 f"{len(errors)} ERROR, {warns} WARN" + (f": {', '.join(names)}" if names else "")))
    jobs = sorted(set(failed_runs["job_name"])) if len(failed_runs) else []
    rows.append(("failed_runs_7d", runs_status(len(failed_runs)), len(failed_runs),
                 ", ".join(f"{job} x{int((failed_runs['job_name'] == job).sum())}" for job in jobs) or "none"))
    for table, count in sorted(row_counts.items()):
        rows.append((f"rows:{table}", None, count, f"{count:,} rows"))
    frame = pd.DataFrame(rows, columns=["component", "status", "value", "detail"])
    overall = worst(frame["status"].tolist()) or GOOD
    problems = frame[frame["status"].isin([WARNING, CRITICAL])]["component"].tolist()
    summary = pd.DataFrame([("overall", overall, float(len(problems)),
                             "all components GOOD" if not problems else "needs attention: " + ", ".join(problems))],
                           columns=frame.columns)
    return pd.concat([summary, frame], ignore_index=True).astype({"value": float})
