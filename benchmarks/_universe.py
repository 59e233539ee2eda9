"""Portfolios through the analytics layer without Dagster or a warehouse: prices -> raw NAV -> overlay variant
NAV -> the return series `portfolio_metrics` is computed from. Used by bench_metrics (demo lake) and bench_scale
(a generated universe). Every step calls the functions the assets use; nothing here re-implements the math."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from tracking_pipeline.analytics.market_features import market_indicators
from tracking_pipeline.analytics.nav import nav_frame, raw_nav_path, rebalance_schedule
from tracking_pipeline.analytics.overlays.registry import available_models, compute_overlay_signals, get_model
from tracking_pipeline.analytics.overlays.variant_nav import equity_allocation_for_days, variant_nav
from tracking_pipeline.trading_calendar import nyse_sessions, sessions_between

RAW = "raw"
BENCHMARK = "benchmark"


@dataclass(frozen=True)
class Book:
    """One portfolio: id, first NAV day, initial NAV, benchmark ticker, variants and dated target weights."""

    portfolio_id: int
    start: pd.Timestamp
    initial_nav: float
    benchmark: str
    variants: tuple[str, ...]
    holdings: list[tuple[pd.Timestamp, dict[str, float]]]


def demo_books(lake_root: str, market: str) -> list[Book]:
    """The lake's active portfolios as Books."""
    from tracking_pipeline.lake import open_lake
    from tracking_pipeline.lake.portfolios import load_portfolios, portfolio_id_for

    specs, errors = load_portfolios(open_lake(lake_root), market, available_models())
    if errors:
        raise ValueError(f"bad portfolio files: {errors}")
    return [Book(portfolio_id_for(s.name), pd.Timestamp(s.start_date), float(s.initial_nav), s.benchmark,
                 tuple(s.variants), [(pd.Timestamp(h.effective_date), dict(h.weights)) for h in s.holdings])
            for s in specs if s.is_active]


def overlay_allocations(market_close: pd.Series, vix: pd.Series | None) -> pd.DataFrame:
    """actual_allocation per registered model and day (market features -> compute_overlay_signals)."""
    features = market_indicators(market_close)
    features["vix_close"] = vix.reindex(features.index) if vix is not None else np.nan
    return pd.DataFrame({m: compute_overlay_signals(m, features)["actual_allocation"] for m in available_models()})


def raw_navs(books: list[Book], prices: pd.DataFrame, end: pd.Timestamp, rf_d: float) -> dict[int, pd.DataFrame]:
    """Raw NAV frame (nav, daily_return; 0 on the start row) per book, from wide adj_close (sessions x tickers)."""
    sessions = nyse_sessions()
    out = {}
    for book in books:
        start = sessions[sessions.searchsorted(book.start)]
        days = sessions_between(start, end)
        schedule = rebalance_schedule(book.holdings, start, sessions)
        raw = nav_frame(raw_nav_path(prices, days, schedule, book.initial_nav, rf_d).nav, book.initial_nav, None)
        raw.iloc[0, raw.columns.get_loc("daily_return")] = 0.0
        out[book.portfolio_id] = raw
    return out


def variant_navs(books: list[Book], raws: dict[int, pd.DataFrame], allocations: pd.DataFrame,
                 rf_d: float) -> pd.DataFrame:
    """portfolio_daily_nav-shaped rows (portfolio_id, variant, trade_date, nav, daily_return) of every variant."""
    frames = []
    for book in books:
        raw = raws[book.portfolio_id]
        days = raw.index
        parts = {RAW: (raw["nav"].to_numpy(), raw["daily_return"].to_numpy())}
        for variant in book.variants:
            if variant == RAW:
                continue
            equity = equity_allocation_for_days(allocations[variant], days, days[0]).to_numpy()
            cost = float(get_model(variant).resolve_config(None).get("cost_bps", 0.0))
            parts[variant] = variant_nav(raw["daily_return"].to_numpy(), equity, rf_d, book.initial_nav, cost)
        for variant, (nav, rets) in parts.items():
            frames.append(pd.DataFrame({"portfolio_id": book.portfolio_id, "variant": variant,
                                        "trade_date": days, "nav": nav, "daily_return": rets}))
    return pd.concat(frames, ignore_index=True)


def return_series(books: list[Book], navs: pd.DataFrame, prices: pd.DataFrame) -> pl.DataFrame:
    """The series portfolio_metrics is computed from (as performance.service.load_series builds them): per
    portfolio and variant the daily returns without the start row, plus the benchmark's own series; every
    row carries `b`, the benchmark's return on that day."""
    bench_returns = []
    for book in books:
        days = pd.DatetimeIndex(navs.loc[navs["portfolio_id"] == book.portfolio_id, "trade_date"].unique())
        b = prices[book.benchmark].reindex(days).pct_change()
        bench_returns.append(pd.DataFrame({"portfolio_id": book.portfolio_id, "trade_date": days, "b": b.to_numpy()}))
    bench = pl.from_pandas(pd.concat(bench_returns, ignore_index=True))
    variants = pl.from_pandas(navs[["portfolio_id", "variant", "trade_date", "daily_return"]]).rename(
        {"daily_return": "r"})
    first = variants.group_by("portfolio_id").agg(pl.col("trade_date").min().alias("first_day"))
    dated = pl.col("trade_date") > pl.col("first_day")
    bench = bench.join(first, on="portfolio_id").filter(dated).drop("first_day")
    variants = variants.join(first, on="portfolio_id").filter(dated).drop("first_day").join(
        bench, on=["portfolio_id", "trade_date"], how="left")
    bench_series = bench.select("portfolio_id", pl.lit(BENCHMARK).alias("variant"), "trade_date",
                                pl.col("b").alias("r"), "b")
    out = pl.concat([bench_series, variants.select("portfolio_id", "variant", "trade_date", "r", "b")])
    return out.with_columns(pl.col("trade_date").cast(pl.Date), pl.col("portfolio_id").cast(pl.Int64)).sort(
        "portfolio_id", "variant", "trade_date")


def demo_series(end: str = "2023-10-27", max_portfolios: int | None = None) -> pl.DataFrame:
    """The demo portfolios' return series computed from the embedded lake (no warehouse needed)."""
    from tracking_pipeline.lake import open_lake
    from tracking_pipeline.lake.tables import load_features, load_prices
    from tracking_pipeline.settings import load_settings

    settings = load_settings()
    lake = open_lake(settings.lake)
    books = demo_books(settings.lake, settings.market_ticker)[:max_portfolios]
    long = load_prices(lake, None, end)
    prices = long.pivot(index="trade_date", columns="ticker", values="adj_close").sort_index()
    features = load_features(lake).set_index("trade_date")
    vix = features["vix_close"] if "vix_close" in features else None
    allocations = overlay_allocations(prices[settings.market_ticker].dropna(), vix)
    raws = raw_navs(books, prices, pd.Timestamp(end), settings.rf_daily)
    navs = variant_navs(books, raws, allocations, settings.rf_daily)
    return return_series(books, navs, prices)


def generated_universe(n_tickers: int, years: int, n_portfolios: int, n_holdings: int = 30,
                       seed: int = 7) -> tuple[pd.DataFrame, list[Book]]:
    """Synthetic adj_close for `n_tickers` stocks plus the market 'SPY' over `years` of NYSE sessions (one-factor
    returns, betas 0.3..1.8), and `n_portfolios` portfolios, each rebalanced quarterly to `n_holdings` stocks
    drawn from its own pool of 2 x `n_holdings` names at random weights (95% invested), each with raw plus every
    registered overlay."""
    rng = np.random.default_rng(seed)
    sessions = nyse_sessions()
    end = sessions[sessions <= pd.Timestamp(dt.date.today())][-1]
    days = sessions[(sessions > end - pd.DateOffset(years=years)) & (sessions <= end)]
    t = len(days)
    market = rng.normal(0.0003, 0.011, t)
    betas = rng.uniform(0.3, 1.8, n_tickers)
    noise = rng.normal(0.0, 0.015, (t, n_tickers))
    returns = np.clip(market[:, None] * betas[None, :] + noise, -0.5, 1.0)
    returns[0] = 0.0
    tickers = [f"T{i:05d}" for i in range(n_tickers)]
    prices = pd.DataFrame(50.0 * np.cumprod(1.0 + returns, axis=0), index=days, columns=tickers)
    prices["SPY"] = 300.0 * np.cumprod(1.0 + np.r_[0.0, market[1:]])
    del noise, returns
    quarter_starts = days[~days.to_period("Q").duplicated()]
    variants = (RAW, *available_models())
    n_holdings = min(n_holdings, n_tickers // 2)
    books = []
    for p in range(n_portfolios):
        holdings = []
        pool = rng.choice(n_tickers, 2 * n_holdings, replace=False)
        for when in quarter_starts:
            names = rng.choice(pool, n_holdings, replace=False)
            w = rng.dirichlet(np.ones(n_holdings)) * 0.95
            holdings.append((when, {tickers[i]: float(x) for i, x in zip(names, w)}))
        books.append(Book(p + 1, days[0], 100.0, "SPY", variants, holdings))
    return prices, books
