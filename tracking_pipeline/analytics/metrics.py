"""Periodic performance metrics (CONTRACT section 4, "Periodic metrics").

Pure polars code, no Dagster: every function takes and returns ``pl.DataFrame``.
All series and all periods are computed in one vectorised ``group_by`` pass.

Input frames carry a daily simple return ``r`` per ``trade_date`` (and optionally
the benchmark's daily return ``b`` on the same day). For a period the returns are
the ones dated inside it: the first is the return from the last NAV before the
period, so the NAV path used for the drawdown is ``[1, cumprod(1 + r)]``.

Definitions (``n = len(r)``, ``rf_d = (1 + rf_annual)^(1/252) - 1``, ``e = r - rf_d``):

- ``total_return = prod(1 + r) - 1``; ``cagr = (1 + total_return)^(252/n) - 1``
- ``volatility = std(r, ddof=1) * sqrt(252)``
- ``sharpe_ratio = mean(e) / std(e, ddof=1) * sqrt(252)``
- ``sortino_ratio = mean(e) * 252 / (sqrt(mean(min(e, 0)^2)) * sqrt(252))``
- ``max_drawdown = min(nav / cummax(nav)) - 1`` over ``nav = [1, cumprod(1 + r)]``
- ``calmar_ratio = cagr / |max_drawdown|``
- ``win_rate = count(r > 0) / count(r != 0)``
- ``var_95`` = 5th percentile of ``r`` (linear interpolation, as ``np.percentile``)
- ``cvar_95`` = mean of the lowest ``floor((n - 1) * 0.05) + 1`` returns
- ``beta = cov(r, b) / var(b)``; ``alpha = (1 + mean(e - beta * (b - rf_d)))^252 - 1``
- ``tracking_error = std(r - b, ddof=1) * sqrt(252)``
- ``information_ratio = mean(r - b) / std(r - b, ddof=1) * sqrt(252)``

A value that is undefined is null, never 0, inf or NaN:

- n < 2: volatility, sharpe, sortino, beta, alpha, tracking_error, information_ratio
- zero dispersion (all values equal): sharpe (of ``r``), information_ratio (of
  ``r - b``), beta and alpha (of ``b``); volatility/tracking_error are then exactly 0
- no negative excess return: sortino; ``max_drawdown == 0``: calmar;
  every ``r == 0``: win_rate
- ``b`` absent, or null/NaN on any day of the group: all four benchmark metrics
- ``cagr`` when the NAV ends below zero (a return under -100%); any other
  non-finite result (e.g. an overflowing ``cagr``): null

These agree with empyrical-reloaded (``annual_return``, ``annual_volatility``,
``sharpe_ratio(risk_free=rf_d)``, ``sortino_ratio(required_return=rf_d)``,
``max_drawdown``, ``calmar_ratio``, ``value_at_risk``, ``conditional_value_at_risk``,
``alpha_beta(risk_free=rf_d)``) and ``quantstats.stats.win_rate`` wherever those
are finite; the tests in ``tracking_pipeline_tests/analytics`` show it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

ANNUALIZATION: int = 252
"""Trading days per year used for every annualisation."""

VAR_CUTOFF: float = 0.05
"""Tail probability of ``var_95`` / ``cvar_95``."""

BETA_MIN_VARIANCE: float = 1.0e-30
"""Benchmark variances (ddof=0) below this count as zero (same floor as empyrical)."""

PERIOD_TYPES: tuple[str, ...] = ("week", "month", "quarter", "year", "ytd", "all")
"""Period types of ``portfolio_metrics.period_type``."""

METRIC_COLUMNS: tuple[str, ...] = (
    "total_return",
    "sharpe_ratio",
    "sortino_ratio",
    "cagr",
    "max_drawdown",
    "calmar_ratio",
    "volatility",
    "win_rate",
    "var_95",
    "cvar_95",
    "beta",
    "alpha",
    "tracking_error",
    "information_ratio",
)
"""The metric columns produced by :func:`compute_metrics`, in table order."""

BENCHMARK_METRICS: tuple[str, ...] = ("beta", "alpha", "tracking_error", "information_ratio")
"""Metrics that need the benchmark return column ``b``."""

_SQRT_ANN = math.sqrt(ANNUALIZATION)


def daily_risk_free(rf_annual: float) -> float:
    """Return ``rf_d = (1 + rf_annual)^(1/252) - 1``."""
    return (1.0 + rf_annual) ** (1.0 / ANNUALIZATION) - 1.0


# --------------------------------------------------------------------------- periods


def _over(expr: pl.Expr, cols: Sequence[str]) -> pl.Expr:
    """``expr.over(cols)``, or the whole-frame aggregate when there are no cols."""
    return expr.over(list(cols)) if cols else expr


def assign_periods(
    returns: pl.DataFrame,
    key_cols: list[str],
    period_types: Sequence[str] = PERIOD_TYPES,
) -> pl.DataFrame:
    """Explode daily rows into one row per (row, period it belongs to).

    ``returns`` holds ``key_cols`` (one series per key), ``trade_date`` (Date),
    ``r`` and optionally ``b``. Adds ``period_type`` (String) and ``period_key``
    (Date, the label start of the period):

    - ``week``: Monday of the ISO week (ISO year + week, so 2021-01-01 is in
      2020-W53, key 2020-12-28)
    - ``month`` / ``quarter`` / ``year``: first calendar day of the period
    - ``ytd``: Jan 1 of the year of the series' last ``trade_date``; only rows of
      that year are included
    - ``all``: every row, keyed by the series' first ``trade_date``

    Rows are ordered by period type (in ``period_types`` order), then as in the input.
    """
    period_types = _check_period_types(period_types)
    _require_columns(returns, [*key_cols, "trade_date"], "returns")
    date = pl.col("trade_date")
    last_year = _over(date.max(), key_cols).dt.year()
    label_exprs: dict[str, pl.Expr] = {
        "week": date.dt.truncate("1w"),
        "month": date.dt.truncate("1mo"),
        "quarter": date.dt.truncate("1q"),
        "year": date.dt.truncate("1y"),
        "ytd": pl.when(date.dt.year() == last_year).then(date.dt.truncate("1y")),
        "all": _over(date.min(), key_cols),
    }
    tmp = [f"__period_{p}" for p in period_types]
    labelled = returns.with_columns(
        label_exprs[p].cast(pl.Date).alias(t) for p, t in zip(period_types, tmp)
    )
    exploded = labelled.unpivot(
        on=tmp, index=returns.columns, variable_name="period_type", value_name="period_key"
    )
    return exploded.filter(pl.col("period_key").is_not_null()).with_columns(
        pl.col("period_type").str.strip_prefix("__period_")
    )


def _check_period_types(period_types: Sequence[str]) -> list[str]:
    """Validate and de-duplicate ``period_types``, keeping their order."""
    if isinstance(period_types, str):
        period_types = [period_types]
    out = list(dict.fromkeys(period_types))
    unknown = [p for p in out if p not in PERIOD_TYPES]
    if unknown:
        raise ValueError(f"unknown period_type(s) {unknown}; expected a subset of {PERIOD_TYPES}")
    if not out:
        raise ValueError("period_types is empty")
    return out


# --------------------------------------------------------------------------- validation


def _require_columns(frame: pl.DataFrame, cols: Sequence[str], what: str) -> None:
    """Raise ValueError when ``frame`` lacks any of ``cols``."""
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {missing}; has {frame.columns}")


def _describe_group(row: dict[str, object], group_cols: Sequence[str]) -> str:
    """Human-readable ``col=value, ...`` for a row's group."""
    if not group_cols:
        return "the whole frame"
    return ", ".join(f"{c}={row[c]!r}" for c in group_cols)


def validate_returns(returns: pl.DataFrame, group_cols: Sequence[str]) -> None:
    """Raise ValueError for missing columns, non-finite ``r`` or duplicate dates (naming the series and day)."""
    _require_columns(returns, [*group_cols, "trade_date", "r"], "returns")
    if returns.schema["trade_date"] != pl.Date:
        raise ValueError(f"trade_date must be pl.Date, got {returns.schema['trade_date']}")
    if not returns.schema["r"].is_numeric():
        raise ValueError(f"r must be numeric, got {returns.schema['r']}")
    r = pl.col("r").cast(pl.Float64)
    bad = returns.filter(r.is_null() | ~r.is_finite())
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(
            f"daily return r is {row['r']!r} for {_describe_group(row, group_cols)} on "
            f"{row['trade_date']} ({bad.height} bad row(s) in total); "
            "the caller must supply complete, finite returns"
        )
    if returns["trade_date"].null_count():
        row = returns.filter(pl.col("trade_date").is_null()).row(0, named=True)
        raise ValueError(f"trade_date is null for {_describe_group(row, group_cols)}")
    dup = returns.filter(pl.struct([*group_cols, "trade_date"]).is_duplicated())
    if dup.height:
        row = dup.row(0, named=True)
        raise ValueError(
            f"duplicate trade_date {row['trade_date']} for {_describe_group(row, group_cols)}"
        )


# --------------------------------------------------------------------------- metrics


def _metric_aggregations(rf_d: float) -> list[pl.Expr]:
    """Per-group aggregates; the frame must be sorted by trade_date within groups."""
    r = pl.col("r")
    b = pl.col("b")
    e = r - rf_d
    n = pl.len()
    nf = n.cast(pl.Float64)

    growth = (1.0 + r).cum_prod()
    # the NAV before the period is 1, so the running peak is at least 1;
    # (nav - peak) / peak is exact in the subtraction, unlike nav / peak - 1
    peak = growth.cum_max().clip(lower_bound=1.0)
    drawdown = (growth - peak) / peak

    tail_count = ((nf - 1.0) * VAR_CUTOFF).floor() + 1.0

    b_centred = b - b.mean()
    b_cov = (b_centred * r).mean()  # empyrical's beta_aligned formulation (ddof=0)
    b_var = (b_centred * b_centred).mean()
    beta = b_cov / b_var
    active = r - b

    return [
        pl.col("trade_date").min().alias("period_start"),
        pl.col("trade_date").max().alias("period_end"),
        n.cast(pl.Int64).alias("n_returns"),
        ((1.0 + r).product() - 1.0).alias("total_return"),
        r.std(ddof=1).alias("_std_r"),
        (r.max() == r.min()).alias("_r_const"),
        e.mean().alias("_mean_e"),
        e.std(ddof=1).alias("_std_e"),
        (e.clip(upper_bound=0.0) ** 2).mean().alias("_downside_sq"),
        drawdown.min().clip(upper_bound=0.0).alias("max_drawdown"),
        (r > 0).sum().alias("_n_pos"),
        (r != 0).sum().alias("_n_nonzero"),
        r.quantile(VAR_CUTOFF, interpolation="linear").alias("var_95"),
        r.filter(r.rank(method="ordinal") <= tail_count).mean().alias("cvar_95"),
        b.is_not_null().all().alias("_b_ok"),
        (b.max() == b.min()).alias("_b_const"),
        b_var.alias("_b_var"),
        beta.alias("_beta"),
        (e - beta * (b - rf_d)).mean().alias("_alpha_mean"),
        active.mean().alias("_mean_a"),
        active.std(ddof=1).alias("_std_a"),
        (active.max() == active.min()).alias("_a_const"),
    ]


def _metric_ratios() -> list[pl.Expr]:
    """Metrics derived from the per-group aggregates (null where undefined)."""
    c = pl.col
    n = c("n_returns")
    two = n >= 2
    has_b = c("_b_ok") & two
    cagr = (1.0 + c("total_return")) ** (ANNUALIZATION / n.cast(pl.Float64)) - 1.0
    beta_ok = has_b & ~c("_b_const") & (c("_b_var") >= BETA_MIN_VARIANCE)
    return [
        # a NAV below zero (a return under -100%) has no real annualised growth
        pl.when((n > 0) & (c("total_return") >= -1.0)).then(cagr).alias("cagr"),
        pl.when(two)
        .then(pl.when(c("_r_const")).then(0.0).otherwise(c("_std_r") * _SQRT_ANN))
        .alias("volatility"),
        pl.when(two & ~c("_r_const") & (c("_std_e") > 0))
        .then(c("_mean_e") / c("_std_e") * _SQRT_ANN)
        .alias("sharpe_ratio"),
        pl.when(two & (c("_downside_sq") > 0))
        .then(c("_mean_e") * ANNUALIZATION / (c("_downside_sq").sqrt() * _SQRT_ANN))
        .alias("sortino_ratio"),
        pl.when(c("_n_nonzero") > 0)
        .then(c("_n_pos").cast(pl.Float64) / c("_n_nonzero").cast(pl.Float64))
        .alias("win_rate"),
        pl.when(beta_ok).then(c("_beta")).alias("beta"),
        pl.when(beta_ok)
        .then((1.0 + c("_alpha_mean")) ** ANNUALIZATION - 1.0)
        .alias("alpha"),
        pl.when(has_b)
        .then(pl.when(c("_a_const")).then(0.0).otherwise(c("_std_a") * _SQRT_ANN))
        .alias("tracking_error"),
        pl.when(has_b & ~c("_a_const") & (c("_std_a") > 0))
        .then(c("_mean_a") / c("_std_a") * _SQRT_ANN)
        .alias("information_ratio"),
    ]


def _finite_or_null(col: str) -> pl.Expr:
    """Replace NaN / +-inf by null."""
    x = pl.col(col)
    return pl.when(x.is_finite()).then(x).alias(col)


def _empty_result(returns: pl.DataFrame, group_cols: Sequence[str]) -> pl.DataFrame:
    """Zero-row result with the output schema."""
    schema: dict[str, pl.DataType] = {c: returns.schema[c] for c in group_cols}
    schema.update({"period_start": pl.Date(), "period_end": pl.Date(), "n_returns": pl.Int64()})
    schema.update({m: pl.Float64() for m in METRIC_COLUMNS})
    return pl.DataFrame(schema=schema)


def _compute(returns: pl.DataFrame, group_cols: list[str], rf_annual: float) -> pl.DataFrame:
    """compute_metrics without input validation."""
    if returns.height == 0:
        return _empty_result(returns, group_cols)
    rf_d = daily_risk_free(rf_annual)
    b_expr = (
        pl.col("b").cast(pl.Float64).fill_nan(None)
        if "b" in returns.columns
        else pl.lit(None, dtype=pl.Float64)
    )
    frame = (
        returns.lazy()
        .select(*group_cols, "trade_date", pl.col("r").cast(pl.Float64), b_expr.alias("b"))
        .sort([*group_cols, "trade_date"])
    )
    aggs = _metric_aggregations(rf_d)
    # polars keeps the input row order within each group, so cum_prod follows trade_date
    grouped = (
        frame.group_by(group_cols, maintain_order=True).agg(aggs)
        if group_cols
        else frame.select(aggs)
    )
    return (
        grouped.with_columns(_metric_ratios())
        .with_columns(
            pl.when(pl.col("max_drawdown") < 0)
            .then(pl.col("cagr") / pl.col("max_drawdown").abs())
            .alias("calmar_ratio")
        )
        .with_columns(_finite_or_null(m) for m in METRIC_COLUMNS)
        .select(*group_cols, "period_start", "period_end", "n_returns", *METRIC_COLUMNS)
        .collect()
    )


def compute_metrics(
    returns: pl.DataFrame,
    group_cols: list[str],
    rf_annual: float = 0.0,
    *,
    validate: bool = True,
) -> pl.DataFrame:
    """Compute every periodic metric for each group of daily returns, in one pass.

    ``returns`` has ``group_cols``, ``trade_date`` (pl.Date), ``r`` (daily simple
    return) and optionally ``b`` (benchmark daily return, same day). One output
    row per group: ``group_cols``, ``period_start``/``period_end`` (first/last
    trade_date), ``n_returns`` and :data:`METRIC_COLUMNS` (Float64, null where
    undefined; see the module docstring). Groups are ordered by ``group_cols``.

    The caller is expected to validate its returns first: a null, NaN or infinite
    ``r`` (or a duplicated trade_date within a group) raises ValueError naming the
    group and the date instead of producing a silently wrong metric. A null/NaN
    ``b`` is not an error: the group's benchmark metrics are null. ``validate=False`` skips these checks for
    rows already checked with :func:`validate_returns` before being exploded into periods.
    """
    group_cols = list(group_cols)
    if validate:
        validate_returns(returns, group_cols)
    return _compute(returns, group_cols, rf_annual)


def period_metrics(
    returns: pl.DataFrame,
    key_cols: list[str],
    rf_annual: float = 0.0,
    period_types: Sequence[str] = PERIOD_TYPES,
) -> pl.DataFrame:
    """Metrics for every series (``key_cols``) and every period of ``period_types``.

    Equivalent to :func:`assign_periods` followed by :func:`compute_metrics`
    grouped by ``key_cols + [period_type, period_key]``. Returns ``key_cols``,
    ``period_type``, ``period_start``, ``period_end``, ``n_returns`` and
    :data:`METRIC_COLUMNS`, sorted by key, period type (``period_types`` order)
    and period_start. Raises ValueError like :func:`compute_metrics`, naming the
    series (``key_cols``) and date of a bad return.
    """
    key_cols = list(key_cols)
    types = _check_period_types(period_types)
    validate_returns(returns, key_cols)
    exploded = assign_periods(returns, key_cols, types)
    group_cols = [*key_cols, "period_type", "period_key"]
    result = _compute(exploded, group_cols, rf_annual)
    order = pl.col("period_type").replace_strict(
        {p: i for i, p in enumerate(types)}, return_dtype=pl.Int32
    )
    return (
        result.sort([*key_cols, order, "period_start"])
        .drop("period_key")
        .select(*key_cols, "period_type", "period_start", "period_end", "n_returns", *METRIC_COLUMNS)
    )
