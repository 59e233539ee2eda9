"""empyrical-reloaded's own fixtures and expected values, run through our metrics.

Fixtures and numbers are taken from empyrical-reloaded's ``tests/conftest.py`` and
``tests/test_stats.py`` (stefan-jansen/empyrical-reloaded). Differences in set-up:

- ``mixed_returns`` starts with a NaN there. Our layer rejects NaN, so it is
  removed (``MIXED``). That leaves sharpe, sortino, volatility, max_drawdown and
  alpha/beta unchanged (empyrical skips NaN in those). ``annual_return`` and
  ``calmar_ratio`` count the NaN as a period with a 0 return, so their published
  values are checked with that NaN turned into a flat day (``MIXED_NAN_AS_FLAT``).
- Where empyrical answers inf (sharpe of a constant series, sortino without a
  negative excess return) or NaN (fewer than 2 returns, no drawdown for calmar),
  the contract says NULL.
- The fixtures are short (1 to 9 returns), so they check the bare formulas
  (``rules=FORMULAS_ONLY``); the contract's short-period rules, which would make
  most of these figures NULL, are tested in ``test_metrics.py``.
- empyrical's ``risk_free`` / ``required_return`` are daily; ours is annual, so a
  daily 1% is ``rf_annual = 1.01**252 - 1``.
- value_at_risk / CVaR tests in empyrical use other cutoffs; ours is fixed at
  5%, so those cases are checked against ``np.percentile(r, 5)`` and empyrical
  at cutoff 0.05, with the 21-point random series drawn from a fresh
  ``RandomState(1337)``.
"""

from __future__ import annotations

import math

import empyrical as ep
import numpy as np
import pytest

from tracking_pipeline.analytics.metrics import BENCHMARK_METRICS, FORMULAS_ONLY, METRIC_COLUMNS, compute_metrics
from tracking_pipeline_tests.analytics.test_metrics import (
    assert_metrics_close,
    frame,
    reference_metrics,
)

# ------------------------------------------------------------------ empyrical's fixtures

_rand = np.random.RandomState(1337)
NOISE = _rand.normal(0, 0.001, 1000)
NOISE_UNIFORM = _rand.uniform(-0.01, 0.01, 1000)

MIXED = np.array([1.0, 10.0, -4.0, 2.0, 3.0, 2.0, 1.0, -10.0]) / 100
FIXTURES: dict[str, np.ndarray] = {
    "simple_benchmark": np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]) / 100,
    "positive_returns": np.array([1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]) / 100,
    "negative_returns": np.array([0.0, -6.0, -7.0, -1.0, -9.0, -2.0, -6.0, -8.0, -5.0]) / 100,
    "all_negative_returns": np.array([-2.0, -6.0, -7.0, -1.0, -9.0, -2.0, -6.0, -8.0, -5.0]) / 100,
    "mixed_returns": MIXED,
    "mixed_returns_nan_as_flat": np.concatenate([[0.0], MIXED]),
    "one_return": np.array([1.0]) / 100,
    "udu_returns": np.array([10, -10, 10]) / 100,
    "flat_line_1": np.full(9, 0.01),
    "flat_line_1_tz": np.full(1000, 0.01),
    "flat_line_0": np.zeros(1000),
    "pos_line": np.linspace(0, 1, num=1000),
    "neg_line": np.linspace(0, -1, num=1000),
    "noise": NOISE,
    "noise_uniform": NOISE_UNIFORM,
}
BENCHMARKS: dict[str, np.ndarray] = {
    "negative_returns[1:]": FIXTURES["negative_returns"][1:],
    "mixed_returns": MIXED,
    "-mixed_returns": -MIXED,
    "one_return": FIXTURES["one_return"],
    "noise": NOISE,
    "inv_noise": -NOISE,
}
DAILY_1PCT = 1.01**252 - 1  # rf_annual whose rf_d is empyrical's constant 0.01


def metrics_of(r: np.ndarray, b: np.ndarray | None = None, rf_annual: float = 0.0) -> dict:
    """Our metrics for one series, by the bare formulas."""
    return compute_metrics(frame(r, b, sid="x"), ["sid"], rf_annual=rf_annual, rules=FORMULAS_ONLY).row(0, named=True)


# ------------------------------------------------------------------ published expected values

# (metric, fixture, rf_annual, expected from empyrical's test_stats.py; None = NULL)
PUBLISHED = [
    # test_max_drawdown
    ("max_drawdown", "one_return", 0.0, 0.0),
    ("max_drawdown", "simple_benchmark", 0.0, 0.0),
    ("max_drawdown", "mixed_returns", 0.0, -0.1),
    ("max_drawdown", "positive_returns", 0.0, -0.0),
    ("max_drawdown", "negative_returns", 0.0, -0.36590730),
    ("max_drawdown", "all_negative_returns", 0.0, -0.378589157),
    ("max_drawdown", "udu_returns", 0.0, -0.10),
    # test_annual_ret / test_cagr (empyrical.DAILY)
    ("cagr", "mixed_returns_nan_as_flat", 0.0, 1.9135925373194231),
    ("cagr", "one_return", 0.0, 11.274002099240244),
    ("cagr", "flat_line_1_tz", 0.0, 11.274002099240256),
    # test_annual_volatility
    ("volatility", "mixed_returns", 0.0, 0.9136465399704637),
    ("volatility", "flat_line_1_tz", 0.0, 0.0),
    # test_calmar
    ("calmar_ratio", "mixed_returns_nan_as_flat", 0.0, 19.135925373194233),
    ("calmar_ratio", "one_return", 0.0, None),  # empyrical: nan (no drawdown)
    # test_sharpe_ratio
    ("sharpe_ratio", "one_return", 0.0, None),  # empyrical: nan
    ("sharpe_ratio", "mixed_returns", 0.0, 1.7238613961706866),
    ("sharpe_ratio", "positive_returns", 0.0, 52.915026221291804),
    ("sharpe_ratio", "negative_returns", 0.0, -24.406808633910085),
    ("sharpe_ratio", "flat_line_1", 0.0, None),  # empyrical: inf
    # test_sortino (empyrical.DAILY)
    ("sortino_ratio", "one_return", 0.0, None),  # empyrical: nan
    ("sortino_ratio", "mixed_returns", 0.0, 2.605531251673693),
    ("sortino_ratio", "mixed_returns", DAILY_1PCT, -1.3934779588919977),  # required "flat_line_1"
    ("sortino_ratio", "positive_returns", 0.0, None),  # empyrical: inf
    ("sortino_ratio", "negative_returns", 0.0, -13.532743075043401),
    ("sortino_ratio", "simple_benchmark", 0.0, None),  # empyrical: inf
]


@pytest.mark.parametrize(("metric", "fixture", "rf_annual", "expected"), PUBLISHED)
def test_published_empyrical_values(metric: str, fixture: str, rf_annual: float, expected) -> None:
    got = metrics_of(FIXTURES[fixture], rf_annual=rf_annual)[metric]
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-8)  # empyrical's DECIMAL_PLACES = 8


# test_alpha_beta: (returns, benchmark, (alpha, beta))
PUBLISHED_ALPHA_BETA = [
    ("one_return", "one_return", (None, None)),
    ("mixed_returns", "negative_returns[1:]", (-0.9997853834885004, -0.71296296296296313)),
    ("mixed_returns", "mixed_returns", (0.0, 1.0)),
    ("mixed_returns", "-mixed_returns", (0.0, -1.0)),
    # test_beta
    ("noise", "noise", (None, 1.0)),
    ("2 * noise", "noise", (None, 2.0)),
    ("noise", "inv_noise", (None, -1.0)),
    ("2 * noise", "inv_noise", (None, -2.0)),
]


@pytest.mark.parametrize(("returns", "benchmark", "expected"), PUBLISHED_ALPHA_BETA)
def test_published_alpha_beta(returns: str, benchmark: str, expected) -> None:
    r = 2 * NOISE if returns == "2 * noise" else FIXTURES[returns]
    row = metrics_of(r, BENCHMARKS[benchmark])
    alpha, beta = expected
    if beta is None:
        assert row["beta"] is None and row["alpha"] is None
        return
    assert row["beta"] == pytest.approx(beta, abs=1e-8)
    if alpha is not None:
        assert row["alpha"] == pytest.approx(alpha, abs=1e-8)
    # and alpha always agrees with empyrical called the same way
    ep_alpha, ep_beta = ep.alpha_beta_aligned(r, BENCHMARKS[benchmark])
    assert row["alpha"] == pytest.approx(ep_alpha, abs=1e-12)
    assert row["beta"] == pytest.approx(ep_beta, abs=1e-12)


@pytest.mark.parametrize(
    ("returns", "expected_var", "expected_cvar"),
    [
        ([1.0, 2.0], 1.05, 1.0),  # 5th percentile at index 0.05; CVaR = lowest 1
        ([1.0, 81.0, 82.0, 83.0, 84.0, 85.0], 21.0, 1.0),  # index 0.25 between 1 and 81
    ],
)
def test_value_at_risk_small_series(returns: list[float], expected_var: float, expected_cvar: float) -> None:
    row = metrics_of(np.array(returns))
    assert row["var_95"] == pytest.approx(expected_var, abs=1e-12)
    assert row["var_95"] == pytest.approx(ep.value_at_risk(np.array(returns)), abs=1e-12)
    assert row["cvar_95"] == pytest.approx(expected_cvar, abs=1e-12)
    assert row["cvar_95"] == pytest.approx(ep.conditional_value_at_risk(np.array(returns)), abs=1e-12)
    # silly returns must not leak inf into the output
    assert all(row[m] is None or math.isfinite(row[m]) for m in METRIC_COLUMNS)


def test_value_at_risk_and_cvar_random_21() -> None:
    rand = np.random.RandomState(1337)
    single = rand.normal(0, 0.02, 1)
    row = metrics_of(single)
    assert row["var_95"] == pytest.approx(single[0], abs=1e-15)
    assert row["cvar_95"] == pytest.approx(single[0], abs=1e-15)

    returns = rand.normal(0, 0.02, 21)
    row = metrics_of(returns)
    var = np.percentile(returns, 5)
    assert row["var_95"] == pytest.approx(var, abs=1e-15)
    assert row["var_95"] == pytest.approx(ep.value_at_risk(returns, 0.05), abs=1e-15)
    # empyrical's own check: the mean of all returns at or below the VaR
    assert row["cvar_95"] == pytest.approx(np.mean(returns[returns <= var]), abs=1e-15)
    assert row["cvar_95"] == pytest.approx(ep.conditional_value_at_risk(returns, 0.05), abs=1e-15)
    # with n = 21, floor(20 * 0.05) + 1 = 2 returns are averaged
    assert row["cvar_95"] == pytest.approx(np.sort(returns)[:2].mean(), abs=1e-15)


@pytest.mark.parametrize("n", [1, 2, 19, 20, 21, 39, 40, 41, 100, 101])
def test_cvar_tail_size(n: int) -> None:
    returns = np.random.default_rng(n).normal(0, 0.01, n)
    row = metrics_of(returns)
    k = int((n - 1) * 0.05) + 1
    assert row["cvar_95"] == pytest.approx(np.sort(returns)[:k].mean(), abs=1e-15)
    assert row["cvar_95"] == pytest.approx(ep.conditional_value_at_risk(returns), abs=1e-15)
    assert row["var_95"] == pytest.approx(np.percentile(returns, 5), abs=1e-15)


# ------------------------------------------------------------------ every fixture vs empyrical


@pytest.mark.parametrize("rf_annual", [0.0, 0.02])
@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_fixture_matches_empyrical(fixture: str, rf_annual: float) -> None:
    r = FIXTURES[fixture]
    bench = FIXTURES["simple_benchmark"] if len(r) == 9 else None
    if len(r) == 1000:
        bench = NOISE_UNIFORM
    row = metrics_of(r, bench, rf_annual)
    assert_metrics_close(row, reference_metrics(r, bench, rf_annual, rules=FORMULAS_ONLY), f"{fixture} rf={rf_annual}")
    if bench is None:
        assert all(row[k] is None for k in BENCHMARK_METRICS)


# ------------------------------------------------------------------ empyrical's property tests


@pytest.mark.parametrize(("fixture", "constant"), [("noise", 0.0001), ("noise", 0.001),
                                                   ("noise_uniform", 0.01), ("noise_uniform", 0.1)])
def test_max_drawdown_translation(fixture: str, constant: float) -> None:
    r = FIXTURES[fixture]
    base = metrics_of(r)["max_drawdown"]
    assert metrics_of(r - constant)["max_drawdown"] <= base <= metrics_of(r + constant)["max_drawdown"]


def test_sharpe_and_sortino_translation_invariance() -> None:
    """Shifting returns and the risk-free rate together leaves both ratios unchanged."""
    r = NOISE_UNIFORM
    rf_d = 0.005
    shifted_rf = (1 + rf_d) ** 252 - 1
    base, shifted = metrics_of(r), metrics_of(r + rf_d, rf_annual=shifted_rf)
    assert shifted["sharpe_ratio"] == pytest.approx(base["sharpe_ratio"], abs=1e-8)
    assert shifted["sortino_ratio"] == pytest.approx(base["sortino_ratio"], abs=1e-8)
