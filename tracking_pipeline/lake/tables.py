"""Reading and validating the lake's tables (prices, features, reference data, model files)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tracking_pipeline.lake.errors import LakeInputError
from tracking_pipeline.lake.storage import Lake
from tracking_pipeline.trading_calendar import session_mask

TABLE_PATTERNS = ("*.csv", "*.parquet")
PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")
SOURCE_FILE, SOURCE_ROW = "_source_file", "_source_row"  # where each price row came from, for error messages


def _shown(value: object) -> str:
    """A cell for a message: plain numbers, 'empty' for a missing value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "empty"
    return repr(value.item() if isinstance(value, np.generic) else value)


def read_frame(lake: Lake, relative: str, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One CSV or Parquet file as a frame (only `columns`, matched case-insensitively, when given); a malformed
    or empty file is a LakeInputError naming it."""
    where = lake.describe(relative)
    data = lake.read_bytes(relative)
    if not data.strip():
        raise LakeInputError(where, "file is empty")
    wanted = None if columns is None else (lambda name: str(name).strip().lower() in columns)
    try:
        if relative.endswith(".parquet"):
            names = None
            if wanted is not None:
                names = [n for n in pq.read_schema(io.BytesIO(data)).names if wanted(n)]
            # dates as datetime64 (one vectorised cast), not a Python date object per row
            frame = pd.read_parquet(io.BytesIO(data), columns=names, to_pandas_kwargs={"date_as_object": False})
        else:
            frame = pd.read_csv(io.BytesIO(data), usecols=wanted)
    except Exception as exc:  # pandas/pyarrow raise many parser errors
        raise LakeInputError(where, f"cannot be read as {relative.rsplit('.', 1)[-1]}: {exc}") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame


def _require(frame: pd.DataFrame, where: str, columns: tuple[str, ...]) -> None:
    for column in columns:
        if column not in frame.columns:
            raise LakeInputError(where, f"missing required column (has: {', '.join(frame.columns)})", field=column)


def _parse_dates(values: pd.Series, where: str, column: str) -> pd.Series:
    # Numbers are parsed as text (20180702 is a date, 5 is not): pandas would read them as epoch nanoseconds.
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    parsed = pd.to_datetime(values.astype(str) if numeric else values, errors="coerce", format="mixed")
    bad = parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise LakeInputError(where, f"not a date: {_shown(values.iloc[row])}", row=row + 1, field=column)
    return parsed.dt.tz_localize(None).dt.normalize() if parsed.dt.tz is not None else parsed.dt.normalize()


def _numeric(frame: pd.DataFrame, where: str, column: str, rows: np.ndarray | None = None) -> pd.Series:
    """A column as float64; text that is not a number is an error naming its row (`rows`: the file's 0-based row
    of each of the frame's rows, when the frame is a selection)."""
    raw = frame[column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    values = pd.to_numeric(raw, errors="coerce")
    suspect = values.isna() & raw.notna()  # only these cells can be text that is not a number
    bad = suspect.copy()
    if suspect.any():
        bad[suspect] = raw[suspect].astype(str).str.strip() != ""
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise LakeInputError(where, f"not a number: {_shown(frame[column].iloc[row])}",
                             row=int(rows[row] if rows is not None else row) + 1, field=column)
    return values.astype("float64")


def validate_prices(frame: pd.DataFrame, where: str, today: dt.date | None = None,
                    start: dt.date | str | None = None, end: dt.date | str | None = None) -> pd.DataFrame:
    """Required columns and real dates (not in the future) on every row; on the rows dated in [start, end] (every
    row by default), which are returned with their file row number in SOURCE_ROW: a ticker, a finite positive
    adj_close and numeric bars. So a nightly partition converts and checks one day, not the file's history."""
    _require(frame, where, ("date", "ticker", "adj_close"))
    dates = _parse_dates(frame["date"], where, "date")
    limit = pd.Timestamp(today or dt.date.today())
    future = (dates > limit).to_numpy()
    if future.any():
        row = int(np.flatnonzero(future)[0])
        raise LakeInputError(where, f"date {dates.iloc[row].date()} is in the future", row=row + 1, field="date")
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= (dates >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (dates <= pd.Timestamp(end)).to_numpy()
    rows = np.flatnonzero(keep)
    if len(rows) < len(frame):
        frame, dates = frame.iloc[rows].reset_index(drop=True), dates.iloc[rows].reset_index(drop=True)
    out = pd.DataFrame({"trade_date": dates, "ticker": frame["ticker"].astype("string").str.strip()})
    empty = (out["ticker"].isna() | (out["ticker"] == "")).to_numpy()
    if empty.any():
        raise LakeInputError(where, "empty ticker", row=int(rows[np.flatnonzero(empty)[0]]) + 1, field="ticker")
    for column in PRICE_COLUMNS:
        out[column] = _numeric(frame, where, column, rows) if column in frame.columns else np.nan
    adj = out["adj_close"].to_numpy()
    bad = ~np.isfinite(adj) | (adj <= 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise LakeInputError(where, f"adj_close must be a finite positive price, got {_shown(adj[row])} "
                                    f"({out['ticker'].iloc[row]} on {out['trade_date'].iloc[row].date()})",
                             row=int(rows[row]) + 1, field="adj_close")
    out[SOURCE_ROW] = rows + 1
    return out


def drop_duplicate_bars(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Identical duplicate (date, ticker) rows collapse to one; conflicting ones are an error naming both rows.

    When the frame carries SOURCE_FILE/SOURCE_ROW columns (load_prices adds them) the error names the file and
    row of each conflicting bar; otherwise it names `where`."""
    key = ["trade_date", "ticker"]
    values = [c for c in frame.columns if c not in (SOURCE_FILE, SOURCE_ROW)]
    dup = frame.duplicated(key, keep=False)
    if not dup.any():
        return frame
    distinct = frame[dup].drop_duplicates(values)
    conflicts = distinct[distinct.duplicated(key, keep=False)]
    if len(conflicts):
        first = conflicts.iloc[0]
        pair = conflicts[(conflicts["trade_date"] == first["trade_date"]) & (conflicts["ticker"] == first["ticker"])]
        a, b = pair.iloc[0], pair.iloc[1]
        differing = [c for c in values if c not in key and not (a[c] == b[c] or (pd.isna(a[c]) and pd.isna(b[c])))]
        message = (f"duplicate rows for ({first['trade_date'].date()}, {first['ticker']}) with different values "
                   f"({', '.join(f'{c} {_shown(a[c])} vs {_shown(b[c])}' for c in differing)})")
        field = "adj_close" if "adj_close" in differing else (differing or ["date,ticker"])[0]
        if SOURCE_FILE in frame.columns:
            other = b[SOURCE_FILE] if b[SOURCE_FILE] != a[SOURCE_FILE] else "this file"
            raise LakeInputError(a[SOURCE_FILE], f"{message}; the other row is {other}, row {int(b[SOURCE_ROW])}",
                                 row=int(a[SOURCE_ROW]), field=field)
        raise LakeInputError(where, message, field="date,ticker")
    return frame.drop_duplicates(key)


def load_prices(lake: Lake, start: dt.date | str | None = None, end: dt.date | str | None = None,
                tickers: list[str] | None = None) -> pd.DataFrame:
    """All price files under prices/ (recursively), optionally cut to [start, end] and tickers; validated as in
    `validate_prices` (dates on every row, the other fields on the rows within [start, end])."""
    files = lake.list("prices", TABLE_PATTERNS, recursive=True)
    if not files:
        raise LakeInputError(lake.describe("prices/"), "no price files (*.csv or *.parquet) found")
    frames = []
    for relative in files:
        where = lake.describe(relative)
        frame = validate_prices(read_frame(lake, relative), where, start=start, end=end)
        frame[SOURCE_FILE] = where
        frame = drop_non_sessions(lake, frame, where)
        if tickers is not None:
            frame = frame[frame["ticker"].isin(tickers)]
        frames.append(frame)
    prices = pd.concat(frames, ignore_index=True)
    prices = drop_duplicate_bars(prices, lake.describe("prices/")).drop(columns=[SOURCE_FILE, SOURCE_ROW])
    return prices.sort_values(["trade_date", "ticker"], ignore_index=True)


def drop_non_sessions(lake: Lake, frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Rows dated on a weekend or NYSE holiday are not prices of a trading day: they are left out (never stored,
    never counted as a fresh price) and a warning naming the file, the first such row and the count is recorded."""
    trading = session_mask(frame["trade_date"])
    if trading.all():
        return frame
    row = int(np.flatnonzero(~trading)[0])
    number = int(frame[SOURCE_ROW].iloc[row]) if SOURCE_ROW in frame.columns else row + 1
    lake.warn(f"{where}: {int((~trading).sum())} row(s) dated on a non-trading day ignored, first row {number} "
              f"({frame['ticker'].iloc[row]} on {frame['trade_date'].iloc[row].date()})")
    return frame[trading]


def priced_tickers(lake: Lake) -> set[str]:
    """The tickers of every readable price file (to check portfolio holdings against). A file that cannot be read
    is skipped with a warning: its error is price_data's to report, and it must not block registration."""
    tickers: set[str] = set()
    for relative in lake.list("prices", TABLE_PATTERNS, recursive=True):
        try:
            frame = read_frame(lake, relative, columns=("ticker",))
            _require(frame, lake.describe(relative), ("ticker",))
        except LakeInputError as exc:
            lake.warn(f"tickers of {lake.describe(relative)} not read: {exc}")
            continue
        tickers.update(str(t).strip() for t in frame["ticker"].dropna().unique())
    return tickers


def load_features(lake: Lake) -> pd.DataFrame:
    """features/*: `date` plus numeric columns, outer-joined on date. Optional (empty frame when absent)."""
    merged: pd.DataFrame | None = None
    for relative in lake.list("features", TABLE_PATTERNS):
        where = lake.describe(relative)
        frame = read_frame(lake, relative)
        _require(frame, where, ("date",))
        out = pd.DataFrame({"trade_date": _parse_dates(frame["date"], where, "date")})
        for column in frame.columns:
            if column != "date":
                out[column] = _numeric(frame, where, column)
        if out["trade_date"].duplicated().any():
            row = int(np.flatnonzero(out["trade_date"].duplicated().to_numpy())[0])
            raise LakeInputError(where, "duplicate date", row=row + 1, field="date")
        merged = out if merged is None else merged.merge(out, on="trade_date", how="outer", suffixes=("", "_dup"))
    if merged is None:
        return pd.DataFrame({"trade_date": pd.Series(dtype="datetime64[ns]")})
    return merged.sort_values("trade_date", ignore_index=True)


def load_sectors(lake: Lake) -> dict[str, str]:
    """ticker -> GICS sector from reference/sectors.csv (empty when absent: every ticker 'Unclassified')."""
    relative = "reference/sectors.csv"
    if not lake.exists(relative):
        return {}
    frame = read_frame(lake, relative)
    _require(frame, lake.describe(relative), ("ticker", "gics_sector"))
    return dict(zip(frame["ticker"].astype(str).str.strip(), frame["gics_sector"].astype(str).str.strip()))


def load_benchmark_sector_weights(lake: Lake, benchmark: str) -> dict[str, float] | None:
    """The latest weights for `benchmark` from reference/benchmark_sector_weights.csv, or None when absent."""
    relative = "reference/benchmark_sector_weights.csv"
    if not lake.exists(relative):
        return None
    where = lake.describe(relative)
    frame = read_frame(lake, relative)
    _require(frame, where, ("benchmark_code", "asof_date", "sector", "weight"))
    frame["asof_date"] = _parse_dates(frame["asof_date"], where, "asof_date")
    frame["weight"] = _numeric(frame, where, "weight")
    rows = frame[frame["benchmark_code"].astype(str) == benchmark]
    if rows.empty:
        return None
    latest = rows[rows["asof_date"] == rows["asof_date"].max()]
    return dict(zip(latest["sector"].astype(str), latest["weight"].astype(float)))


def load_model_config(lake: Lake, model: str) -> dict:
    """models/<model>/config.json overrides (empty when absent)."""
    relative = f"models/{model}/config.json"
    if not lake.exists(relative):
        return {}
    try:
        config = json.loads(lake.read_bytes(relative))
    except json.JSONDecodeError as exc:
        raise LakeInputError(lake.describe(relative), f"malformed JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise LakeInputError(lake.describe(relative), "must hold a JSON object of parameters")
    return config


def load_allocation_history(lake: Lake, model: str) -> pd.Series | None:
    """models/<model>/allocation_history.csv as a date -> target_allocation series, or None."""
    relative = f"models/{model}/allocation_history.csv"
    if not lake.exists(relative):
        return None
    where = lake.describe(relative)
    frame = read_frame(lake, relative)
    _require(frame, where, ("date", "target_allocation"))
    dates = _parse_dates(frame["date"], where, "date")
    values = _numeric(frame, where, "target_allocation")
    bad = values.isna() | (values < 0) | (values > 1)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise LakeInputError(where, f"target_allocation must be in [0, 1], got {values.iloc[row]!r}",
                             row=row + 1, field="target_allocation")
    return pd.Series(values.to_numpy(), index=pd.DatetimeIndex(dates), name=model).sort_index()


def price_day_span(lake: Lake) -> tuple[dt.date, dt.date]:
    """The first and last trading day with prices in the lake, from the date column of every price file.

    Cached in the lake cache folder under a key made of the files' versions, so repeated definition loads read
    no price file until one changes."""
    files = lake.list("prices", TABLE_PATTERNS, recursive=True)
    if not files:
        raise LakeInputError(lake.describe("prices/"), "no price files (*.csv or *.parquet) found")
    versions = {relative: lake.version(relative) for relative in files}
    digest = hashlib.sha256(json.dumps([lake.root, versions], sort_keys=True).encode()).hexdigest()[:24]
    cached = lake.cache_dir / ".price_span" / f"{digest}.json"
    if cached.is_file():
        first, last = json.loads(cached.read_text())
        return dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    lows, highs = [], []
    for relative in files:
        where = lake.describe(relative)
        frame = read_frame(lake, relative, columns=("date",))
        _require(frame, where, ("date",))
        days = _parse_dates(frame["date"], where, "date")
        days = days[session_mask(days)]
        if len(days):
            lows.append(days.min())
            highs.append(days.max())
    if not lows:
        raise LakeInputError(lake.describe("prices/"), "no price row is dated on a trading day")
    span = (min(lows).date(), max(highs).date())
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps([d.isoformat() for d in span]))
    return span
