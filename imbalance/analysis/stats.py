"""Honest statistics for pass rates over episodes.

- Wilson score interval: a binomial proportion's confidence interval that stays inside
  [0, 1] and behaves for small n and for 0/n or n/n (the normal approximation does not).
- pass@k (Chen et al. 2021): the probability that at least one of k samples passes,
  estimated without bias from n >= k samples with c passes: 1 - C(n-c, k) / C(n, k).
- pass^k (tau-bench, Yao et al. 2024): the probability that all k samples pass,
  C(c, k) / C(n, k). Both are averaged over task configurations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist  # the same z as scipy.stats, without its ~0.7 s import


def wilson_interval(passed: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = passed / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0/n and n/n the bound is exactly 0 or 1; centre - half only approaches it in floating point.
    low = 0.0 if passed == 0 else max(0.0, centre - half)
    high = 1.0 if passed == n else min(1.0, centre + half)
    return (low, high)


def pass_at_k(n: int, c: int, k: int) -> float:
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(f"need 0 < k <= n and 0 <= c <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    if not 0 < k <= n or not 0 <= c <= n:
        raise ValueError(f"need 0 < k <= n and 0 <= c <= n; got n={n}, c={c}, k={k}")
    return math.comb(c, k) / math.comb(n, k)


def grouped_pass_k(groups: Sequence[tuple[int, int]], ks: Sequence[int] = (1, 2, 3, 5, 10)) -> dict[int, tuple[float, float, int]]:
    """{k: (mean pass@k, mean pass^k, number of groups)} over groups (n, c) with n >= k >= 1,
    for each k that at least one group with two or more samples supports."""
    out = {}
    for k in ks:
        usable = [(n, c) for n, c in groups if n >= k and n >= 2]
        if usable:
            out[k] = (
                sum(pass_at_k(n, c, k) for n, c in usable) / len(usable),
                sum(pass_hat_k(n, c, k) for n, c in usable) / len(usable),
                len(usable),
            )
    return out
