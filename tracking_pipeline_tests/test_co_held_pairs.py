"""`Portfolio.entries_on` and `co_held_pairs` (built once per rebalance) against the plain per-day definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from tracking_pipeline.services.market_risk import co_held_pairs
from tracking_pipeline.services.nav import Portfolio
from tracking_pipeline.trading_calendar import month_ends, sessions_between


def _book(pid: int, start: str, schedule: list[tuple[str, dict[str, float]]]) -> Portfolio:
    return Portfolio(pid, f"book {pid}", pd.Timestamp(start), 100.0, ("raw",),
                     [(pd.Timestamp(day), weights) for day, weights in schedule])


BOOKS = [
    _book(1, "2024-01-02", [("2024-01-02", {"A": 0.5, "B": 0.5}), ("2024-04-01", {"A": 0.3, "C": 0.3, "D": 0.4}),
                            ("2024-07-01", {"B": 1.0})]),
    # starts after its first holdings date: nothing in force before the start
    _book(2, "2024-03-01", [("2024-01-02", {"C": 0.5, "D": 0.5}), ("2024-09-03", {"C": 0.2, "D": 0.0, "E": 0.8})]),
    # a ticker without prices (not in the columns) and an empty target
    _book(3, "2024-02-01", [("2024-02-01", {"A": 0.4, "ZZZ": 0.6, "E": 0.0}), ("2024-06-03", {})]),
    _book(4, "2024-12-02", [("2024-12-02", {"A": 0.5, "E": 0.5})]),  # starts after the last day looked at
]
COLUMNS = {t: i for i, t in enumerate(["A", "B", "C", "D", "E"])}


def _pairs_on(day: pd.Timestamp) -> set[tuple[int, int]]:
    """Every pair held together on `day` by one book, from `weights_on`."""
    out = set()
    for book in BOOKS:
        held = sorted(COLUMNS[t] for t, w in book.weights_on(day).items() if w > 0 and t in COLUMNS)
        out |= set(itertools.combinations(held, 2))
    return out


def test_entries_on_gives_the_weights_of_weights_on() -> None:
    days = pd.DatetimeIndex(sessions_between("2023-12-01", "2025-01-31"))
    for book in BOOKS:
        entries = book.entries_on(days)
        for day, entry in zip(days, entries):
            assert (book.schedule[entry][1] if entry >= 0 else {}) == book.weights_on(day)
            assert entry >= 0 or day < book.start or day < book.schedule[0][0]


def test_co_held_pairs_equal_the_pairs_of_each_day() -> None:
    for days in (month_ends(pd.DatetimeIndex(sessions_between("2023-12-01", "2025-01-31"))),
                 pd.DatetimeIndex(sessions_between("2024-03-25", "2024-04-05"))):
        seen = list(co_held_pairs(BOOKS, days, COLUMNS))
        assert [day for day, _, _ in seen] == list(days)
        for day, a, b in seen:
            assert np.all(a < b)
            assert list(zip(a.tolist(), b.tolist())) == sorted(_pairs_on(day))
    first = next(co_held_pairs(BOOKS, pd.DatetimeIndex(["2024-01-31"]), COLUMNS))
    assert list(zip(first[1].tolist(), first[2].tolist())) == [(0, 1)]  # book 1 only: A, B
    assert list(co_held_pairs([], pd.DatetimeIndex(["2024-01-31"]), COLUMNS))[0][1].size == 0
