"""A generated file in the credit-card schema (Time, V1..V28, Amount, Class).

For tests, benchmarks and demos where the real Kaggle file is not at hand: the real file's
shape (284,807 rows, 492 frauds, 1,081 exact duplicate rows) by default, with fraud
separated from genuine rows on a handful of components as in the real PCA features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imbalance.data.tabular import KAGGLE_COLUMNS

# Components on which fraud differs in the real data, and by how many standard deviations.
FRAUD_SHIFTS = {"V14": -2.6, "V12": -2.2, "V10": -2.0, "V17": -1.8, "V4": 1.8, "V11": 1.5, "V3": -1.5}


def write_creditcard_like(path: str | Path, *, rows: int = 284_807, frauds: int = 492, duplicates: int = 1_081, seed: int = 0) -> Path:
    """Write the CSV; `duplicates` of the `rows` are exact copies of other genuine rows."""
    if not 0 < frauds < rows or not 0 <= duplicates < rows - frauds:
        raise ValueError(f"need 0 < frauds < rows and 0 <= duplicates < rows - frauds; got rows={rows}, frauds={frauds}, duplicates={duplicates}")
    rng = np.random.default_rng(seed)
    unique = rows - duplicates
    V = rng.standard_normal((unique, 28))
    y = np.zeros(unique, dtype=np.int64)
    fraud_rows = rng.choice(unique, size=frauds, replace=False)
    y[fraud_rows] = 1
    for name, shift in FRAUD_SHIFTS.items():
        V[fraud_rows, int(name[1:]) - 1] += shift * rng.uniform(0.5, 1.5, size=frauds)
    time = np.sort(rng.uniform(0, 172_792, size=unique)).round()
    amount = np.round(rng.lognormal(3.0, 1.5, size=unique), 2)
    table = np.column_stack([time, V, amount, y])
    genuine = np.flatnonzero(y == 0)
    copies = table[rng.choice(genuine, size=duplicates, replace=True)]
    table = np.vstack([table, copies])
    table = table[np.argsort(table[:, 0], kind="stable")]  # ordered by Time, like the real file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ",".join([*KAGGLE_COLUMNS, "Class"])
    fmt = ["%.0f"] + ["%.9f"] * 28 + ["%.2f", "%d"]
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt=fmt)
    return path
