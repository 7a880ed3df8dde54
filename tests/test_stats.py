"""Wilson intervals, pass@k and pass^k against known values and brute force."""

from __future__ import annotations

import itertools

import pytest

from imbalance.analysis.stats import grouped_pass_k, pass_at_k, pass_hat_k, wilson_interval


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0) and wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("n, c", [(5, 0), (5, 2), (6, 3), (4, 4)])
def test_pass_at_k_and_pass_hat_k_equal_brute_force_over_all_k_subsets(n, c):
    outcomes = [1] * c + [0] * (n - c)
    for k in range(1, n + 1):
        subsets = list(itertools.combinations(outcomes, k))
        assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))
        assert pass_hat_k(n, c, k) == pytest.approx(sum(all(s) for s in subsets) / len(subsets))
    assert pass_at_k(n, c, 1) == pytest.approx(c / n) == pytest.approx(pass_hat_k(n, c, 1))


def test_grouped_pass_k_averages_over_groups_with_enough_samples():
    out = grouped_pass_k([(4, 2), (4, 0), (1, 1)], ks=(1, 2, 5))
    assert set(out) == {1, 2}  # no group has 5 samples; the single-sample group never counts
    assert out[1] == pytest.approx((0.25, 0.25, 2))
    assert out[2][0] == pytest.approx((pass_at_k(4, 2, 2) + 0) / 2)
    assert out[2][1] == pytest.approx((pass_hat_k(4, 2, 2) + 0) / 2)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
