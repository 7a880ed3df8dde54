"""Data sources (synthetic, kaggle, csv), splitting and train-only scaling."""

from __future__ import annotations

from typing import Any

from imbalance.data.splits import Split, Splits

__all__ = ["Split", "Splits", "load_splits"]


def load_splits(source: Any, seed: int) -> Splits:
    """The train/val/test splits of the configured source (a dataclass from imbalance.config)."""
    if source.name == "synthetic":
        from imbalance.data.synthetic import load_synthetic

        return load_synthetic(source, seed)
    if source.name == "kaggle":
        from imbalance.data.tabular import load_kaggle

        return load_kaggle(source, seed)
    if source.name == "csv":
        from imbalance.data.tabular import load_csv

        return load_csv(source, seed)
    raise ValueError(f"no data source named {source.name!r}")
