"""Stratified train/val/test splitting and train-only scaling.

The scaler is fitted on the training rows alone: the original implementation fitted it
on every row, so test statistics leaked into the features the agent trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from imbalance.errors import UsageError
from imbalance.seeding import derive_seed

MIN_POSITIVES = 2
# Column names are the file's first line: shown in messages only when they look like names, so
# a path given in error (a trainer row, a typo: /etc/passwd) never puts its contents on screen.
_NAME_LIKE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_ .()\[\]%#+-]{0,39}")


def shown_name(name: object, index: int) -> str:
    """A column's name for a message: itself when name-like, else its position."""
    text = str(name)
    return text if _NAME_LIKE.fullmatch(text) else f"column {index + 1}"


@dataclass(frozen=True)
class Split:
    X: np.ndarray  # float32, scaled with the training statistics
    y: np.ndarray  # int64 in {0, 1}; 1 is the minority (positive) class

    @property
    def positives(self) -> int:
        return int(self.y.sum())

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split
    feature_names: tuple[str, ...]
    description: str

    def without_test(self) -> VisibleSplits:
        """What the environment keeps: the grader takes the TEST split and nobody else does."""
        return VisibleSplits(self.train, self.val, self.feature_names, self.description)


@dataclass(frozen=True)
class VisibleSplits:
    """Train and validation: the rows an agent's tools may compute from (no `test` field, so
    no code beside the grader can read TEST through the environment)."""

    train: Split
    val: Split
    feature_names: tuple[str, ...]
    description: str


def split_and_scale(
    X: np.ndarray,
    y: np.ndarray,
    *,
    val_size: float | int,
    test_size: float | int,
    seed: int,
    feature_names: tuple[str, ...],
    description: str,
) -> Splits:
    """Stratified split driven by `seed`, then standardise with train statistics only.

    Sizes are fractions of all rows (floats) or row counts (ints).
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    n = len(y)
    n_test = test_size if isinstance(test_size, int) else int(round(test_size * n))
    n_val = val_size if isinstance(val_size, int) else int(round(val_size * n))
    if n_test < 2 or n_val < 2 or n - n_test - n_val < 2:
        raise UsageError(f"cannot split {n} rows into train/val/test with val={val_size} and test={test_size}; provide more rows")
    indices = np.arange(n)
    # Checked before each split: scikit-learn's stratified split raises its own traceback
    # ("The least populated class in y has only 1 member") below 2 rows of a class.
    need = PositivesNeeded(n, n_val, n_test, val_size, test_size)
    need.check("data", y)
    rest, test_idx = train_test_split(indices, test_size=n_test, stratify=y, random_state=derive_seed(seed, "split.test"))
    need.check("data left after the test split", y[rest])
    train_idx, val_idx = train_test_split(rest, test_size=n_val, stratify=y[rest], random_state=derive_seed(seed, "split.val"))
    for name, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
        need.check(f"{name} split", y[idx])
    _require_finite(~np.isfinite(X).all(axis=0), feature_names, "hold infinite values; fill or drop those rows first")
    with np.errstate(over="ignore", invalid="ignore"):
        scaler = StandardScaler().fit(X[train_idx])
    _require_finite(~(np.isfinite(scaler.mean_) & np.isfinite(scaler.scale_)), feature_names,
                    "hold values too large to standardise (their sum overflows); rescale them first")

    def make(idx: np.ndarray) -> Split:
        # The overflow is reported below as one line; numpy's RuntimeWarning would print two more.
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = scaler.transform(X[idx]).astype(np.float32, copy=False)
        _require_finite(~np.isfinite(scaled).all(axis=0), feature_names, "do not fit float32 after scaling; rescale them first")
        return Split(np.ascontiguousarray(scaled), y[idx].astype(np.int64, copy=False))

    return Splits(make(train_idx), make(val_idx), make(test_idx), feature_names, description)


@dataclass(frozen=True)
class PositivesNeeded:
    """Every split needs 2 positives (F1 on one positive is 0 or 1); the message says how
    many that takes in all, so the user knows what data would do."""

    rows: int
    n_val: int
    n_test: int
    val_size: float | int
    test_size: float | int

    def check(self, what: str, y: np.ndarray) -> None:
        positives = int(y.sum())
        if positives >= MIN_POSITIVES and len(y) - positives >= MIN_POSITIVES:
            return
        smallest = min(self.n_val, self.n_test, self.rows - self.n_val - self.n_test)
        in_all = -(-MIN_POSITIVES * self.rows // max(smallest, 1))
        held = f"{positives} positive row(s) of {len(y)}" if positives < MIN_POSITIVES else f"only {len(y) - positives} negative row(s)"
        raise UsageError(
            f"the {what} holds {held}; each split (train, val, test) needs at least {MIN_POSITIVES} positive and {MIN_POSITIVES} negative rows, "
            f"about {in_all} positives in all with val={self.val_size} and test={self.test_size}. Use more rows or a larger minority fraction"
        )


def _require_finite(bad: np.ndarray, feature_names: tuple[str, ...], problem: str) -> None:
    if bad.any():
        names = [shown_name(feature_names[i], i) if i < len(feature_names) else f"column {i + 1}" for i in np.flatnonzero(bad)[:5]]
        raise UsageError(f"feature(s) {', '.join(names)} {problem}")
