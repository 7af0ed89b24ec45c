"""Wilson intervals and McNemar's exact test against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from pdr_core.evals.stats import mcnemar_exact, paired_comparison, wilson_interval, z_score


def test_z_score():
    assert z_score(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_score(0.99) == pytest.approx(2.575829, abs=1e-6)
    with pytest.raises(ValueError):
        z_score(1.0)


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    # 95% Wilson intervals worked out at 40 digits with mpmath (z = sqrt(2) erfinv(0.95)).
    (5, 10, 0.236593, 0.763407),
    (8, 10, 0.490162, 0.943318),
    (0, 10, 0.0, 0.277533),
    (10, 10, 0.722467, 1.0),
    (81, 263, 0.255289, 0.366210),
    (1, 1, 0.206549, 1.0),
])
def test_wilson_interval_known_values(k, n, low, high):
    got = wilson_interval(k, n)
    assert got == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))
    assert 0.0 <= got[0] <= k / n <= got[1] <= 1.0


def test_wilson_interval_formula_by_hand():
    z = 1.959963984540054
    k, n = 13, 30
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert wilson_interval(k, n) == (pytest.approx(centre - half), pytest.approx(centre + half))
    wider = wilson_interval(k, n, confidence=0.99)
    assert wider[0] < centre - half and wider[1] > centre + half


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    for bad in ((3, 2), (-1, 2), (0, -1)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)


@pytest.mark.parametrize(("b", "c", "p"), [
    (0, 5, 2 / 32),                    # 2 * C(5,0) / 2^5
    (5, 0, 2 / 32),
    (1, 9, 2 * (1 + 10) / 1024),       # 2 * (C(10,0) + C(10,1)) / 2^10
    (2, 8, 2 * (1 + 10 + 45) / 1024),
    (3, 3, 1.0),                       # 2 * P(X <= 3 | n=6) > 1, capped
    (0, 0, 1.0),                       # no discordant pair: no evidence
    (0, 1, 1.0),
    (0, 10, 2 / 1024),
])
def test_mcnemar_exact_by_hand(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)


def test_mcnemar_exact_large_counts_stay_exact():
    # 2000 discordant pairs: 2^2000 overflows a float, the exact fraction does not.
    p = mcnemar_exact(950, 1050)
    assert 0 < p < 0.05
    assert mcnemar_exact(1000, 1000) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_paired_comparison_counts_and_verdict():
    a = {i: i < 6 for i in range(12)}              # right on 0..5
    b = {i: i < 2 or i >= 6 for i in range(12)}    # right on 0,1 and 6..11
    b[99] = True                                   # graded only for b: not a pair
    result = paired_comparison(a, b, alpha=0.05, name_a="single", name_b="pdr")
    assert (result.pairs, result.both_right, result.only_a, result.only_b,
            result.both_wrong) == (12, 2, 4, 6, 0)
    assert result.p_value == pytest.approx(2 * sum(math.comb(10, k) for k in range(5)) / 1024)
    assert result.accuracy_a == 0.5 and result.accuracy_b == pytest.approx(8 / 12)
    assert not result.significant
    assert "no significant difference" in result.verdict()

    sweep = paired_comparison({i: False for i in range(10)}, {i: True for i in range(10)},
                              0.01, "single", "pdr")
    assert sweep.p_value == pytest.approx(2 / 1024) and sweep.significant
    assert "pdr is significantly better" in sweep.verdict()
    empty = paired_comparison({}, {1: True})
    assert empty.pairs == 0 and empty.p_value == 1.0 and empty.accuracy_a is None
    assert "No problem" in empty.verdict()
    with pytest.raises(ValueError):
        paired_comparison(a, b, alpha=0)
