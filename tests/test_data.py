"""Sources, stratified splitting and train-only scaling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imbalance.config import CsvSource, KaggleSource, SyntheticSource
from imbalance.data import load_splits, tabular
from imbalance.data.splits import split_and_scale
from imbalance.data.synthetic import bayes_optimal_f1
from imbalance.errors import UsageError


def test_synthetic_sizes_classes_and_separation():
    cfg = SyntheticSource(n_train=4000, n_val=1000, n_test=1000, n_features=3, separation=2.0, minority_frac=0.05)
    s = load_splits(cfg, seed=3)
    assert (len(s.train), len(s.val), len(s.test)) == (4000, 1000, 1000)
    assert s.train.X.shape == (4000, 3) and s.train.X.dtype == np.float32
    for part in (s.train, s.val, s.test):
        assert part.positives / len(part) == pytest.approx(0.05, abs=0.002)  # stratified
    gap = s.train.X[s.train.y == 1].mean(0) - s.train.X[s.train.y == 0].mean(0)
    assert np.all(gap > 1.5)  # ~2.0 before scaling, a bit less after


def test_same_seed_same_splits_other_seed_other_splits():
    cfg = SyntheticSource(n_train=500, n_val=200, n_test=200)
    a, b, c = load_splits(cfg, 1), load_splits(cfg, 1), load_splits(cfg, 2)
    assert np.array_equal(a.test.X, b.test.X) and np.array_equal(a.train.y, b.train.y)
    assert not np.array_equal(a.test.X, c.test.X)


def test_bayes_optimal_f1_matches_the_known_value_and_a_large_sample():
    cfg = SyntheticSource()
    assert bayes_optimal_f1(cfg) == pytest.approx(0.5726, abs=0.001)
    # The Bayes rule thresholds sum(x); a large sample at that threshold reaches the same F1.
    rng = np.random.default_rng(0)
    n, d, pi = 2_000_000, 4, 0.03
    y = rng.random(n) < pi
    s = rng.standard_normal(n) + y * 1.2 * np.sqrt(d)
    f1s = []
    for t in np.linspace(1.0, 3.5, 251):
        pred = s >= t
        tp = np.count_nonzero(pred & y)
        f1s.append(2 * tp / (pred.sum() + y.sum()))
    assert max(f1s) == pytest.approx(bayes_optimal_f1(cfg), abs=0.005)


def _test_row_indices(y: np.ndarray, seed: int) -> np.ndarray:
    """Which raw rows land in TEST: split a row-index feature; scaling is monotone, so ranks recover it."""
    idx = np.arange(len(y), dtype=np.float64)[:, None]
    s = split_and_scale(idx, y, val_size=0.2, test_size=0.2, seed=seed, feature_names=("i",), description="")
    scaled = np.concatenate([s.train.X[:, 0], s.val.X[:, 0], s.test.X[:, 0]])
    ranks = np.argsort(np.argsort(scaled))
    return np.sort(ranks[len(s.train) + len(s.val) :])


def test_scaler_is_fitted_on_train_only():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(3000, 2))
    y = (rng.random(3000) < 0.1).astype(np.int64)
    s = split_and_scale(X, y, val_size=0.2, test_size=0.2, seed=0, feature_names=("a", "b"), description="")
    assert np.allclose(s.train.X.mean(0), 0, atol=1e-5) and np.allclose(s.train.X.std(0), 1, atol=1e-4)
    test_rows = _test_row_indices(y, seed=0)
    assert len(test_rows) == 600
    # Moving every TEST row far away changes neither the train nor the val features.
    X_moved = X.copy()
    X_moved[test_rows] += 1000.0
    s2 = split_and_scale(X_moved, y, val_size=0.2, test_size=0.2, seed=0, feature_names=("a", "b"), description="")
    assert np.array_equal(s2.train.X, s.train.X) and np.array_equal(s2.val.X, s.val.X)
    assert not np.array_equal(s2.test.X, s.test.X)


def test_too_few_positives_in_a_split_is_a_usage_error():
    y = np.zeros(1000, dtype=np.int64)
    y[:3] = 1
    with pytest.raises(UsageError, match="positive row"):
        split_and_scale(np.zeros((1000, 1)), y, val_size=0.2, test_size=0.2, seed=0, feature_names=("a",), description="")


# ------------------------------------------------------------------------------ kaggle
def test_kaggle_from_a_file_or_its_folder_drops_duplicates_and_caches(creditcard_csv, tmp_path, monkeypatch):
    cfg = KaggleSource(path=str(creditcard_csv), cache_dir=str(tmp_path / "cache"))
    s = load_splits(cfg, seed=0)
    raw = pd.read_csv(creditcard_csv)
    assert len(raw) == 6000 and raw.duplicated().sum() == 25
    assert len(s.train) + len(s.val) + len(s.test) == 6000 - 25
    assert s.train.X.shape[1] == 30 and s.feature_names[0] == "Time" and s.feature_names[-1] == "Amount"
    assert s.train.positives + s.val.positives + s.test.positives == 60
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    # The second load reads the binary cache: parsing again would fail now.
    monkeypatch.setattr(tabular, "parse_kaggle", lambda path: pytest.fail("parsed the CSV again"))
    again = load_splits(KaggleSource(path=str(creditcard_csv.parent), cache_dir=str(tmp_path / "cache")), seed=0)
    assert np.array_equal(again.test.X, s.test.X)


def test_kaggle_sample_n_is_stratified_and_seeded(creditcard_csv, tmp_path):
    cfg = KaggleSource(path=str(creditcard_csv), cache_dir=str(tmp_path), sample_n=3000)
    s = load_splits(cfg, seed=0)
    total = len(s.train) + len(s.val) + len(s.test)
    positives = s.train.positives + s.val.positives + s.test.positives
    assert total == 3000 and positives == 30  # 60 of 5975 rows, halved
    assert np.array_equal(load_splits(cfg, seed=0).val.X, s.val.X)
    with pytest.raises(UsageError, match="sample_n=9000 is not below"):
        load_splits(KaggleSource(path=str(creditcard_csv), cache_dir=str(tmp_path), sample_n=9000), seed=0)


def seed_kagglehub_cache(root: Path, csv: Path) -> None:
    """The layout kagglehub 1.0 checks for a versioned dataset handle: files plus a marker."""
    folder = root / "datasets" / "mlg-ulb" / "creditcardfraud"
    (folder / "versions" / "3").mkdir(parents=True)
    (folder / "versions" / "3" / "creditcard.csv").write_bytes(csv.read_bytes())
    (folder / "3.complete").touch()


def test_kaggle_through_a_seeded_kagglehub_cache(creditcard_csv, tmp_path, monkeypatch):
    seed_kagglehub_cache(tmp_path / "kh", creditcard_csv)
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kh"))
    s = load_splits(KaggleSource(cache_dir=str(tmp_path / "cache")), seed=0)
    assert len(s.train) + len(s.val) + len(s.test) == 6000 - 25


def test_kaggle_offline_without_a_file_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # closed port: no network, fast
    with pytest.raises(UsageError, match="source.path=/path/to/creditcard.csv"):
        load_splits(KaggleSource(cache_dir=str(tmp_path)), seed=0)


@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b,Class\n1,2,0\n", "missing column"),
        ("", "could not read"),
    ],
)
def test_kaggle_malformed_files(tmp_path, content, message):
    path = tmp_path / "creditcard.csv"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_splits(KaggleSource(path=str(path), cache_dir=str(tmp_path)), seed=0)


def test_kaggle_missing_path(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        load_splits(KaggleSource(path=str(tmp_path / "nope.csv")), seed=0)


# --------------------------------------------------------------------------------- csv
def write_csv(path: Path, n: int = 2000, positives: int = 100, label: str = "target", **extra_columns) -> Path:
    rng = np.random.default_rng(0)
    y = np.array(["fraud"] * positives + ["ok"] * (n - positives))
    frame = pd.DataFrame({"f1": rng.normal(size=n), "f2": rng.normal(size=n) + (y == "fraud"), label: y, **extra_columns})
    frame.to_csv(path, index=False)
    return path


def test_csv_minority_class_is_the_positive_class(tmp_path):
    path = write_csv(tmp_path / "d.csv")
    s = load_splits(CsvSource(path=str(path), label="target", cache_dir=str(tmp_path)), seed=0)
    assert s.feature_names == ("f1", "f2")
    assert s.train.positives + s.val.positives + s.test.positives == 100
    # the minority is positive whichever way its label sorts: here 0 is the rare class, 1 the common one
    frame = pd.read_csv(path)
    frame["target"] = (frame["target"] == "ok").astype(int)
    frame.to_csv(tmp_path / "numeric.csv", index=False)
    s = load_splits(CsvSource(path=str(tmp_path / "numeric.csv"), label="target", cache_dir=str(tmp_path)), seed=0)
    assert s.train.positives + s.val.positives + s.test.positives == 100


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: write_csv(p, label="y"), "no label column 'target'"),
        (lambda p: p.write_text("f1,target\n1,a\n2,b\n3,c\n"), "exactly two classes; found 3"),
        (lambda p: p.write_text("f1,target\n1,a\n2,a\n"), "exactly two classes; found 1"),
        (lambda p: write_csv(p, city=["x"] * 2000), "non-numeric feature column"),
        (lambda p: write_csv(p, f3=[np.nan] + [1.0] * 1999), "missing values in f3"),
        (lambda p: write_csv(p, positives=4), "positive row"),
        (lambda p: p.write_bytes(b"\x00\x01\x02garbage\n\xff"), "could not read|no label column|exactly two"),
    ],
)
def test_csv_bad_files_are_usage_errors(tmp_path, make, message):
    path = tmp_path / "d.csv"
    make(path)
    with pytest.raises(UsageError, match=message):
        load_splits(CsvSource(path=str(path), label="target", cache_dir=str(tmp_path)), seed=0)


def test_csv_needs_a_path():
    with pytest.raises(UsageError, match="source.path"):
        load_splits(CsvSource(), seed=0)


# ---------------------------------------------------------------------------- benchmark
def test_benchmark_data_sets_load_from_the_package_drop_duplicates_and_cache(tmp_path, monkeypatch):
    from imbalance.config.schema import BenchmarkSource
    from imbalance.data import benchmark

    cfg = BenchmarkSource(dataset="yeast4", cache_dir=str(tmp_path))
    s = load_splits(cfg, seed=0)
    info = benchmark.dataset_info("yeast4")
    assert (info.family, info.citation, info.rows, info.minority) == ("yeast", "keel", 1484, 51)
    total = len(s.train) + len(s.val) + len(s.test)
    assert total < 1484 and s.train.positives + s.val.positives + s.test.positives == 51  # 31 duplicate rows, all negatives
    assert s.test.positives == 10 and "yeast4" in s.description and "KEEL" in s.description
    whole = load_splits(BenchmarkSource(dataset="yeast4", drop_duplicates=False, cache_dir=str(tmp_path / "raw")), seed=0)
    assert len(whole.train) + len(whole.val) + len(whole.test) == 1484
    # The second load is the binary cache: the package's loader is not called again.
    monkeypatch.setattr(benchmark, "_load_common", lambda *a: pytest.fail("parsed the data set again"))
    assert np.array_equal(load_splits(cfg, seed=0).test.X, s.test.X)


@pytest.mark.parametrize("name, message", [
    (None, "source=benchmark needs a data set: add source.dataset=NAME"),
    ("yeast44", "did you mean yeast4"),
    ("hypothyroid", "cannot be used: its loader fails under pandas 3"),
])
def test_benchmark_names_that_are_not_usable_say_what_to_do(name, message):
    from imbalance.config.schema import BenchmarkSource
    from imbalance.data import check_source

    with pytest.raises(UsageError, match=message):
        check_source(BenchmarkSource(dataset=name))


def test_the_benchmark_catalogue_names_each_family_and_the_credit_card_file():
    from imbalance.data.benchmark import catalogue

    sets = catalogue()
    assert len(sets) == 118 and sets["creditcard"].citation == "kaggle"
    assert {sets[n].family for n in ("yeast4", "yeast_2_vs_8", "yeast1")} == {"yeast"}
    assert all(info.minority > 0 and info.features > 0 for info in sets.values())


# ------------------------------------------------------------------------------ mixture
def test_mixture_rows_follow_the_geometry_which_belongs_to_the_task():
    from imbalance.config.schema import MixtureSource
    from imbalance.data.mixture import bayes_optimal_f1, mode_centres

    cfg = MixtureSource(n_train=3000, n_val=1000, n_test=1000, modes=3, separation=4.0, minority_scale=0.5)
    a, b = load_splits(cfg, 1), load_splits(cfg, 2)
    assert a.train.positives == b.train.positives == 60 and not np.array_equal(a.train.X, b.train.X)  # every seed a fresh sample
    assert np.array_equal(mode_centres(cfg), mode_centres(MixtureSource(modes=3, separation=4.0)))  # the sizes do not move the modes
    assert not np.array_equal(mode_centres(cfg), mode_centres(MixtureSource(modes=3, separation=4.0, geometry_seed=1)))
    # Three tight, well separated modes: nearly separable; the Bayes F1 says so, and drops with label noise.
    assert bayes_optimal_f1(cfg) > 0.95
    assert bayes_optimal_f1(MixtureSource(modes=3, separation=4.0, minority_scale=0.5, label_noise=0.2)) == pytest.approx(0.8, abs=0.03)
