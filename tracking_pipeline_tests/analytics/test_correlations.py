"""Pairwise correlations and p-values against scipy.stats.pearsonr."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tracking_pipeline.analytics.correlations import pairwise_correlations, pearson_p_value, rolling_correlation


def _returns() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    n = 300
    common = rng.normal(0, 0.01, n)
    data = {
        "A": common + rng.normal(0, 0.01, n),
        "B": 0.5 * common + rng.normal(0, 0.01, n),
        "C": rng.normal(0, 0.01, n),
        "D": -common + rng.normal(0, 0.002, n),
    }
    df = pd.DataFrame(data, index=pd.bdate_range("2022-01-03", periods=n))
    df.iloc[250:260, 0] = np.nan
    df.iloc[255:270, 1] = np.nan
    df.iloc[-5:, 3] = np.nan
    return df


def test_matches_pearsonr_on_pairwise_complete_window() -> None:
    df = _returns()
    out = pairwise_correlations(df, window=63)
    assert list(out.columns) == ["ticker_a", "ticker_b", "correlation", "p_value", "observations"]
    assert list(zip(out.ticker_a, out.ticker_b)) == [
        ("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D")
    ]
    last = df.iloc[-63:]
    for row in out.itertuples():
        pair = last[[row.ticker_a, row.ticker_b]].dropna()
        ref = stats.pearsonr(pair.iloc[:, 0], pair.iloc[:, 1])
        assert row.observations == len(pair)
        assert row.correlation == pytest.approx(ref.statistic, rel=1e-10)
        assert row.p_value == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    ab = out[(out.ticker_a == "A") & (out.ticker_b == "B")].iloc[0]
    assert ab.observations == 63 - 20  # A missing 250-259, B missing 255-269 -> rows 250-269 lost
    ad = out[(out.ticker_a == "A") & (out.ticker_b == "D")].iloc[0]
    assert ad.correlation < -0.5 and ad.p_value < 1e-6
    cd = out[(out.ticker_a == "C") & (out.ticker_b == "D")].iloc[0]
    assert cd.p_value > 0.01


def test_degenerate_cases() -> None:
    df = pd.DataFrame({"X": [1.0, 2.0, 3.0, 4.0], "Y": [2.0, 4.0, 6.0, 8.0], "K": [1.0] * 4, "Z": [np.nan, np.nan, 1.0, 2.0]})
    out = pairwise_correlations(df).set_index(["ticker_a", "ticker_b"])
    assert out.loc[("X", "Y"), "correlation"] == pytest.approx(1.0)
    assert out.loc[("X", "Y"), "p_value"] == 0.0
    assert np.isnan(out.loc[("X", "K"), "correlation"])  # constant series
    assert np.isnan(out.loc[("X", "Z"), "correlation"]) and out.loc[("X", "Z"), "observations"] == 2
    assert len(pairwise_correlations(df[["X"]])) == 0


def test_p_value_formula_and_rolling() -> None:
    r = np.array([0.1, 0.5, -0.3])
    n = np.array([30, 10, 100])
    t = r * np.sqrt((n - 2) / (1 - r**2))
    np.testing.assert_allclose(pearson_p_value(r, n), 2 * stats.t.sf(np.abs(t), n - 2), rtol=1e-12)
    df = _returns()
    rc = rolling_correlation(df["A"], df["C"], 20)
    assert rc.iloc[:19].isna().all()
    assert rc.iloc[100] == pytest.approx(np.corrcoef(df["A"].iloc[81:101], df["C"].iloc[81:101])[0, 1])


def test_selected_pairs_in_chunks_equal_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the pairs asked for, in the order asked, computed in chunks smaller than the pair list."""
    import tracking_pipeline.analytics.correlations as corr

    df = _returns()
    x = df.to_numpy(float)
    a, b = np.array([3, 0, 1, 0]), np.array([2, 1, 3, 3])
    monkeypatch.setattr(corr, "_CHUNK_CELLS", 2 * len(df))  # two pairs per chunk
    got_a, got_b, r, p, n = corr.pair_statistics(x, 3, a, b)
    assert list(got_a) == list(a) and list(got_b) == list(b)
    for i in range(len(a)):
        pair = df.iloc[:, [a[i], b[i]]].dropna()
        ref = stats.pearsonr(pair.iloc[:, 0], pair.iloc[:, 1])
        assert n[i] == len(pair)
        assert r[i] == pytest.approx(ref.statistic, rel=1e-10)
        assert p[i] == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    assert np.isnan(corr.pair_statistics(x, len(df) - 10, a, b)[2][1])  # A-B has 20 gaps: below min_obs


def test_pairs_without_gaps_equal_scipy_and_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs of two gap-free columns (their means and sums of squares shared) and pairs with a gap, mixed and in
    chunks: each equals scipy on its complete rows, and the gap-free pairs carry the bits of the general path."""
    import tracking_pipeline.analytics.correlations as corr

    rng = np.random.default_rng(7)
    x = rng.normal(0, 0.01, (120, 6))
    x[:, 2] = 0.0  # a stale price: no variance, r is NaN
    x[[5, 40], 4] = np.nan
    a, b = np.array([0, 4, 1, 3, 0, 2, 5, 1]), np.array([1, 0, 3, 5, 4, 0, 1, 5])
    monkeypatch.setattr(corr, "_CHUNK_CELLS", 3 * len(x))  # three pairs per chunk
    _, _, r, p, n = corr.pair_statistics(x, 3, a, b)
    for i in range(len(a)):
        both = np.isfinite(x[:, a[i]]) & np.isfinite(x[:, b[i]])
        assert n[i] == both.sum() == (118 if 4 in (a[i], b[i]) else 120)
        if 2 in (a[i], b[i]):
            assert np.isnan(r[i]) and np.isnan(p[i])
            continue
        ref = stats.pearsonr(x[both, a[i]], x[both, b[i]])
        assert r[i] == pytest.approx(ref.statistic, rel=1e-10)
        assert p[i] == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    gap_free = np.flatnonzero((a != 4) & (b != 4))
    general_r, general_n = np.full(len(a), np.nan), np.zeros(len(a), dtype="int64")
    corr._gapped_pairs(x, a, b, gap_free, 3, general_r, general_n)
    np.testing.assert_array_equal(r[gap_free], general_r[gap_free])
    np.testing.assert_array_equal(n[gap_free], general_n[gap_free])
