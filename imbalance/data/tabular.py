"""File-backed sources: the Kaggle credit-card data and any CSV.

A CSV is parsed once; the processed arrays are cached as a binary file keyed by the file's
path, size and modification time (and the processing options), so later episodes load in a
fraction of a second. Cache writes are atomic, so concurrent episodes never read half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from imbalance.config.schema import CsvSource, KaggleSource
from imbalance.data.splits import Splits, shown_name, split_and_scale
from imbalance.errors import UsageError
from imbalance.seeding import derive_seed

log = logging.getLogger(__name__)

KAGGLE_COLUMNS = ("Time", *(f"V{i}" for i in range(1, 29)), "Amount")
KAGGLE_FILE = "creditcard.csv"
KAGGLE_PAGE = "https://www.kaggle.com/datasets/mlg-ulb/creditcardfraud"
CACHE_FORMAT = 1  # bump when the processing below changes what is cached

Table = tuple[np.ndarray, np.ndarray, tuple[str, ...]]  # X float64, y int64 in {0,1}, feature names


# ------------------------------------------------------------------------------ kaggle
def load_kaggle(cfg: KaggleSource, seed: int) -> Splits:
    path = kaggle_csv_path(cfg)
    X, y, names = cached_table(path, "kaggle", cfg.cache_dir, lambda: parse_kaggle(path))
    if cfg.sample_n is not None:
        X, y = stratified_sample(X, y, cfg.sample_n, seed, what="source.sample_n")
    description = (
        f"credit-card fraud transactions (mlg-ulb/creditcardfraud): {len(y)} rows after removing exact duplicates, "
        f"{len(names)} features (Time, V1..V28 from PCA, Amount), fraud is the positive class"
    )
    return split_and_scale(X, y, val_size=cfg.val_frac, test_size=cfg.test_frac, seed=seed, feature_names=names, description=description)


def kaggle_csv_path(cfg: KaggleSource) -> Path:
    if cfg.path:
        path = Path(cfg.path).expanduser()
        if path.is_dir():
            if not (path / KAGGLE_FILE).is_file():
                raise UsageError(f"source.path={cfg.path} is a folder without {KAGGLE_FILE}; point it at the file or the folder holding it")
            path = path / KAGGLE_FILE
        if not path.is_file():
            raise UsageError(f"source.path={cfg.path}: no such file; point it at {KAGGLE_FILE} or the folder holding it")
        return path
    try:
        import kagglehub

        folder = Path(kagglehub.dataset_download(cfg.dataset))
    except Exception as exc:  # kagglehub raises requests' errors, unwrapped, when offline
        raise UsageError(
            f"could not get {cfg.dataset} through kagglehub ({type(exc).__name__}); with no network, download "
            f"{KAGGLE_FILE} from {KAGGLE_PAGE} and pass source.path=/path/to/{KAGGLE_FILE}, or seed KAGGLEHUB_CACHE"
        ) from None
    path = folder / KAGGLE_FILE if folder.is_dir() else folder
    if not path.is_file():
        raise UsageError(f"kagglehub returned {folder}, which holds no {KAGGLE_FILE}; pass source.path=/path/to/{KAGGLE_FILE}")
    return path


def parse_kaggle(path: Path) -> Table:
    frame = _read_csv(path)
    missing = [c for c in (*KAGGLE_COLUMNS, "Class") if c not in frame.columns]
    if missing:
        raise UsageError(
            f"{path} is not the credit-card file: missing column(s) {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}; expected Time, V1..V28, Amount, Class"
        )
    frame = frame[[*KAGGLE_COLUMNS, "Class"]]
    _require_numeric(frame, path)
    _require_complete(frame, path)
    labels = set(np.unique(frame["Class"].to_numpy()).tolist())
    if not labels <= {0, 1} or len(labels) < 2:
        raise UsageError(f"{path}: column Class must hold 0 (genuine) and 1 (fraud); found {sorted(labels)[:5]}")
    before = len(frame)
    frame = frame.drop_duplicates()
    log.info("parsed %s: %d rows, %d exact duplicates dropped", path.name, before, before - len(frame))
    X = frame[list(KAGGLE_COLUMNS)].to_numpy(dtype=np.float64)
    y = frame["Class"].to_numpy().astype(np.int64)
    return X, y, KAGGLE_COLUMNS


# --------------------------------------------------------------------------------- csv
def csv_path(cfg: CsvSource) -> Path:
    if not cfg.path:
        raise UsageError("source=csv needs a file: add source.path=/path/to/data.csv (and source.label=<label column>)")
    path = Path(cfg.path).expanduser()
    if path.is_dir():
        raise UsageError(f"source.path={cfg.path} is a folder; point it at the CSV file")
    if not path.is_file():
        raise UsageError(f"source.path={cfg.path}: no such file")
    return path


def load_csv(cfg: CsvSource, seed: int) -> Splits:
    path = csv_path(cfg)
    variant = f"csv:{cfg.label}:{int(cfg.drop_duplicates)}"
    X, y, names = cached_table(path, variant, cfg.cache_dir, lambda: _parse_csv(path, cfg.label, cfg.drop_duplicates))
    description = f"{path.name}: {len(y)} rows, {len(names)} numeric features, label column {cfg.label!r} (minority class = positive)"
    return split_and_scale(X, y, val_size=cfg.val_frac, test_size=cfg.test_frac, seed=seed, feature_names=names, description=description)


def _parse_csv(path: Path, label: str, drop_duplicates: bool) -> Table:
    frame = _read_csv(path)
    if frame.empty:
        raise UsageError(f"{path}: no data rows below the header")
    if label not in frame.columns:
        # The columns that could be the label are those with exactly two values; name them all.
        binary = [shown_name(c, i) for i, c in enumerate(frame.columns) if frame[c].nunique(dropna=True) == 2]
        hint = f"the columns with exactly two values are {', '.join(binary)}" if binary else "no column holds exactly two values"
        raise UsageError(f"{path}: no label column {label!r} ({len(frame.columns)} columns); {hint}. Set source.label=<column>")
    features = [c for c in frame.columns if c != label]
    if not features:
        raise UsageError(f"{path}: no feature columns besides the label {label!r}")
    _require_numeric(frame[features], path)
    _require_complete(frame, path)
    if drop_duplicates:
        frame = frame.drop_duplicates()
    values, counts = np.unique(frame[label].to_numpy(), return_counts=True)
    if len(values) != 2:
        shown = ", ".join(shown_name(v, i).replace("column", "class") for i, v in enumerate(values[:5]))
        raise UsageError(f"{path}: label column {label!r} must hold exactly two classes; found {len(values)} ({shown}{' ...' if len(values) > 5 else ''})")
    positive = values[int(np.argmin(counts))] if counts[0] != counts[1] else values[1]
    y = (frame[label].to_numpy() == positive).astype(np.int64)
    return frame[features].to_numpy(dtype=np.float64), y, tuple(map(str, features))


# ------------------------------------------------------------------------------ shared
def _read_csv(path: Path):
    import pandas as pd

    try:
        return pd.read_csv(path, engine="pyarrow")
    except Exception as exc:  # pyarrow/pandas raise many types for malformed files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # The file's own text stays off the terminal: pyarrow quotes the offending row after
        # "got N", and a binary file's bytes are not printable.
        reason = re.sub(r"(got \d+)\b.*", r"\1", reason)
        reason = "".join(ch if ch.isprintable() and ch != "\ufffd" else "?" for ch in reason[:160])
        raise UsageError(f"could not read {path} as CSV: {reason}") from None


def _require_numeric(frame, path: Path) -> None:
    import pandas as pd

    bad = [shown_name(c, i) for i, c in enumerate(frame.columns) if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))]
    if bad:
        raise UsageError(f"{path}: non-numeric feature column(s) {', '.join(bad[:5])}; encode or drop them first")


def _require_complete(frame, path: Path) -> None:
    nan_counts = frame.isna().sum()
    bad = nan_counts[nan_counts > 0]
    if len(bad):
        position = {c: i for i, c in enumerate(frame.columns)}
        first = ", ".join(f"{shown_name(c, position[c])} ({n})" for c, n in list(bad.items())[:5])
        raise UsageError(f"{path}: missing values in {first}; fill or drop those rows first")


def stratified_sample(X: np.ndarray, y: np.ndarray, n: int, seed: int, *, what: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if n >= len(y):
        raise UsageError(f"{what}={n} is not below the {len(y)} rows available; use a smaller value or null for all rows")
    positives = int(y.sum())
    if min(positives, len(y) - positives) < 2:  # a stratified sample needs 2 rows of each class
        raise UsageError(f"{what}={n}: the data holds {positives} positive row(s) of {len(y)}; a stratified sample, and each split after it "
                         "(train, val, test), needs at least 2 positives. Use data with more positive rows")
    keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=derive_seed(seed, "data.sample"))
    keep = np.sort(keep)
    return X[keep], y[keep]


def cache_root(cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imbalance"


def cached_table(path: Path | None, variant: str, cache_dir: str | None, build: Callable[[], Table], *, stem: str | None = None) -> Table:
    """`build()` once per (file contents stamp, variant); afterwards a binary load. With no
    `path` (data shipped inside a package) the variant alone is the key and `stem` names the file."""
    stamp: list = [variant, CACHE_FORMAT]
    if path is not None:
        stat = path.stat()
        stamp = [str(path.resolve()), stat.st_size, stat.st_mtime_ns, *stamp]
    key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:20]
    cache_file = cache_root(cache_dir) / f"{stem or (path.stem if path else 'table')}-{key}.npz"
    if cache_file.is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as data:
                return data["X"], data["y"], tuple(str(n) for n in data["names"])
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable cache file %s", cache_file)
    X, y, names = build()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp.npz")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, X=X, y=y, names=np.array(names))
        os.replace(tmp, cache_file)
    except OSError as exc:
        log.warning("could not cache %s in %s (%s); it will be parsed again next time", cache_file.name, cache_file.parent, exc)
    return X, y, names
