"""Periodic performance metrics (CONTRACT section 4, "Periodic metrics", as amended).

Pure polars code, no Dagster: every function takes and returns ``pl.DataFrame``.
All series and all periods are computed in one vectorised ``group_by`` pass.

Input frames carry a daily simple return ``r`` per ``trade_date`` (and optionally
the benchmark's daily return ``b`` on the same day, and ``prev_date``, the NAV day
the return is measured from). For a period the returns are the ones dated inside
it: the first is the return from the last NAV before the period, so the NAV path
used for the drawdown figures is ``[1, cumprod(1 + r)]``, its first point dated
on the first return's ``prev_date`` (the *anchor*).

Definitions (``n = len(r)``, ``rf_d = (1 + rf_annual)^(1/252) - 1``, ``e = r - rf_d``):

- ``total_return = prod(1 + r) - 1``; ``cagr = (1 + total_return)^(252/n) - 1``
- ``volatility = std(r, ddof=1) * sqrt(252)``
- ``sharpe_ratio = mean(e) / std(e, ddof=1) * sqrt(252)``
- ``sortino_ratio = mean(e) * 252 / (sqrt(mean(min(e, 0)^2)) * sqrt(252))``
- ``max_drawdown = min(nav / cummax(nav)) - 1`` over ``nav = [1, cumprod(1 + r)]``
- ``calmar_ratio = cagr / |max_drawdown|``
- ``win_rate = count(r > 0) / count(r != 0)``
- ``var_95`` / ``var_99`` = 5th / 1st percentile of ``r`` (linear interpolation, as ``np.percentile``)
- ``cvar_95`` / ``cvar_99`` = mean of the lowest ``floor((n - 1) * q) + 1`` returns (q = 0.05 / 0.01)
- ``var_95_1m`` = 5th percentile of the overlapping 21-day compounded returns inside the period
- ``beta = cov(r, b) / var(b)``; ``alpha = (1 + mean(e - beta * (b - rf_d)))^252 - 1``
- ``tracking_error = std(r - b, ddof=1) * sqrt(252)``
- ``information_ratio = mean(r - b) / std(r - b, ddof=1) * sqrt(252)``
- ``treynor_ratio = (total_return - rf_annual) / beta`` (quantstats' ``treynor_ratio``)
- drawdown figures on the NAV path with ``dd = nav / cummax(nav) - 1``: ``current_drawdown``
  = the last ``dd``; for the deepest drawdown (the first minimum of ``dd``) ``max_drawdown_start``
  = the last day up to it with ``dd = 0`` (the peak), ``max_drawdown_trough`` = its day,
  ``max_drawdown_recovery`` = the first later day with ``dd = 0``; ``max_drawdown_duration`` = NAV
  days after the peak up to the recovery (or to the period's end); ``current_drawdown_duration``
  = NAV days after the last day with ``dd = 0`` (0 when the period ends at a peak)

Short periods (GIPS: returns of periods under a year are not annualised):

- ``cagr`` and ``calmar_ratio`` are null when fewer than 360 calendar days lie between the
  anchor and ``period_end``;
- the risk figures (:data:`RISK_METRICS`) are null with fewer than 20 returns; ``var_95_1m``
  with fewer than 252.

A value that is otherwise undefined is null, never 0, inf or NaN:

- zero dispersion (all values equal): sharpe (of ``r``), information_ratio (of
  ``r - b``), beta, alpha and treynor (of ``b``; treynor also of ``r``, whose covariance
  is then 0); volatility/tracking_error are then exactly 0
- no negative excess return: sortino; ``max_drawdown == 0``: calmar;
  every ``r == 0``: win_rate
- ``b`` absent, or null/NaN on any day of the group: all five benchmark metrics
- ``cagr`` when the NAV ends below zero (a return under -100%); any other
  non-finite result (e.g. an overflowing ``cagr``): null
- ``max_drawdown_recovery`` when the NAV has not regained its peak by the period's end

These agree with empyrical-reloaded (``annual_return``, ``annual_volatility``,
``sharpe_ratio(risk_free=rf_d)``, ``sortino_ratio(required_return=rf_d)``,
``max_drawdown``, ``calmar_ratio``, ``value_at_risk``, ``conditional_value_at_risk``,
``alpha_beta(risk_free=rf_d)``) and quantstats (``win_rate``, ``treynor_ratio(rf=rf_annual)``)
wherever those are finite and the short-period rules leave the figure defined; the tests in
``tracking_pipeline_tests/analytics`` show it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

ANNUALIZATION: int = 252
"""Trading days per year used for every annualisation."""

VAR_CUTOFF: float = 0.05
"""Tail probability of ``var_95`` / ``cvar_95`` (and of ``var_95_1m``)."""

VAR_99_CUTOFF: float = 0.01
"""Tail probability of ``var_99`` / ``cvar_99``."""

MONTH_HORIZON: int = 21
"""Trading days compounded by ``var_95_1m``."""

MIN_ANNUALISED_DAYS: int = 360
"""Calendar days from the anchor to ``period_end`` below which cagr and calmar are null (GIPS)."""

MIN_RISK_RETURNS: int = 20
"""Returns below which the risk figures (:data:`RISK_METRICS`) are null."""

MIN_VAR_1M_RETURNS: int = 252
"""Returns below which ``var_95_1m`` is null."""


@dataclass(frozen=True)
class PeriodRules:
    """When a period is long enough for a figure to be reported (the contract's short-period rules)."""

    min_annualised_days: int = MIN_ANNUALISED_DAYS
    min_risk_returns: int = MIN_RISK_RETURNS
    min_var_1m_returns: int = MIN_VAR_1M_RETURNS


CONTRACT_RULES = PeriodRules()
"""The rules every published figure follows."""

FORMULAS_ONLY = PeriodRules(min_annualised_days=0, min_risk_returns=1, min_var_1m_returns=MONTH_HORIZON)
"""Only what the formulas need (2 returns for a standard deviation, 21 for a monthly return): for checking the
formulas against published values on short fixtures, never for published rows."""

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
    "var_99",
    "cvar_99",
    "var_95_1m",
    "treynor_ratio",
    "current_drawdown",
)
"""The float metric columns produced by :func:`compute_metrics`, in table order."""

DRAWDOWN_COLUMNS: tuple[str, ...] = (
    "max_drawdown_start",
    "max_drawdown_trough",
    "max_drawdown_recovery",
    "max_drawdown_duration",
    "current_drawdown_duration",
)
"""The deepest drawdown's dates (pl.Date) and the durations in NAV days (Int64), after METRIC_COLUMNS."""

OUTPUT_COLUMNS: tuple[str, ...] = (*METRIC_COLUMNS, *DRAWDOWN_COLUMNS)
"""Every figure of a period, in table order."""

BENCHMARK_METRICS: tuple[str, ...] = ("beta", "alpha", "tracking_error", "information_ratio", "treynor_ratio")
"""Metrics that need the benchmark return column ``b``."""

RISK_METRICS: tuple[str, ...] = (
    "volatility", "sharpe_ratio", "sortino_ratio", "var_95", "cvar_95", "var_99", "cvar_99", "var_95_1m",
    "beta", "alpha", "tracking_error", "information_ratio", "treynor_ratio",
)
"""Figures that are null for a period with fewer than :data:`MIN_RISK_RETURNS` returns."""

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


def with_prev_date(returns: pl.DataFrame, key_cols: Sequence[str]) -> pl.DataFrame:
    """``returns`` with a ``prev_date`` column (the NAV day each return is measured from) when it has none: the
    series' previous ``trade_date``, and for its first return the previous weekday (a frame of returns alone
    does not say which NAV day came before it; the warehouse series carry the real one)."""
    if "prev_date" in returns.columns:
        return returns
    date = pl.col("trade_date")
    return returns.sort([*key_cols, "trade_date"]).with_columns(
        _over(date.shift(1), key_cols).fill_null(date.dt.add_business_days(-1, roll="backward")).alias("prev_date"))


def _with_path_columns(frame: pl.LazyFrame, group_cols: Sequence[str]) -> pl.LazyFrame:
    """Per-row NAV path columns of each group (the frame sorted by group, then trade_date).

    ``_point``: position of the return's NAV in the path (1..n; 0 is the anchor); ``_dd``: its drawdown
    ``(nav - peak) / peak`` with the anchor's NAV 1 in the peak (exact in the subtraction, and exactly 0 at a
    peak); ``_last_peak`` / ``_next_peak``: the last point up to / the first point from this one with ``_dd = 0``
    (0 / null when none); ``_month``: the compounded return of the 21 returns ending here. One window pass per
    column over a single integer group id."""
    if group_cols:
        new_group = pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift(1)) for c in group_cols])
        gid = new_group.fill_null(True).cum_sum()
    else:
        gid = pl.lit(0)
    c = pl.col
    point = pl.when(c("_dd") == 0.0).then(c("_point"))
    return (
        frame.with_columns(gid.alias("_gid"))
        .with_columns(pl.int_range(1, pl.len() + 1).over("_gid").alias("_point"),
                      (1.0 + c("r")).cum_prod().over("_gid").alias("_growth"))
        .with_columns(c("_growth").cum_max().over("_gid").clip(lower_bound=1.0).alias("_peak"),
                      (c("_growth") / c("_growth").shift(MONTH_HORIZON).over("_gid").fill_null(1.0) - 1.0)
                      .alias("_month"))
        .with_columns(((c("_growth") - c("_peak")) / c("_peak")).alias("_dd"))
        .with_columns(point.forward_fill().over("_gid").fill_null(0).alias("_last_peak"),
                      point.backward_fill().over("_gid").alias("_next_peak"))
    )


def _metric_aggregations(rf_d: float, rf_annual: float) -> list[pl.Expr]:
    """Per-group aggregates; the frame must be sorted by trade_date within groups and carry the path columns of
    :func:`_with_path_columns`."""
    r = pl.col("r")
    b = pl.col("b")
    day = pl.col("trade_date")
    e = r - rf_d
    n = pl.len()
    nf = n.cast(pl.Float64)

    drawdown = pl.col("_dd")
    deepest = drawdown.arg_min()  # the first minimum
    fell = drawdown.min() < 0.0
    anchor = pl.col("prev_date").first()
    # without any fall the deepest drawdown is the empty one at the anchor (point 0)
    peak_point = pl.when(fell).then(pl.col("_last_peak").get(deepest)).otherwise(0)
    recovery_point = pl.when(fell).then(pl.col("_next_peak").get(deepest)).otherwise(pl.col("_next_peak").first())

    def day_of(point: pl.Expr) -> pl.Expr:
        """The date of a path point (the anchor for 0, null for null)."""
        on_day = day.filter(pl.col("_point") == point).first()
        return pl.when(point == 0).then(anchor).otherwise(on_day)

    b_centred = b - b.mean()
    b_cov = (b_centred * r).mean()  # empyrical's beta_aligned formulation (ddof=0)
    b_var = (b_centred * b_centred).mean()
    beta = b_cov / b_var
    active = r - b

    ordered = r.sort()

    def tail_mean(cutoff: float) -> pl.Expr:
        """Mean of the lowest floor((n - 1) * cutoff) + 1 returns."""
        return ordered.slice(0, (((nf - 1.0) * cutoff).floor() + 1.0).cast(pl.Int64)).mean()

    return [
        day.min().alias("period_start"),
        day.max().alias("period_end"),
        anchor.alias("_anchor"),
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
        tail_mean(VAR_CUTOFF).alias("cvar_95"),
        r.quantile(VAR_99_CUTOFF, interpolation="linear").alias("var_99"),
        tail_mean(VAR_99_CUTOFF).alias("cvar_99"),
        pl.col("_month").filter(pl.col("_point") >= MONTH_HORIZON)
        .quantile(VAR_CUTOFF, interpolation="linear").alias("var_95_1m"),
        b.is_not_null().all().alias("_b_ok"),
        (b.max() == b.min()).alias("_b_const"),
        b_var.alias("_b_var"),
        beta.alias("_beta"),
        b.mean().alias("_mean_b"),
        active.mean().alias("_mean_a"),
        active.std(ddof=1).alias("_std_a"),
        (active.max() == active.min()).alias("_a_const"),
        drawdown.last().alias("current_drawdown"),
        day_of(peak_point).alias("max_drawdown_start"),
        day_of(pl.when(fell).then(deepest + 1).otherwise(0)).alias("max_drawdown_trough"),
        day_of(recovery_point).alias("max_drawdown_recovery"),
        (recovery_point.fill_null(n) - peak_point).cast(pl.Int64).alias("max_drawdown_duration"),
        (n - pl.col("_last_peak").last()).cast(pl.Int64).alias("current_drawdown_duration"),
    ]


def _metric_ratios(rules: PeriodRules, rf_d: float, rf_annual: float) -> list[pl.Expr]:
    """Metrics derived from the per-group aggregates (null where undefined or, by the short-period rules,
    not reported)."""
    c = pl.col
    n = c("n_returns")
    risk = n >= rules.min_risk_returns
    two = risk & (n >= 2)
    has_b = c("_b_ok") & two
    one_year = (c("period_end") - c("_anchor")).dt.total_days() >= rules.min_annualised_days
    cagr = (1.0 + c("total_return")) ** (ANNUALIZATION / n.cast(pl.Float64)) - 1.0
    beta_ok = has_b & ~c("_b_const") & (c("_b_var") >= BETA_MIN_VARIANCE)
    return [
        # a NAV below zero (a return under -100%) has no real annualised growth
        pl.when(one_year & (n > 0) & (c("total_return") >= -1.0)).then(cagr).alias("cagr"),
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
        *(pl.when(risk).then(c(m)).alias(m) for m in ("var_95", "cvar_95", "var_99", "cvar_99")),
        pl.when(n >= rules.min_var_1m_returns).then(c("var_95_1m")).alias("var_95_1m"),
        pl.when(beta_ok).then(c("_beta")).alias("beta"),
        pl.when(beta_ok)  # mean(e - beta * (b - rf_d)) = mean(e) - beta * (mean(b) - rf_d)
        .then((1.0 + c("_mean_e") - c("_beta") * (c("_mean_b") - rf_d)) ** ANNUALIZATION - 1.0)
        .alias("alpha"),
        # a constant r has a zero covariance (beta's rounding residue would give a meaningless huge ratio)
        pl.when(beta_ok & ~c("_r_const") & (c("_beta") != 0.0))
        .then((c("total_return") - rf_annual) / c("_beta"))
        .alias("treynor_ratio"),
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
    schema.update({m: pl.Date() for m in DRAWDOWN_COLUMNS[:3]})
    schema.update({m: pl.Int64() for m in DRAWDOWN_COLUMNS[3:]})
    return pl.DataFrame(schema=schema)


def _compute(returns: pl.DataFrame, group_cols: list[str], rf_annual: float,
             rules: PeriodRules = CONTRACT_RULES) -> pl.DataFrame:
    """compute_metrics without input validation."""
    if returns.height == 0:
        return _empty_result(returns, group_cols)
    rf_d = daily_risk_free(rf_annual)
    b_expr = (
        pl.col("b").cast(pl.Float64).fill_nan(None)
        if "b" in returns.columns
        else pl.lit(None, dtype=pl.Float64)
    )
    frame = _with_path_columns(
        with_prev_date(returns, group_cols).lazy()
        .select(*group_cols, "trade_date", "prev_date", pl.col("r").cast(pl.Float64), b_expr.alias("b"))
        .sort([*group_cols, "trade_date"]),
        group_cols,
    )
    aggs = _metric_aggregations(rf_d, rf_annual)
    # polars keeps the input row order within each group, so cum_prod follows trade_date
    grouped = (
        frame.group_by(group_cols, maintain_order=True).agg(aggs)
        if group_cols
        else frame.select(aggs)
    )
    return (
        grouped.with_columns(_metric_ratios(rules, rf_d, rf_annual))
        .with_columns(
            pl.when(pl.col("max_drawdown") < 0)
            .then(pl.col("cagr") / pl.col("max_drawdown").abs())
            .alias("calmar_ratio")
        )
        .with_columns(_finite_or_null(m) for m in METRIC_COLUMNS)
        .select(*group_cols, "period_start", "period_end", "n_returns", *OUTPUT_COLUMNS)
        .collect()
    )


def compute_metrics(
    returns: pl.DataFrame,
    group_cols: list[str],
    rf_annual: float = 0.0,
    *,
    validate: bool = True,
    rules: PeriodRules = CONTRACT_RULES,
) -> pl.DataFrame:
    """Compute every periodic metric for each group of daily returns, in one pass.

    ``returns`` has ``group_cols``, ``trade_date`` (pl.Date), ``r`` (daily simple
    return) and optionally ``b`` (benchmark daily return, same day) and ``prev_date``
    (the NAV day the return is measured from; see :func:`with_prev_date`). One output
    row per group: ``group_cols``, ``period_start``/``period_end`` (first/last
    trade_date), ``n_returns`` and :data:`OUTPUT_COLUMNS` (null where undefined or
    not reported for a short period; see the module docstring). Groups are ordered by
    ``group_cols``.

    The caller is expected to validate its returns first: a null, NaN or infinite
    ``r`` (or a duplicated trade_date within a group) raises ValueError naming the
    group and the date instead of producing a silently wrong metric. A null/NaN
    ``b`` is not an error: the group's benchmark metrics are null. ``validate=False`` skips these checks for
    rows already checked with :func:`validate_returns` before being exploded into periods. ``rules`` are the
    short-period rules (the contract's unless checking bare formulas with :data:`FORMULAS_ONLY`).
    """
    group_cols = list(group_cols)
    if validate:
        validate_returns(returns, group_cols)
    return _compute(returns, group_cols, rf_annual, rules)


def period_metrics(
    returns: pl.DataFrame,
    key_cols: list[str],
    rf_annual: float = 0.0,
    period_types: Sequence[str] = PERIOD_TYPES,
    rules: PeriodRules = CONTRACT_RULES,
) -> pl.DataFrame:
    """Metrics for every series (``key_cols``) and every period of ``period_types``.

    Equivalent to :func:`assign_periods` followed by :func:`compute_metrics`
    grouped by ``key_cols + [period_type, period_key]``. Returns ``key_cols``,
    ``period_type``, ``period_start``, ``period_end``, ``n_returns`` and
    :data:`OUTPUT_COLUMNS`, sorted by key, period type (``period_types`` order)
    and period_start. Raises ValueError like :func:`compute_metrics`, naming the
    series (``key_cols``) and date of a bad return.
    """
    key_cols = list(key_cols)
    types = _check_period_types(period_types)
    validate_returns(returns, key_cols)
    exploded = assign_periods(with_prev_date(returns, key_cols), key_cols, types)
    group_cols = [*key_cols, "period_type", "period_key"]
    result = _compute(exploded, group_cols, rf_annual, rules)
    order = pl.col("period_type").replace_strict(
        {p: i for i, p in enumerate(types)}, return_dtype=pl.Int32
    )
    return (
        result.sort([*key_cols, order, "period_start"])
        .drop("period_key")
        .select(*key_cols, "period_type", "period_start", "period_end", "n_returns", *OUTPUT_COLUMNS)
    )
