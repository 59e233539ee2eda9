#!/usr/bin/env python
"""Build the demo input lake that ships inside the ``tracking_pipeline`` package.

The demo lake is a small, self-contained subset of the real market data in ``../shared/data``
(see that folder's README for provenance) laid out as the input lake described in the contract:

    prices/stocks.parquet            daily bars of ~70 S&P 500 stocks across all 11 GICS sectors
    prices/etfs.parquet              daily bars of SPY, QQQ, VTI, GLD, AGG, EFA
    features/features_latest.parquet VIX open/high/low/close on every trading day of SPY
    reference/sectors.csv            GICS sector of every stock in the lake
    portfolios/*.yaml                five demo portfolios of different character
    README.md                        what is in here and where it comes from

Everything is derived deterministically from the source files: running the script again gives
byte-identical files (for the same pandas/pyarrow versions) and identical table contents in any case.

Usage (from the repository root)::

    python scripts/build_demo_lake.py                       # writes tracking_pipeline/demo_lake
    python scripts/build_demo_lake.py --out /tmp/lake       # somewhere else
    python scripts/build_demo_lake.py --source /path/to/data

Only the Python standard library, pandas, pyarrow and PyYAML are needed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT / ".." / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "tracking_pipeline" / "demo_lake"

START = "2018-01-02"
END = "2023-10-27"  # last day of the stock file; the ETFs are cut to the same end
HISTORY_START = "2017-01-03"  # extra stock history used only to compute the momentum portfolio

# Stocks of the demo lake, grouped by GICS sector (as classified in gics_sectors.csv).
# Every one of them has a bar on every trading day of START..END in stocks_daily.csv.gz.
# (DUK and APD are not in the source file; LNT/AES and EMN/IP stand in for them.)
STOCKS_BY_SECTOR: dict[str, list[str]] = {
    "Information Technology": [
        "AAPL", "MSFT", "NVDA", "ADBE", "CRM", "INTC", "CSCO", "ORCL", "AVGO", "TXN", "QCOM", "IBM",
    ],
    "Communication Services": ["META", "GOOGL", "NFLX", "DIS", "T", "VZ", "CMCSA"],
    "Consumer Discretionary": ["AMZN", "TSLA", "HD", "MCD", "NKE", "SBUX", "LOW", "BKNG"],
    "Consumer Staples": ["PG", "KO", "PEP", "WMT", "COST", "PM", "MDLZ"],
    "Health Care": ["JNJ", "UNH", "PFE", "MRK", "ABBV", "LLY", "TMO"],
    "Financials": ["BRK-B", "JPM", "V", "MA", "BAC", "WFC", "GS", "MS", "BLK"],
    "Energy": ["XOM", "CVX", "COP"],
    "Utilities": ["NEE", "SO", "LNT", "AES"],
    "Materials": ["LIN", "EMN", "IP"],
    "Industrials": ["CAT", "HON", "UPS", "BA", "GE", "UNP", "LMT", "DE", "RTX"],
    "Real Estate": ["AMT", "PLD", "ESS"],
}
STOCKS = sorted(t for names in STOCKS_BY_SECTOR.values() for t in names)
ETFS = ["AGG", "EFA", "GLD", "QQQ", "SPY", "VTI"]

PRICE_COLUMNS = ["date", "ticker", "open", "high", "low", "close", "adj_close", "volume"]
PRICE_SCHEMA = pa.schema(
    [
        ("date", pa.date32()),
        ("ticker", pa.string()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("adj_close", pa.float64()),
        ("volume", pa.int64()),
    ]
)
FEATURE_SCHEMA = pa.schema(
    [
        ("date", pa.date32()),
        ("vix_open", pa.float64()),
        ("vix_high", pa.float64()),
        ("vix_low", pa.float64()),
        ("vix_close", pa.float64()),
    ]
)
ALL_VARIANTS = ["raw", "conservative", "trend_regime_v2"]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def fail(msg: str) -> None:
    print(f"build_demo_lake: error: {msg}", file=sys.stderr)
    raise SystemExit(1)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def write_parquet(df: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    """Write a table without pandas/pyarrow metadata so the bytes depend only on the content."""
    table = pa.Table.from_pandas(df, schema=schema, preserve_index=False).replace_schema_metadata(None)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=9,
        row_group_size=1_000_000,
        use_dictionary=True,
        write_statistics=True,
    )


def read_prices(path: Path, tickers: list[str], start: str = START) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"ticker": str, "date": str})
    missing_cols = set(PRICE_COLUMNS) - set(df.columns)
    if missing_cols:
        fail(f"{path}: missing columns {sorted(missing_cols)}")
    df = df[df["ticker"].isin(tickers) & (df["date"] >= start) & (df["date"] <= END)][PRICE_COLUMNS]
    absent = sorted(set(tickers) - set(df["ticker"]))
    if absent:
        fail(f"{path}: no rows for {absent} between {start} and {END}")
    if df.duplicated(["date", "ticker"]).any():
        fail(f"{path}: duplicate (date, ticker) rows")
    if df[["open", "high", "low", "close", "adj_close"]].le(0).any().any() or df.isna().any().any():
        fail(f"{path}: non-positive or missing prices in the selected range")
    if not (df["volume"] % 1 == 0).all():
        fail(f"{path}: non-integral volume")
    df = df.assign(
        date=pd.to_datetime(df["date"], format="%Y-%m-%d").dt.date,
        volume=df["volume"].astype("int64"),
    )
    return df.sort_values(["ticker", "date"], kind="mergesort").reset_index(drop=True)


def floor4(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)


def normalise(raw: dict[str, float], invested: str) -> dict[str, float]:
    """Scale positive scores to weights summing to at most ``invested``, 4 decimals, floored."""
    total = Decimal(str(sum(raw.values())))
    target = Decimal(invested)
    out = {t: floor4(Decimal(str(v)) / total * target) for t, v in raw.items()}
    return {t: float(w) for t, w in out.items()}


def cap_weights(scores: dict[str, float], cap: float) -> dict[str, float]:
    """Proportional weights summing to 1 with no name above ``cap``; the excess goes pro rata to the rest."""
    w = {t: v / sum(scores.values()) for t, v in scores.items()}
    for _ in range(len(w)):
        over = {t for t, x in w.items() if x > cap}
        if not over:
            break
        capped = {t for t, x in w.items() if x >= cap}
        free = {t: x for t, x in w.items() if t not in capped}
        room = 1.0 - cap * len(capped)
        scale = room / sum(free.values())
        w = {t: (cap if t in capped else x * scale) for t, x in w.items()}
    return w


def trading_on_or_after(days: pd.DatetimeIndex, day: dt.date) -> dt.date:
    pos = days.searchsorted(pd.Timestamp(day))
    if pos >= len(days):
        fail(f"no trading day on or after {day}")
    return days[pos].date()


# ----------------------------------------------------------------------------------------------
# portfolios
# ----------------------------------------------------------------------------------------------


def portfolio_tech_leaders(adj: pd.DataFrame, days: pd.DatetimeIndex) -> dict:
    """Concentrated mega-cap tech, weights follow approximate market caps (quarterly)."""
    # approximate market capitalisation in USD bn at the close of 2018-12-31; later caps
    # are these scaled by the adjusted price change (a Topweights-style cap-weighted basket)
    base_caps = {
        "AAPL": 750, "MSFT": 780, "AMZN": 735, "GOOGL": 725, "META": 375,
        "NVDA": 80, "ADBE": 110, "CRM": 105, "AVGO": 100, "ORCL": 160,
    }
    base_day = d("2018-12-31")
    dates = [
        "2019-01-02", "2019-04-01", "2019-07-01", "2019-10-01",
        "2020-01-02", "2020-04-01", "2020-07-01", "2020-10-01",
        "2021-01-01",  # New Year's Day: applied on 2021-01-04
        "2021-04-01", "2021-07-01", "2021-10-01",
        "2022-01-01",  # a Saturday: applied on 2022-01-03
        "2022-04-01", "2022-07-01",
        "2022-10-01",  # a Saturday: applied on 2022-10-03
    ]
    holdings = []
    for text in dates:
        eff = d(text)
        members = ["AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "ADBE", "CRM"]
        if eff >= d("2020-07-01"):
            members.append("AVGO")
        if eff >= d("2022-01-01"):
            members.remove("CRM")
            members.append("ORCL")
        # caps as of the last close before the (trading) effective day: no look-ahead
        asof = adj.loc[: pd.Timestamp(trading_on_or_after(days, eff)) - pd.Timedelta(days=1)].iloc[-1]
        base = adj.loc[pd.Timestamp(base_day)]
        caps = {t: base_caps[t] * asof[t] / base[t] for t in members}
        holdings.append({"effective_date": eff, "weights": normalise(cap_weights(caps, 0.25), "0.99")})
    return {
        "name": "Tech Leaders",
        "description": (
            "Concentrated mega-cap technology basket, cap-weighted with "
            "a 25% name cap, rebalanced quarterly"
        ),
        "source": "Topweights",
        "start_date": d("2019-01-02"),
        "initial_nav": 100,
        "benchmark": "QQQ",
        "variants": ALL_VARIANTS,
        "holdings": holdings,
    }


def portfolio_diversified() -> dict:
    """30 names across every sector, near-equal weight, 2% cash, annual rebalance."""
    names_2018 = [
        "AAPL", "MSFT", "INTC", "CSCO",  # IT
        "GOOGL", "DIS", "VZ",  # Communication Services
        "AMZN", "HD", "MCD",  # Consumer Discretionary
        "PG", "KO", "WMT",  # Consumer Staples
        "JNJ", "UNH", "PFE", "MRK",  # Health Care
        "BRK-B", "JPM", "V", "BAC",  # Financials
        "XOM", "CVX",  # Energy
        "NEE", "SO",  # Utilities
        "LIN",  # Materials
        "HON", "UNP", "CAT",  # Industrials
        "AMT",  # Real Estate
    ]
    swaps = {  # effective date -> (leaving, entering)
        "2020-07-04": [("INTC", "AVGO")],
        "2021-07-05": [("PFE", "LLY"), ("VZ", "META")],
        "2022-07-01": [("BAC", "MA")],
        "2023-06-30": [("CAT", "PLD")],
    }
    dates = [
        "2018-10-01",
        "2019-07-04",  # Independence Day: applied on 2019-07-05
        "2020-07-04",  # a Saturday (holiday observed 07-03): applied on 2020-07-06
        "2021-07-05",  # Independence Day observed: applied on 2021-07-06
        "2022-07-01",
        "2023-06-30",
    ]
    members = list(names_2018)
    holdings = []
    for text in dates:
        for leaving, entering in swaps.get(text, []):
            members[members.index(leaving)] = entering
        # 0.98 over 30 names: the first 20 get 0.0327, the other 10 get 0.0326 (sum 0.98)
        ordered = sorted(members)
        weights = {t: (0.0327 if i < 20 else 0.0326) for i, t in enumerate(ordered)}
        holdings.append({"effective_date": d(text), "weights": weights})
    return {
        "name": "Diversified Large Cap",
        "description": (
            "Thirty large caps across all eleven GICS "
            "sectors, near-equal weights, 2% cash, rebalanced each July"
        ),
        "source": "Manual",
        "start_date": d("2018-10-01"),
        "initial_nav": 1000,
        "benchmark": "SPY",
        "variants": ALL_VARIANTS,
        "holdings": holdings,
    }


def portfolio_balanced() -> dict:
    holdings = [
        {"effective_date": d("2018-07-02"), "weights": {"SPY": 0.55, "AGG": 0.40}},
        # New Year's Day: applied on 2019-01-02
        {"effective_date": d("2019-01-01"), "weights": {"SPY": 0.55, "AGG": 0.40}},
        {"effective_date": d("2020-01-02"), "weights": {"SPY": 0.55, "AGG": 0.40}},
        {"effective_date": d("2021-01-04"), "weights": {"SPY": 0.50, "AGG": 0.35, "GLD": 0.10}},
        {"effective_date": d("2022-01-03"), "weights": {"SPY": 0.50, "AGG": 0.35, "GLD": 0.10}},
        # New Year's Day observed on Monday 2023-01-02: applied on 2023-01-03
        {"effective_date": d("2023-01-02"), "weights": {"SPY": 0.48, "AGG": 0.37, "GLD": 0.10}},
    ]
    return {
        "name": "Balanced 60/40",
        "description": (
            "Classic balanced mix of US equities (SPY) and bonds "
            "(AGG) with 5% cash; gold (GLD) added from 2021"
        ),
        "source": "Manual",
        "start_date": d("2018-07-02"),
        "initial_nav": 100,
        "benchmark": "SPY",
        "variants": ALL_VARIANTS,
        "holdings": holdings,
    }


def portfolio_defensive() -> dict:
    base = {
        "JNJ": 0.08, "PG": 0.08, "KO": 0.08, "PEP": 0.08, "WMT": 0.08,
        "XOM": 0.08, "SO": 0.08, "LNT": 0.08, "VZ": 0.08, "T": 0.08, "GLD": 0.10,
    }
    more_gold = {**base, "XOM": 0.06, "T": 0.06, "GLD": 0.14}
    tilted = {**more_gold, "XOM": 0.08, "PG": 0.09, "JNJ": 0.09, "T": 0.05, "GLD": 0.12}
    holdings = [
        {"effective_date": d("2018-09-04"), "weights": base},
        {"effective_date": d("2019-03-01"), "weights": base},
        # Labor Day: applied on 2019-09-03
        {"effective_date": d("2019-09-02"), "weights": base},
        {"effective_date": d("2020-03-02"), "weights": more_gold},
        {"effective_date": d("2021-03-01"), "weights": more_gold},
        {"effective_date": d("2022-03-01"), "weights": tilted},
        # a Saturday: applied on 2023-03-06
        {"effective_date": d("2023-03-04"), "weights": tilted},
    ]
    return {
        "name": "Defensive Income",
        "description": (
            "Dividend payers from staples, health care, energy, utilities "
            "and telecom plus a gold sleeve; about 10% cash"
        ),
        "source": "Manual",
        "start_date": d("2018-09-04"),
        "initial_nav": 100,
        "benchmark": "SPY",
        # no `variants`: the default (raw plus every registered overlay) applies
        "holdings": holdings,
    }


def portfolio_momentum(history: pd.DataFrame, days: pd.DatetimeIndex) -> dict:
    """Quarterly rotation into the 10 lake stocks with the best 12-1 momentum.

    ``history`` holds adj_close of the lake stocks from before the lake's first day (the source has it),
    so the first rebalance on 2018-07-02 already has a full year of history.
    """
    dates = [
        "2018-07-02", "2018-10-01",
        "2019-01-01",  # New Year's Day: applied on 2019-01-02
        "2019-04-01", "2019-07-01", "2019-10-01",
        "2020-01-01",  # New Year's Day: applied on 2020-01-02
        "2020-04-01", "2020-07-01", "2020-10-01",
        "2021-01-01",  # New Year's Day: applied on 2021-01-04
        "2021-04-01", "2021-07-01", "2021-10-01",
        "2022-01-01",  # a Saturday: applied on 2022-01-03
        "2022-04-01", "2022-07-01",
        "2022-10-01",  # a Saturday: applied on 2022-10-03
        "2023-01-01",  # a Sunday (holiday observed 01-02): applied on 2023-01-03
        "2023-04-01",  # a Saturday: applied on 2023-04-03
        "2023-07-01",  # a Saturday: applied on 2023-07-03
    ]
    stocks = history[STOCKS]
    holdings = []
    for text in dates:
        eff = trading_on_or_after(days, d(text))
        hist = stocks.loc[: pd.Timestamp(eff) - pd.Timedelta(days=1)]  # strictly before: no look-ahead
        if len(hist) < 253:
            fail(f"not enough history for momentum at {eff}")
        mom = hist.iloc[-22] / hist.iloc[-253] - 1.0  # 12-month return skipping the last month
        mom = mom.sort_index()  # ties broken by ticker
        top = mom.sort_values(ascending=False, kind="mergesort").head(10).index
        weights = {t: 0.099 for t in sorted(top)}  # 0.99 invested, 1% cash
        holdings.append({"effective_date": d(text), "weights": weights})
    return {
        "name": "Alpha Momentum 10",
        "description": (
            "Model rotation: the 10 lake stocks with the strongest "
            "12-month momentum (skipping the last month), equal weight, quarterly"
        ),
        "source": "Model",
        "start_date": d("2018-07-02"),
        "initial_nav": 100,
        "benchmark": "SPY",
        "variants": ALL_VARIANTS,
        "holdings": holdings,
    }


def check_portfolio(p: dict, priced: dict[str, set], days: pd.DatetimeIndex) -> None:
    name = p["name"]
    if p["start_date"] not in {x.date() for x in days}:
        fail(f"{name}: start_date {p['start_date']} is not a trading day")
    if p["holdings"][0]["effective_date"] != p["start_date"]:
        fail(f"{name}: first rebalance must be on start_date")
    for h in p["holdings"]:
        eff = trading_on_or_after(days, h["effective_date"])
        total = sum(h["weights"].values())
        if total > 1.0:
            fail(f"{name} {h['effective_date']}: weights sum to {total}")
        for t, w in h["weights"].items():
            if not (0.0 <= w <= 1.0) or round(w, 4) != w:
                fail(f"{name} {h['effective_date']}: bad weight {t}={w}")
            if eff not in priced.get(t, set()):
                fail(f"{name}: {t} has no price on {eff}")


class _PlainDumper(yaml.SafeDumper):
    """SafeDumper without anchors/aliases: repeated weight maps are written out in full."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def dump_portfolio(p: dict) -> str:
    body = yaml.dump(p, Dumper=_PlainDumper, sort_keys=False, default_flow_style=None, width=4096, allow_unicode=True)
    header = "# Demo portfolio generated by scripts/build_demo_lake.py: edit the script, not this file.\n"
    return header + body


def slug(name: str) -> str:
    out = "".join(c.lower() if c.isalnum() else "_" for c in name)
    while "__" in out:
        out = out.replace("__", "_")
    return out.strip("_")


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------


README = """\
# Demo lake

The input lake embedded in `tracking_pipeline` (the default `TRACKING_LAKE`). It is generated by
`scripts/build_demo_lake.py` from the real market data in `../shared/data`; do not edit it by hand,
change the script and rebuild:

    python scripts/build_demo_lake.py

| path | content |
|---|---|
| `prices/stocks.parquet` | daily bars (`date, ticker, open, high, low, close, adj_close, volume`) of {n_stocks} S&P 500 stocks, {start} to {end} |
| `prices/etfs.parquet` | the same for {etfs}, cut to the same dates |
| `features/features_latest.parquet` | `date, vix_open, vix_high, vix_low, vix_close` (CBOE VIX) on every trading day of SPY |
| `reference/sectors.csv` | `ticker, name, gics_sector, gics_sub_industry` of every stock (ETFs are not listed: 'Unclassified') |
| `portfolios/*.yaml` | {n_portfolios} demo portfolios |

Sources: stock prices from the `Sicheng-Wang1999/SP500` repository (Yahoo data via quantmod), ETF prices from
`244196806qq/quant-research-platform` (Yahoo data), VIX from `datasets/finance-vix` (CBOE, PDDL), GICS sectors from
`datasets/s-and-p-500-companies` (PDDL). `adj_close` is adjusted for splits and dividends.

Some rebalance dates in the portfolios deliberately fall on weekends or exchange holidays (for example
2019-07-04); the pipeline applies them on the next trading day.
"""


def build(source: Path, out: Path) -> list[tuple[Path, int, str]]:
    for name in ("stocks_daily.csv.gz", "etfs_daily.csv.gz", "vix_daily.csv", "gics_sectors.csv"):
        if not (source / name).is_file():
            fail(f"source file {source / name} not found (use --source)")

    stocks_long = read_prices(source / "stocks_daily.csv.gz", STOCKS, start=HISTORY_START)
    history = stocks_long.pivot(index="date", columns="ticker", values="adj_close")
    history.index = pd.DatetimeIndex(history.index)
    history = history.sort_index()
    stocks = stocks_long[stocks_long["date"] >= d(START)].reset_index(drop=True)
    etfs = read_prices(source / "etfs_daily.csv.gz", ETFS)

    spy_days = pd.DatetimeIndex(sorted(pd.to_datetime(etfs.loc[etfs["ticker"] == "SPY", "date"])))
    if spy_days[0].date() != d(START) or spy_days[-1].date() != d(END):
        fail(f"SPY covers {spy_days[0].date()}..{spy_days[-1].date()}, expected {START}..{END}")
    day_set = {x.date() for x in spy_days}
    for label, df in (("stocks", stocks), ("etfs", etfs)):
        for ticker, g in df.groupby("ticker"):
            if set(g["date"]) != day_set:
                fail(f"{label}: {ticker} does not have a bar on exactly the {len(day_set)} SPY trading days")

    vix = pd.read_csv(source / "vix_daily.csv", dtype={"date": str})
    vix = vix.assign(date=pd.to_datetime(vix["date"], format="%Y-%m-%d").dt.date)
    vix = vix[vix["date"].isin(day_set)].rename(columns={c: f"vix_{c}" for c in ("open", "high", "low", "close")})
    vix = vix[["date", "vix_open", "vix_high", "vix_low", "vix_close"]].sort_values("date").reset_index(drop=True)
    if len(vix) != len(day_set) or vix["date"].duplicated().any() or vix.isna().any().any():
        fail("vix_daily.csv does not cover every SPY trading day exactly once")

    gics = pd.read_csv(source / "gics_sectors.csv", dtype=str, keep_default_na=False)
    sectors = gics[gics["ticker"].isin(STOCKS)][["ticker", "name", "gics_sector", "gics_sub_industry"]]
    sectors = sectors.sort_values("ticker").reset_index(drop=True)
    if sorted(sectors["ticker"]) != STOCKS or sectors["ticker"].duplicated().any():
        fail("gics_sectors.csv does not list every lake stock exactly once")
    for sector, names in STOCKS_BY_SECTOR.items():
        actual = set(sectors.loc[sectors["ticker"].isin(names), "gics_sector"])
        if actual != {sector}:
            fail(f"sector grouping of {names} is {actual}, expected {sector}")

    prices = pd.concat([stocks, etfs], ignore_index=True)
    adj = prices.pivot(index="date", columns="ticker", values="adj_close")
    adj.index = pd.DatetimeIndex(adj.index)
    adj = adj.sort_index()
    priced = {t: set(g["date"]) for t, g in prices.groupby("ticker")}

    portfolios = [
        portfolio_tech_leaders(adj, spy_days),
        portfolio_diversified(),
        portfolio_balanced(),
        portfolio_defensive(),
        portfolio_momentum(history, spy_days),
    ]
    for p in portfolios:
        check_portfolio(p, priced, spy_days)

    # write into a fresh folder next to the target, then swap it in (no half-written lake)
    out = out.resolve()
    tmp = out.with_name(out.name + ".building")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write_parquet(stocks, PRICE_SCHEMA, tmp / "prices" / "stocks.parquet")
    write_parquet(etfs, PRICE_SCHEMA, tmp / "prices" / "etfs.parquet")
    write_parquet(vix, FEATURE_SCHEMA, tmp / "features" / "features_latest.parquet")
    (tmp / "reference").mkdir()
    (tmp / "reference" / "sectors.csv").write_text(sectors.to_csv(index=False, lineterminator="\n"), encoding="utf-8")
    (tmp / "portfolios").mkdir()
    for p in portfolios:
        (tmp / "portfolios" / f"{slug(p['name'])}.yaml").write_text(dump_portfolio(p), encoding="utf-8")
    (tmp / "README.md").write_text(
        README.format(
            n_stocks=len(STOCKS), start=START, end=END, etfs=", ".join(ETFS), n_portfolios=len(portfolios)
        ),
        encoding="utf-8",
    )
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)

    rows = {
        "prices/stocks.parquet": f"{len(stocks):,} rows, {stocks['ticker'].nunique()} tickers",
        "prices/etfs.parquet": f"{len(etfs):,} rows, {etfs['ticker'].nunique()} tickers",
        "features/features_latest.parquet": f"{len(vix):,} rows",
        "reference/sectors.csv": f"{len(sectors)} rows",
    }
    for p in portfolios:
        tickers = {t for h in p["holdings"] for t in h["weights"]}
        rows[f"portfolios/{slug(p['name'])}.yaml"] = (
            f"{p['name']!r}: start {p['start_date']}, {len(p['holdings'])} rebalances, {len(tickers)} tickers"
        )
    report = []
    for f in sorted(x for x in out.rglob("*") if x.is_file()):
        rel = f.relative_to(out).as_posix()
        report.append((f, f.stat().st_size, rows.get(rel, "")))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help="folder with stocks_daily.csv.gz, etfs_daily.csv.gz, vix_daily.csv, gics_sectors.csv "
        "(default: ../shared/data relative to the repository root)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output folder, replaced entirely (default: tracking_pipeline/demo_lake in the repository)",
    )
    args = parser.parse_args(argv)
    report = build(args.source.resolve(), args.out)
    out = args.out.resolve()
    print(f"demo lake written to {out}")
    total = 0
    for path, size, note in report:
        total += size
        print(f"  {path.relative_to(out).as_posix():36s} {size / 1024:9.1f} KiB  {note}")
    print(f"  {'total':36s} {total / 1024:9.1f} KiB ({total / 1_000_000:.2f} MB)")
    print(f"  stocks ({len(STOCKS)}): {' '.join(STOCKS)}")
    print(f"  etfs ({len(ETFS)}): {' '.join(ETFS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
