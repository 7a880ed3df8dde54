"""Two Gaussian classes with a chosen minority fraction."""

from __future__ import annotations

import numpy as np

from imbalance.config.schema import SyntheticSource
from imbalance.data.splits import Splits, split_and_scale
from imbalance.errors import UsageError
from imbalance.seeding import generator

# Each value lives as float64 when drawn and float32 (plus SMOTE's copy) afterwards.
BYTES_PER_VALUE = 24


def check_fits_in_memory(cfg: SyntheticSource) -> None:
    """Refuse up front what would end in a MemoryError minutes later."""
    import os

    need = (cfg.n_train + cfg.n_val + cfg.n_test) * cfg.n_features * BYTES_PER_VALUE
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if need > have // 2:
        raise UsageError(
            f"source.n_train+n_val+n_test rows x {cfg.n_features} features need about {need / 2**30:.0f} GiB; "
            f"this machine has {have / 2**30:.0f} GiB. Use fewer rows or features"
        )


def load_synthetic(cfg: SyntheticSource, seed: int) -> Splits:
    n = cfg.n_train + cfg.n_val + cfg.n_test
    n_pos = max(int(round(cfg.minority_frac * n)), 1)
    rng = generator(seed, "data.synthetic")
    X = rng.standard_normal((n, cfg.n_features))
    y = np.zeros(n, dtype=np.int64)
    y[:n_pos] = 1
    X[:n_pos] += cfg.separation
    order = rng.permutation(n)
    X, y = X[order], y[order]
    names = tuple(f"x{i}" for i in range(cfg.n_features))
    return split_and_scale(
        X, y, val_size=cfg.n_val, test_size=cfg.n_test, seed=seed, feature_names=names, description=describe_synthetic(cfg)
    )


def describe_synthetic(cfg: SyntheticSource) -> str:
    """The task's data clause for prompts and the console: from the settings alone, so a
    trainer can write the prompt of a task-set row without generating its data."""
    return (
        f"synthetic Gaussian blobs: {cfg.n_features} features, class means 0 and {cfg.separation} on every axis, "
        f"identity covariance, minority fraction {cfg.minority_frac}"
    )


def bayes_optimal_f1(cfg: SyntheticSource) -> float:
    """The best F1 any classifier can reach on this distribution (population value).

    With equal identity covariances the likelihood ratio is monotone in the projection on
    the mean difference, so the optimum thresholds s = sum(x)/sqrt(d): N(0,1) for
    negatives, N(separation*sqrt(d), 1) for positives. F1 is maximised over the threshold.
    """
    from scipy.optimize import minimize_scalar
    from scipy.stats import norm

    shift = cfg.separation * np.sqrt(cfg.n_features)
    pi = cfg.minority_frac

    def neg_f1(t):  # a float or, for the coarse grid, an array of thresholds
        tp = pi * norm.sf(t - shift)
        fp = (1 - pi) * norm.sf(t)
        fn = pi * norm.cdf(t - shift)
        return -2 * tp / (2 * tp + fp + fn)

    grid = np.linspace(-5, shift + 5, 2001)
    start = grid[int(np.argmin(neg_f1(grid)))]
    best = minimize_scalar(neg_f1, bounds=(start - 0.05, start + 0.05), method="bounded")
    return float(-best.fun)
