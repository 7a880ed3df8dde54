"""Threshold metrics on predicted probabilities (float64 numpy arrays)."""

from __future__ import annotations

import numpy as np


def prf(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 when predicting positive for proba >= threshold."""
    pred = proba >= threshold
    tp = float(np.count_nonzero(pred & (y == 1)))
    predicted = float(np.count_nonzero(pred))
    actual = float(np.count_nonzero(y == 1))
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * tp / (predicted + actual) if predicted + actual else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}


def best_threshold(y: np.ndarray, proba: np.ndarray, num_points: int | None = None) -> float:
    """The threshold with the highest F1 (ties: the highest threshold, the fewest positives).

    Exact search uses every distinct score as a candidate, as the precision-recall curve
    does; a fixed grid misses the optimum when it sits very near 0 or 1.
    """
    if num_points is None:
        candidates = np.unique(proba)
    else:
        candidates = np.linspace(0.0, 1.0, num_points)
    order = np.sort(proba)
    # predicted positives at each candidate: rows with proba >= t
    predicted = len(order) - np.searchsorted(order, candidates, side="left")
    pos_sorted = np.sort(proba[y == 1])
    tp = len(pos_sorted) - np.searchsorted(pos_sorted, candidates, side="left")
    denom = predicted + len(pos_sorted)
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(len(candidates)), where=denom > 0)
    best = np.flatnonzero(f1 == f1.max())[-1]
    return float(candidates[best])


def pr_auc(y: np.ndarray, proba: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, proba))
