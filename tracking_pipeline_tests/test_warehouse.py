"""The warehouse on a real DuckDB file and a real PostgreSQL database: schema on first use, scoped atomic
replacement, refusal of out-of-scope rows, rollback on failure, JSON and awkward text round trips, and concurrent
DuckDB writers from two processes, and sessions (one connection held across calls)."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import threading

import duckdb
import numpy as np
import pandas as pd
import pytest

from tracking_pipeline.warehouse import TABLES, Write, open_warehouse

D = [dt.date(2023, 7, 3), dt.date(2023, 7, 5), dt.date(2023, 7, 6)]


@pytest.fixture(params=["duckdb", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "duckdb":
        return str(tmp_path / "wh.duckdb")
    return request.getfixturevalue("postgres_url")


def bars(days: list[dt.date], tickers: list[str], price: float) -> pd.DataFrame:
    rows = [{"trade_date": d, "ticker": t, "adj_close": price + i, "close": price + i, "volume": 1000.0}
            for i, d in enumerate(days) for t in tickers]
    return pd.DataFrame(rows)


def stored(wh, table: str = "price_data") -> pd.DataFrame:  # noqa: ANN001
    return wh.read_table(table)


def test_schema_is_created_on_first_use(tmp_path):
    path = tmp_path / "fresh.duckdb"
    wh = open_warehouse(str(path))
    assert not path.exists()
    assert wh.scalar("SELECT COUNT(*) FROM price_data") == 0
    with duckdb.connect(str(path), read_only=True) as conn:
        names = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert names == set(TABLES)


def test_schema_is_created_on_first_use_on_postgres(postgres_url):
    import psycopg2

    wh = open_warehouse(postgres_url)
    wh.read_table("portfolio_daily_nav")
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        names = {r[0] for r in cur.fetchall()}
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'portfolio_daily_nav' "
                    "ORDER BY ordinal_position")
        columns = [r[0] for r in cur.fetchall()]
    conn.close()
    assert names == set(TABLES)
    assert columns == TABLES["portfolio_daily_nav"].column_names


def test_replace_touches_only_the_rows_in_scope(url):
    wh = open_warehouse(url)
    wh.replace(Write("price_data", bars(D, ["AAA", "BBB"], 10.0), {"trade_date": (D[0], D[-1])}))
    # Range scope: the middle day is replaced (and loses BBB), the other days keep their rows.
    counts = wh.replace(Write("price_data", bars([D[1]], ["AAA"], 50.0), {"trade_date": (D[1], D[1])}))
    assert counts == {"price_data": 1}
    got = stored(wh)
    assert len(got) == 5
    middle = got[got["trade_date"] == pd.Timestamp(D[1])]
    assert list(middle["ticker"]) == ["AAA"] and list(middle["adj_close"]) == [50.0]
    assert list(got[got["trade_date"] == pd.Timestamp(D[0])]["adj_close"]) == [10.0, 10.0]
    # List scope combined with a range: only BBB on the first two days.
    wh.replace(Write("price_data", bars(D[:2], ["BBB"], 70.0), {"trade_date": (D[0], D[1]), "ticker": ["BBB"]}))
    got = stored(wh).set_index(["trade_date", "ticker"])["adj_close"]
    assert got.to_dict() == {(pd.Timestamp(D[0]), "AAA"): 10.0, (pd.Timestamp(D[0]), "BBB"): 70.0,
                             (pd.Timestamp(D[1]), "AAA"): 50.0, (pd.Timestamp(D[1]), "BBB"): 71.0,
                             (pd.Timestamp(D[2]), "AAA"): 12.0, (pd.Timestamp(D[2]), "BBB"): 12.0}
    # Re-running the same write is idempotent.
    wh.replace(Write("price_data", bars(D[:2], ["BBB"], 70.0), {"trade_date": (D[0], D[1]), "ticker": ["BBB"]}))
    assert stored(wh).set_index(["trade_date", "ticker"])["adj_close"].to_dict() == got.to_dict()
    # An empty list scope deletes nothing.
    wh.replace(Write("price_data", bars([], [], 0.0), {"ticker": []}))
    assert len(stored(wh)) == 6


def test_rows_outside_the_scope_are_refused(url):
    wh = open_warehouse(url)
    wh.replace(Write("price_data", bars(D, ["AAA"], 10.0), {"trade_date": (D[0], D[-1])}))
    before = stored(wh)
    with pytest.raises(ValueError, match="price_data: 1 rows outside the write scope on trade_date"):
        wh.replace(Write("price_data", bars(D[:2], ["AAA"], 99.0), {"trade_date": (D[1], D[1])}))
    with pytest.raises(ValueError, match="outside the write scope on ticker"):
        wh.replace(Write("price_data", bars([D[0]], ["AAA", "ZZZ"], 99.0), {"ticker": ["AAA"]}))
    pd.testing.assert_frame_equal(stored(wh), before)


def test_failure_before_commit_keeps_the_previous_rows(url):
    wh = open_warehouse(url)
    wh.replace(Write("price_data", bars(D, ["AAA"], 10.0), {"trade_date": (D[0], D[-1])}),
               Write("market_features", pd.DataFrame({"trade_date": D, "close": [1.0, 2.0, 3.0]}),
                     {"trade_date": (D[0], D[-1])}))
    prices, features = stored(wh), stored(wh, "market_features")

    def boom() -> None:
        raise RuntimeError("injected failure after the inserts")

    with pytest.raises(RuntimeError, match="injected"):
        wh.replace(Write("price_data", bars(D, ["BBB"], 20.0), {"trade_date": (D[0], D[-1])}),
                   Write("market_features", pd.DataFrame({"trade_date": D[:1], "close": [9.0]}),
                         {"trade_date": (D[0], D[-1])}),
                   before_commit=boom)
    pd.testing.assert_frame_equal(stored(wh), prices)
    pd.testing.assert_frame_equal(stored(wh, "market_features"), features)
    # A constraint violation mid-write (duplicate key in the frame) rolls back as well.
    with pytest.raises(Exception):
        wh.replace(Write("price_data", pd.concat([bars(D, ["CCC"], 1.0)] * 2), {"trade_date": (D[0], D[-1])}))
    pd.testing.assert_frame_equal(stored(wh), prices)


AWKWARD = ["O'Brien \"Fund\"; DROP TABLE price_data; --", "semi;colon", "", "\\N", "NULL", "tab\tand\nnewline",
           "Ünïcødé ✓", "100% ?quoted? ,comma"]


def test_json_and_awkward_text_round_trip(url):
    wh = open_warehouse(url)
    signals = [{"sma": 1.5, "nested": {"list": [1, 2.25, None], "flag": True}, "text": name} for name in AWKWARD]
    frame = pd.DataFrame({"trade_date": D[0], "model": AWKWARD, "target_allocation": 0.5,
                          "actual_allocation": 0.25, "trade_required": [i % 2 == 0 for i in range(len(AWKWARD))],
                          "signals": signals, "impacts": [None] + [{"x": -0.1}] * (len(AWKWARD) - 1)})
    wh.replace(Write("overlay_signals", frame, {"trade_date": (D[0], D[0])}))
    got = wh.read_table("overlay_signals").set_index("model")
    assert sorted(got.index) == sorted(AWKWARD)
    for i, name in enumerate(AWKWARD):
        row = got.loc[name]
        assert json.loads(row["signals"]) == signals[i]
        assert pd.isna(row["impacts"]) if i == 0 else json.loads(row["impacts"]) == {"x": -0.1}
        assert bool(row["trade_required"]) == (i % 2 == 0)
    for name in AWKWARD:
        assert wh.scalar("SELECT COUNT(*) FROM overlay_signals WHERE model = ?", [name]) == 1
    wh.replace(Write("overlay_signals", frame.iloc[:0], {"model": [AWKWARD[0]]}))
    assert set(wh.read_table("overlay_signals")["model"]) == set(AWKWARD[1:])
    assert wh.scalar("SELECT COUNT(*) FROM price_data") == 0



def test_json_columns_take_numpy_values_dates_and_write_non_finite_floats_as_null(url):
    """JSON has no NaN: a float that is not finite is stored as null; numpy scalars and arrays as numbers, dates as
    ISO 8601; keys sorted, so a value always gives the same text."""
    wh = open_warehouse(url)
    value = {"b": np.float64(0.125), "a": [np.int64(3), np.bool_(True), float("nan"), np.float32("inf"), 1e-05],
             "day": dt.date(2024, 1, 31), "at": pd.Timestamp("2024-01-31 16:00"), "array": np.array([0.5, 2.0])}
    frame = pd.DataFrame({"trade_date": D[0], "model": ["numpy"], "target_allocation": 0.5, "actual_allocation": 0.5,
                          "trade_required": [False], "signals": [value], "impacts": [{"z": 1, "y": 2}]})
    wh.replace(Write("overlay_signals", frame, {"trade_date": (D[0], D[0])}))
    got = wh.read_table("overlay_signals").iloc[0]
    assert json.loads(got["signals"]) == {"a": [3, True, None, None, 1e-05], "array": [0.5, 2.0],
                                          "at": "2024-01-31T16:00:00", "b": 0.125, "day": "2024-01-31"}
    assert list(json.loads(got["impacts"])) == ["y", "z"]

def _writer(path: str, ticker: str, rounds: int, start, errors) -> None:  # noqa: ANN001
    """A separate process replacing its own ticker's rows again and again."""
    try:
        wh = open_warehouse(path)
        start.wait(30)
        for i in range(rounds):
            wh.replace(Write("price_data", bars(D, [ticker], float(i + 1)), {"ticker": [ticker]}))
            wh.query("SELECT COUNT(*) FROM price_data")
    except BaseException as exc:  # reported to the parent
        errors.put(f"{ticker}: {type(exc).__name__}: {exc}")


def test_concurrent_duckdb_writers_from_two_processes_serialise(tmp_path):
    path = str(tmp_path / "shared.duckdb")
    open_warehouse(path).ensure_schema()
    ctx = multiprocessing.get_context("spawn")
    start, errors = ctx.Barrier(2), ctx.Queue()
    rounds = 25
    workers = [ctx.Process(target=_writer, args=(path, t, rounds, start, errors)) for t in ("AAA", "BBB")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == [] and [w.exitcode for w in workers] == [0, 0]
    got = stored(open_warehouse(path))
    assert len(got) == 6
    assert set(got["adj_close"]) == {float(rounds), rounds + 1.0, rounds + 2.0}


def test_a_session_reuses_one_connection_and_survives_a_failed_write(url):
    wh = open_warehouse(url)
    opened = []
    real_open = wh._open

    def counting_open(read_only: bool = False):  # noqa: ANN202 - the real connection, counting how often it connects
        opened.append(1)
        return real_open(read_only)

    wh._open = counting_open
    with wh.session() as held:
        assert held is wh
        wh.replace(Write("price_data", bars(D, ["AAA"], 10.0), {"trade_date": (D[0], D[-1])}))
        with wh.session():  # re-entrant: the inner block uses the same connection
            assert len(stored(wh)) == 3
        with pytest.raises(Exception):  # duplicate keys: the transaction rolls back, the session goes on
            wh.replace(Write("price_data", pd.concat([bars(D, ["BBB"], 1.0)] * 2), {"trade_date": (D[0], D[-1])}))
        assert set(stored(wh)["ticker"]) == {"AAA"}
        wh.replace(Write("price_data", bars(D, ["CCC"], 5.0), {"ticker": ["CCC"]}))
        assert wh.scalar("SELECT COUNT(*) FROM price_data") == 6
    assert len(opened) == 1
    assert len(stored(wh)) == 6 and len(opened) == 2  # outside a session every call connects again


def _hold_session(path: str, held, release) -> None:  # noqa: ANN001
    wh = open_warehouse(path)
    with wh.session():
        wh.replace(Write("price_data", bars(D, ["AAA"], 1.0), {"ticker": ["AAA"]}))
        held.set()
        release.wait(60)
        wh.replace(Write("price_data", bars(D, ["AAA"], 2.0), {"ticker": ["AAA"]}))


def test_a_duckdb_session_keeps_other_processes_waiting_until_it_ends(tmp_path):
    """A reader that starts while another process holds a session neither fails nor reads the session's
    intermediate state: it returns what the session wrote last, just before it ended (after the reader began)."""
    path = str(tmp_path / "session.duckdb")
    open_warehouse(path).ensure_schema()
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_session, args=(path, held, release))
    holder.start()
    assert held.wait(60)
    result, attempting = {}, threading.Event()

    def read() -> None:
        attempting.set()
        result["n"] = open_warehouse(path).scalar("SELECT MAX(adj_close) FROM price_data")

    reader = threading.Thread(target=read)
    reader.start()
    assert attempting.wait(60)
    release.set()  # only now does the holder write its last values (2.0 + ...) and end the session
    reader.join(60)
    holder.join(60)
    assert holder.exitcode == 0 and result["n"] == 2.0 + len(D) - 1  # it waited for the session's end


def test_duckdb_files_attached_to_one_process_stay_apart_and_are_released(tmp_path):
    """Every DuckDB warehouse in a process shares one in-memory instance (files are ATTACHed per session): two
    files used in nested sessions keep their own rows, and a finished session leaves the file to any process."""
    a, b = open_warehouse(str(tmp_path / "a.duckdb")), open_warehouse(str(tmp_path / "b.duckdb"))
    with a.session(), b.session():
        a.replace(Write("price_data", bars(D, ["AAA"], 1.0), {"ticker": ["AAA"]}))
        b.replace(Write("price_data", bars(D[:1], ["BBB"], 2.0), {"ticker": ["BBB"]}))
        assert a.scalar("SELECT COUNT(*) FROM price_data") == 3
    assert set(stored(b)["ticker"]) == {"BBB"} and set(stored(a)["ticker"]) == {"AAA"}
    with duckdb.connect(str(tmp_path / "a.duckdb")) as conn:  # a plain connection: no lock left behind
        conn.execute("DELETE FROM price_data WHERE ticker = 'AAA'")
    assert a.scalar("SELECT COUNT(*) FROM price_data") == 0  # the next session sees the file as it is now


def test_query_arrow_returns_the_rows_of_query(url):
    """The Arrow read (DuckDB natively, Postgres through its frame) holds the same dates, text, numbers and NULLs."""
    wh = open_warehouse(url)
    frame = bars(D, ["AAA", "B|B"], 10.0)
    frame.loc[1, "close"] = np.nan
    wh.replace(Write("price_data", frame, {"trade_date": (D[0], D[-1])}))
    sql = "SELECT trade_date, ticker, adj_close, close FROM price_data WHERE trade_date >= ? ORDER BY trade_date, ticker"
    table = wh.query_arrow(sql, [D[1]])
    want = wh.query(sql, [D[1]])
    assert table.num_rows == len(want) == 4
    assert list(pd.DatetimeIndex(table.column("trade_date").to_numpy())) == list(want["trade_date"])
    assert table.column("ticker").to_pylist() == list(want["ticker"])
    np.testing.assert_array_equal(table.column("adj_close").to_numpy(), want["adj_close"].to_numpy(float))
    np.testing.assert_array_equal(table.column("close").to_numpy().astype(float), want["close"].to_numpy(float))


def test_query_gives_the_same_typed_values_on_both_backends(url):
    """`query` on PostgreSQL reads through COPY + Arrow (as CSV for a one-off call, binary through ADBC in a
    session): booleans ('t'/'f' in COPY), text spelled like a NULL marker, empty text, NaN and infinities,
    integers and booleans with NULLs, smallint, real and numeric results come back as on DuckDB, both ways."""
    wh = open_warehouse(url)
    frame = pd.DataFrame({"trade_date": D, "model": ["NULL", "", "\\N"], "target_allocation": [np.nan, np.inf, -np.inf],
                          "actual_allocation": [None, 0.5, 1.0], "trade_required": [True, None, False],
                          "signals": [None, "{}", '{"a": 1}'], "impacts": None})
    wh.replace(Write("overlay_signals", frame, {"trade_date": (D[0], D[-1])}))
    sql = ("SELECT trade_date, model, target_allocation, actual_allocation, trade_required, signals, "
           "CAST(NULL AS INTEGER) AS none_int, CAST(2 AS BIGINT) AS two, COUNT(*) OVER () AS n, "
           "CAST(3 AS SMALLINT) AS small, CAST(0.5 AS REAL) AS half, CAST(1.25 AS DECIMAL(6, 2)) AS exact, "
           "AVG(actual_allocation) OVER () AS mean FROM overlay_signals ORDER BY trade_date")
    with wh.session():
        in_session = wh.query(sql)
    for got in (wh.query(sql), in_session):
        assert list(got["trade_date"]) == [pd.Timestamp(d) for d in D]
        assert list(got["model"]) == ["NULL", "", "\\N"]
        target = got["target_allocation"].to_numpy(float)
        assert np.isnan(target[0]) and target[1] == np.inf and target[2] == -np.inf
        assert pd.isna(got["actual_allocation"].iloc[0]) and list(got["actual_allocation"].iloc[1:]) == [0.5, 1.0]
        assert bool(got["trade_required"].iloc[0]) and pd.isna(got["trade_required"].iloc[1])
        assert not got["trade_required"].iloc[2]
        assert pd.isna(got["signals"].iloc[0]) and [json.loads(v) for v in got["signals"].iloc[1:]] == [{}, {"a": 1}]
        assert got["none_int"].isna().all() and list(got["two"]) == [2, 2, 2] and list(got["n"]) == [3, 3, 3]
        assert list(got["small"]) == [3, 3, 3] and list(got["half"]) == [0.5] * 3 and list(got["mean"]) == [0.75] * 3
        assert [float(x) for x in got["exact"]] == [1.25] * 3
        assert got["mean"].dtype == np.float64, got.dtypes
    pd.testing.assert_frame_equal(in_session, wh.query(sql))
    assert wh.scalar("SELECT COUNT(*) FROM overlay_signals WHERE trade_required") == 1


def test_day_digests_change_exactly_on_the_days_whose_rows_change(url):
    """`day_digests` (computed by the database) gives each day's row count and a digest of its rows that does not
    depend on row order, and changes on a day whose value, ticker or NULL-ness changes, and only there."""
    wh = open_warehouse(url)
    rows = bars(D, ["AAA", "BBB", "CCC"], 10.0)
    wh.replace(Write("price_data", rows, {"trade_date": (D[0], D[-1])}))

    def digests(where: str = "TRUE", params: tuple = ()) -> pd.DataFrame:  # noqa: ANN001
        return wh.day_digests("price_data", "trade_date", ["ticker", "adj_close"], where, params)

    before = digests()
    assert list(before["day"]) == [pd.Timestamp(d) for d in D] and list(before["n"]) == [3, 3, 3]
    assert before["digest"].nunique() == 3  # different prices each day
    with wh.session():
        assert digests().equals(before)  # the session's reads give the same
    assert list(digests("ticker IN (?, ?)", ("AAA", "ZZZ"))["n"]) == [1, 1, 1]

    day = D[1]
    frame = pd.DataFrame(rows[rows["trade_date"] == day].to_dict("records")[::-1])  # same rows, another order
    wh.replace(Write("price_data", frame, {"trade_date": [day]}))
    assert digests().equals(before)
    for change in ({"adj_close": 11.000000000001}, {"adj_close": np.nan}, {"ticker": "DDD"}):
        changed = frame.copy()
        for column, value in change.items():
            changed.loc[changed["ticker"] == "AAA", column] = value
        wh.replace(Write("price_data", changed, {"trade_date": [day]}))
        after = digests()
        assert list(after["n"]) == [3, 3, 3]
        assert [a != b for a, b in zip(after["digest"], before["digest"])] == [False, True, False], change
    assert digests("FALSE").empty


def _hold_read_only_session(path: str, held, release) -> None:  # noqa: ANN001
    wh = open_warehouse(path)
    with wh.session(read_only=True):
        assert wh.scalar("SELECT COUNT(*) FROM price_data") == len(D)
        held.set()
        release.wait(60)


def test_duckdb_read_only_sessions_of_two_processes_run_side_by_side_and_writers_wait(tmp_path):
    """While another process holds a read-only session, a read-only session here opens at once and reads, a
    write waits until the reader has ended, and a read-only session refuses to write."""
    path = str(tmp_path / "shared.duckdb")
    wh = open_warehouse(path)
    wh.replace(Write("price_data", bars(D, ["AAA"], 1.0), {"ticker": ["AAA"]}))
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_read_only_session, args=(path, held, release))
    holder.start()
    try:
        assert held.wait(60)
        with wh.session(read_only=True):  # beside the other process's reader, not after it
            assert wh.scalar("SELECT MAX(adj_close) FROM price_data") == 1.0 + len(D) - 1
            with pytest.raises(duckdb.Error, match="read-only"):
                wh.replace(Write("price_data", bars(D, ["AAA"], 5.0), {"ticker": ["AAA"]}))
        assert not release.is_set()
        written = threading.Event()

        def write() -> None:
            wh.replace(Write("price_data", bars(D, ["AAA"], 2.0), {"ticker": ["AAA"]}))
            written.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not written.wait(1.0)  # the reader still holds the shared lock
        release.set()
        writer.join(60)
        assert written.is_set()
    finally:
        release.set()
        holder.join(60)
    assert holder.exitcode == 0
    assert wh.scalar("SELECT MAX(adj_close) FROM price_data") == 2.0 + len(D) - 1
