"""Synthetic families built so that handling the imbalance can matter: `source=mixture`.

The majority class is N(0, I). The minority class is a mixture of `modes` Gaussians with
standard deviation `minority_scale`, centred at distance `separation` from the origin in
directions drawn once from `geometry_seed`: several modes, a minority tighter or broader
than the majority, or both. Optionally a share `label_noise` of the minority rows is labelled
majority and as many majority rows minority (the prevalence stays the same).

The geometry (mode directions) belongs to the task, like a data set's columns; the episode
`seed` draws the rows, so every seed is a fresh sample of the same distribution. The
Bayes-optimal F1 is known (the likelihood ratio is explicit) and estimated by Monte Carlo.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from imbalance.config.schema import MixtureSource
from imbalance.data.splits import Splits, split_and_scale
from imbalance.seeding import generator

BAYES_SAMPLE = 400_000  # rows drawn to estimate the Bayes-optimal F1 (standard error ~0.002)


def mode_centres(cfg: MixtureSource) -> np.ndarray:
    directions = generator(cfg.geometry_seed, "data.mixture.geometry").standard_normal((cfg.modes, cfg.n_features))
    return cfg.separation * directions / np.linalg.norm(directions, axis=1, keepdims=True)


def draw(cfg: MixtureSource, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n rows: features, the label as given (with noise), and the true class."""
    n_pos = max(int(round(cfg.minority_frac * n)), 2)
    X = rng.standard_normal((n, cfg.n_features))
    truth = np.zeros(n, dtype=np.int64)
    truth[:n_pos] = 1
    mode = rng.integers(cfg.modes, size=n_pos)
    X[:n_pos] = X[:n_pos] * cfg.minority_scale + mode_centres(cfg)[mode]
    y = truth.copy()
    flips = int(round(cfg.label_noise * n_pos))
    if flips:
        y[rng.choice(n_pos, flips, replace=False)] = 0
        y[n_pos + rng.choice(n - n_pos, flips, replace=False)] = 1
    order = rng.permutation(n)
    return X[order], y[order], truth[order]


def load_mixture(cfg: MixtureSource, seed: int) -> Splits:
    n = cfg.n_train + cfg.n_val + cfg.n_test
    X, y, _ = draw(cfg, n, generator(seed, "data.mixture"))
    names = tuple(f"x{i}" for i in range(cfg.n_features))
    return split_and_scale(X, y, val_size=cfg.n_val, test_size=cfg.n_test, seed=seed, feature_names=names, description=describe_mixture(cfg))


def describe_mixture(cfg: MixtureSource) -> str:
    shape = "one mode" if cfg.modes == 1 else f"{cfg.modes} modes"
    spread = "as spread as" if cfg.minority_scale == 1 else ("tighter than" if cfg.minority_scale < 1 else "more spread than")
    noise = f", {cfg.label_noise:g} of minority labels swapped with majority ones" if cfg.label_noise else ""
    return (f"synthetic mixture: {cfg.n_features} features, the majority one standard Gaussian, the minority (fraction "
            f"{cfg.minority_frac}) in {shape} at distance {cfg.separation} from it, {spread} the majority{noise}")


def log_likelihood_ratio(cfg: MixtureSource, X: np.ndarray) -> np.ndarray:
    """log p(x | minority) - log p(x | majority), the Bayes classifier's score."""
    from scipy.special import logsumexp

    s2 = cfg.minority_scale**2
    d = cfg.n_features
    centres = mode_centres(cfg)
    sq = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)  # rows x modes
    log_minority = logsumexp(-sq / (2 * s2), axis=1) - np.log(cfg.modes) - d * np.log(cfg.minority_scale)
    log_majority = -(X**2).sum(axis=1) / 2
    return log_minority - log_majority


@lru_cache(maxsize=32)
def _bayes(cfg_key: tuple) -> float:
    cfg = MixtureSource(**dict(cfg_key))
    X, y, truth = draw(cfg, BAYES_SAMPLE, generator(cfg.geometry_seed, "data.mixture.bayes"))
    # Label noise that swaps equal counts is independent of x within each class, so the
    # posterior of the given label is still monotone in the likelihood ratio of the classes.
    score = log_likelihood_ratio(cfg, X)
    order = np.argsort(-score)
    hits = np.cumsum(y[order])
    k = np.arange(1, len(y) + 1)
    f1 = 2 * hits / (k + y.sum())
    return float(f1.max())


def bayes_optimal_f1(cfg: MixtureSource) -> float:
    """The best F1 any classifier reaches on this distribution (Monte Carlo, fixed sample)."""
    import dataclasses

    return _bayes(tuple(sorted(dataclasses.asdict(cfg).items())))
