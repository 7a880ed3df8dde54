"""Data sources (synthetic, mixture, kaggle, csv, benchmark), splitting and train-only scaling."""

from __future__ import annotations

from imbalance.config.schema import BenchmarkSource, CsvSource, KaggleSource, MixtureSource, SyntheticSource
from imbalance.data.splits import Split, Splits

Source = SyntheticSource | MixtureSource | KaggleSource | CsvSource | BenchmarkSource

__all__ = ["Split", "Splits", "check_data", "check_source", "describe_source", "load_splits"]


def load_splits(source: Source, seed: int) -> Splits:
    """The train/val/test splits of the configured source."""
    if isinstance(source, SyntheticSource):
        from imbalance.data.synthetic import load_synthetic

        return load_synthetic(source, seed)
    if isinstance(source, MixtureSource):
        from imbalance.data.mixture import load_mixture

        return load_mixture(source, seed)
    if isinstance(source, KaggleSource):
        from imbalance.data.tabular import load_kaggle

        return load_kaggle(source, seed)
    if isinstance(source, CsvSource):
        from imbalance.data.tabular import load_csv

        return load_csv(source, seed)
    if isinstance(source, BenchmarkSource):
        from imbalance.data.benchmark import load_benchmark

        return load_benchmark(source, seed)
    raise TypeError(f"no data source for {type(source).__name__}")


def describe_source(source: Source) -> str | None:
    """The data clause of the task prompt when the settings alone determine it (synthetic
    sources); None when it depends on the file (then it is `load_splits(...).description`)."""
    if isinstance(source, SyntheticSource):
        from imbalance.data.synthetic import describe_synthetic

        return describe_synthetic(source)
    if isinstance(source, MixtureSource):
        from imbalance.data.mixture import describe_mixture

        return describe_mixture(source)
    return None


def check_source(source: Source) -> None:
    """What can be known before loading: the synthetic data fits in memory, a given file exists.
    Raises UsageError; run before any run is created or any data is loaded."""
    if isinstance(source, SyntheticSource):
        from imbalance.data.synthetic import check_fits_in_memory

        check_fits_in_memory(source)
    elif isinstance(source, KaggleSource) and source.path:
        from imbalance.data.tabular import kaggle_csv_path

        kaggle_csv_path(source)
    elif isinstance(source, CsvSource):
        from imbalance.data.tabular import csv_path

        csv_path(source)
    elif isinstance(source, BenchmarkSource):
        from imbalance.data.benchmark import dataset_info

        dataset_info(source.dataset)


def check_data(source: Source, seed: int) -> None:
    """A file's rows loaded and split once (then cached): what only they can show (one positive,
    a missing value, a split without positives) is a UsageError here. A sweep runs it before its
    parent run exists; generated sources are left out, their settings alone were checked."""
    if isinstance(source, (KaggleSource, CsvSource, BenchmarkSource)):
        load_splits(source, seed)
