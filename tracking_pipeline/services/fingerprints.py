"""Input fingerprints: recompute an unpartitioned table only for the dates whose inputs changed.

`input_fingerprints` holds, per asset, part (a portfolio id, or '' for an asset without parts) and date, a hash of
everything that date's rows were computed from, and how many rows were written. A run hashes its current inputs and
recomputes a date when the hash differs or is missing, or when the stored row count no longer matches the table
(rows lost behind the pipeline's back); stored dates that are no longer computed are dropped. Equal inputs give
equal rows, so the table always ends equal to a full recompute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tracking_pipeline.warehouse import Warehouse, Write

Key = tuple[str, pd.Timestamp]
"""(part, date)."""


def digest(*parts: str | np.ndarray | float) -> str:
    """A 128-bit hash of text, numbers and arrays (arrays by dtype, shape and bytes, NaN included)."""
    h = hashlib.blake2b(digest_size=16)
    h.update("".join(_fed(h, parts)).encode())
    return h.hexdigest()


def digest_prefixes(head: Sequence[str | np.ndarray | float], block: np.ndarray, stops: Iterable[int],
                    tails: Iterable[Sequence[str | float]]) -> list[str]:
    """`digest(*head, block[:stop], *tail)` for each stop and tail, with the head hashed once and no row copied:
    the fingerprints of dates that cover a growing prefix of the same rows (a stress date: the prices since its
    rebalance) cost a hash of those rows each, not a new array and a new hash of every part."""
    block = np.ascontiguousarray(block)
    h = hashlib.blake2b(digest_size=16)
    lead = _fed(h, head)
    out = []
    for stop, tail in zip(stops, tails):
        g = h.copy()
        g.update("".join(_fed(g, [block[:stop], *tail], list(lead))).encode())  # block[:stop]: a contiguous view
        out.append(g.hexdigest())
    return out


def _fed(h: Any, parts: Iterable[str | np.ndarray | float], text: list[str] | None = None) -> list[str]:
    """Hash `parts` into `h` up to the last array, after `text` (parts already given, not yet hashed); returns the
    text after the last array, not yet hashed (consecutive text parts are hashed in one update: the same byte
    stream)."""
    text = [] if text is None else text
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            text.append(f"|{array.dtype.str}{array.shape}|")
            h.update("".join(text).encode())
            text.clear()
            h.update(array if array.dtype.kind in "biufc" else array.tobytes())  # numbers: their buffer, no copy
        else:
            text.append(f"|{part!r}|")
    return text


@dataclass(frozen=True)
class RefreshPlan:
    """What a run must do: the keys to compute and the stored keys to drop."""

    asset: str
    todo: list[Key]
    stale: list[Key]

    def dates_by_part(self) -> dict[str, list[pd.Timestamp]]:
        """Every date to rewrite (computed or dropped), per part."""
        out: dict[str, set[pd.Timestamp]] = {}
        for part, day in [*self.todo, *self.stale]:
            out.setdefault(part, set()).add(day)
        return {part: sorted(days) for part, days in sorted(out.items())}


def plan_refresh(wh: Warehouse, asset: str, table: str, date_column: str, current: Mapping[Key, str],
                 part_column: str | None = None, parts: Iterable[str] | None = None) -> RefreshPlan:
    """Compare the current fingerprints with the stored ones (and the stored rows of `table`).

    `parts` limits the stale keys to those parts (the ones this run computed; None: every part)."""
    part_sql = f"CAST({part_column} AS VARCHAR)" if part_column else "''"
    stored = wh.query(
        "SELECT COALESCE(f.part, c.part) AS part, COALESCE(f.calc_date, c.day) AS day, f.fingerprint, f.row_count, "
        "COALESCE(c.n, 0) AS n FROM (SELECT part, calc_date, fingerprint, row_count FROM input_fingerprints "
        f"WHERE asset = ?) f FULL JOIN (SELECT {part_sql} AS part, {date_column} AS day, COUNT(*) AS n FROM {table} "
        "GROUP BY 1, 2) c ON f.part = c.part AND f.calc_date = c.day", [asset])
    keys = list(zip(stored["part"].tolist(), pd.DatetimeIndex(stored["day"])))
    known = set(keys)
    fingerprints = stored["fingerprint"].fillna("").tolist()  # "": a date with rows and no fingerprint
    stored_rows = stored["row_count"].fillna(-1).astype("int64").tolist()
    unchanged = {key for key, fingerprint, stored_n, n in zip(keys, fingerprints, stored_rows, stored["n"].tolist())
                 if current.get(key) == fingerprint and stored_n == n}
    wanted = None if parts is None else set(parts)
    stale = sorted(k for k in known - set(current) if wanted is None or k[0] in wanted)
    return RefreshPlan(asset, sorted(set(current) - unchanged), stale)


def stored_summary(wh: Warehouse, asset: str) -> dict[str, object]:
    """Rows, dates and date range of an asset's whole table from its fingerprints (one row per part and date,
    with the date's row count; `plan_refresh` keeps them equal to the table), without scanning the table."""
    stored = wh.query("SELECT COALESCE(SUM(row_count), 0) AS n, COUNT(DISTINCT calc_date) AS dates, "
                      "MIN(calc_date) AS first, MAX(calc_date) AS last FROM input_fingerprints "
                      "WHERE asset = ? AND row_count > 0", [asset]).iloc[0]
    out: dict[str, object] = {"dagster/row_count": int(stored["n"]), "dates": int(stored["dates"])}
    if stored["dates"]:
        out.update(first_date=str(pd.Timestamp(stored["first"]).date()),
                   last_date=str(pd.Timestamp(stored["last"]).date()))
    return out


def refresh_writes(plan: RefreshPlan, table: str, date_column: str, rows: pd.DataFrame, current: Mapping[Key, str],
                   part_column: str | None = None) -> list[Write]:
    """The writes of a refresh, for one transaction: `rows` replace the table's rows on the dates to rewrite, and
    the fingerprints of the computed dates (with their row counts) replace the stored ones. Parts with the same
    dates to rewrite share one write of each (a nightly run rewrites the same day or two of every book), so the
    number of statements does not grow with the number of parts."""
    writes = []
    counts = _row_counts(rows, date_column, part_column)
    todo: dict[str, list[pd.Timestamp]] = {}
    for part, day in plan.todo:
        todo.setdefault(part, []).append(day)
    groups: dict[tuple[pd.Timestamp, ...], list[str]] = {}
    for part, days in plan.dates_by_part().items():
        groups.setdefault(tuple(days), []).append(part)
    for days, parts in groups.items():
        dates = [d.date() for d in days]
        scope: dict[str, object] = {date_column: dates}
        mine = rows
        if part_column:
            scope = {part_column: [int(part) for part in parts], date_column: dates}
            mine = rows[rows[part_column].astype(str).isin(parts)] if len(rows) else rows
        keys = [(part, day) for part in parts for day in todo.get(part, [])]
        writes.append(Write(table, mine, scope))
        writes.append(Write("input_fingerprints", pd.DataFrame({
            "asset": plan.asset, "part": [part for part, _ in keys],
            "calc_date": pd.DatetimeIndex([day for _, day in keys]),
            "fingerprint": [current[key] for key in keys], "row_count": [counts.get(key, 0) for key in keys]}),
            {"asset": [plan.asset], "part": parts, "calc_date": dates}))
    return writes


def _row_counts(rows: pd.DataFrame, date_column: str, part_column: str | None) -> dict[Key, int]:
    if rows.empty:
        return {}
    parts = rows[part_column].astype(str) if part_column else pd.Series("", index=rows.index)
    counts = rows.groupby([parts.to_numpy(), pd.DatetimeIndex(rows[date_column])]).size()
    return {(str(p), pd.Timestamp(d)): int(n) for (p, d), n in counts.items()}
