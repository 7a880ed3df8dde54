"""Data and rows a careless or hostile caller gives: one `Error:` line, exit 2, nothing recorded,
and never a line of the file on screen (issue 19, findings 5 and 6)."""

from __future__ import annotations

import numpy as np
import pytest

from imbalance.errors import UsageError
from tests.helpers import FAST, run_cli

SECRET = "s3cret-marker-7f1e"


def write_csv(path, *, n: int = 600, positives: int, huge_rows: int = 0) -> None:
    rng = np.random.default_rng(0)
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, positives, replace=False)] = 1
    x1 = rng.normal(size=n)
    x1[:huge_rows] = 1e308
    lines = ["x1,x2,label", *(f"{float(a)!r},{float(b)!r},{t}" for a, b, t in zip(x1, rng.normal(size=n), y))]
    path.write_text("\n".join(lines) + "\n")


def assert_one_line(proc, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and all(f in lines[0] for f in fragments), lines[0]


@pytest.mark.slow
def test_a_csv_with_one_positive_says_what_each_split_needs_before_any_run(tmp_path):
    write_csv(tmp_path / "one.csv", positives=1)
    proc = run_cli("source=csv", f"source.path={tmp_path / 'one.csv'}", f"source.cache_dir={tmp_path / 'cache'}", cwd=tmp_path)
    assert_one_line(proc, "holds 1 positive row(s) of 600", "each split (train, val, test) needs at least 2 positive", "about 10 positives in all")
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_the_server_refuses_to_start_on_such_a_file(tmp_path):
    write_csv(tmp_path / "one.csv", positives=1)
    proc = run_cli("source=csv", f"source.path={tmp_path / 'one.csv'}", f"source.cache_dir={tmp_path / 'cache'}", cwd=tmp_path, module="imbalance.serve")
    assert_one_line(proc, "holds 1 positive row(s) of 600", "each split (train, val, test) needs at least 2 positive")
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_kaggle_sample_n_of_data_with_one_positive_is_one_line(tmp_path):
    from imbalance.data.creditcard_like import write_creditcard_like

    path = write_creditcard_like(tmp_path / "creditcard.csv", rows=3000, frauds=1, duplicates=0, seed=1)
    proc = run_cli("source=kaggle", f"source.path={path}", "source.sample_n=1000", f"source.cache_dir={tmp_path / 'cache'}", cwd=tmp_path)
    assert_one_line(proc, "source.sample_n=1000", "holds 1 positive row(s) of 3000", "needs at least 2 positives")
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["one-positive", "missing-value"])
def test_a_sweep_whose_data_file_fails_its_checks_creates_no_parent_run(tmp_path, problem):
    path = tmp_path / "data.csv"
    write_csv(path, positives=1 if problem == "one-positive" else 30)
    if problem == "missing-value":
        lines = path.read_text().splitlines()
        lines[5] = "," + lines[5].split(",", 1)[1]
        path.write_text("\n".join(lines) + "\n")
    proc = run_cli("-m", "source=csv", f"source.path={path}", f"source.cache_dir={tmp_path / 'cache'}", "seed=0,1", cwd=tmp_path)
    assert_one_line(proc, "needs at least 2 positive" if problem == "one-positive" else "missing values in x1")
    assert "sweep:" not in proc.stdout and not (tmp_path / "mlruns").exists()


@pytest.mark.slow
def test_a_value_of_1e308_is_one_line_without_numpy_warnings(tmp_path):
    # seed=1 puts the one huge row outside train: the scaler fits, the float32 cast overflows
    write_csv(tmp_path / "huge.csv", positives=40, huge_rows=1)
    proc = run_cli("source=csv", f"source.path={tmp_path / 'huge.csv'}", f"source.cache_dir={tmp_path / 'cache'}", "seed=1", cwd=tmp_path)
    assert_one_line(proc, "feature(s) x1 do not fit float32 after scaling")
    assert "RuntimeWarning" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("text", [f"a,b\n1,2\n3,4,5,{SECRET}\n", f"root:x:0:0:{SECRET}:/root:/bin/bash\nbin:x:2:2:bin:/bin:/usr/sbin/nologin\nsys:x:3:3:sys:/dev:/usr/sbin/nologin\n"],
                         ids=["ragged-row", "not-a-csv"])
def test_errors_about_a_file_never_echo_its_contents(tmp_path, text):
    (tmp_path / "file").write_text(text)
    proc = run_cli("source=csv", f"source.path={tmp_path / 'file'}", f"source.cache_dir={tmp_path / 'cache'}", "mlflow.enabled=false", cwd=tmp_path)
    assert_one_line(proc)
    assert SECRET not in proc.stderr + proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("seeds", ["seed=4294967296", "seed=-1", "seed=0,4294967296"])
def test_seeds_outside_the_schema_are_one_line_everywhere_on_the_command_line(tmp_path, seeds):
    proc = run_cli(*(["-m"] if "," in seeds else []), seeds, "mlflow.enabled=false", cwd=tmp_path)
    assert_one_line(proc, "seed must be in [0, 4294967295]")


# ------------------------------------------------------------------------- trainer rows
@pytest.fixture
def row():
    from imbalance.tasks import load_taskset

    return load_taskset("lite")[0]


@pytest.mark.parametrize("change", [{"tau": 0.0}, {"seed": 5}, {"max_steps": 100}, {"conv_steps": 1000}, {"source": "csv"}, {"oracle_f1": 0.1},
                                    {"version": "v9"}, {"source_settings": {"name": "csv", "path": "/etc/passwd"}}],
                         ids=lambda change: next(iter(change)))
def test_a_row_with_a_task_set_id_must_be_that_task(row, change):
    from imbalance.integrations.episode import TaskEpisode

    key = next(iter(change))
    with pytest.raises(UsageError, match=f"task_id={row['task_id']} but its {key} differs") as caught:
        TaskEpisode({**row, **change}, FAST)
    assert "\n" not in str(caught.value)


def test_a_row_compared_field_by_field_with_what_the_task_set_generates(row):
    """Every key task_row returns is compared (a later version's extra keys too), and the None a
    columnar dataset fills into keys other rows have is no difference."""
    from imbalance.tasks import checked_row, task_row

    assert checked_row({"task_id": row["task_id"]}) == task_row(row["task_id"])
    padded = {**row, "source_settings": {**row["source_settings"], "path": None}, "prompt": "extra columns are not the task's"}
    assert checked_row(padded) == task_row(row["task_id"])
    assert checked_row({**row, "seed": np.int64(row["seed"]), "max_steps": float(row["max_steps"])}) == task_row(row["task_id"])  # a DataFrame's types
    generated = {**task_row(row["task_id"]), "dataset": "yeast4"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("imbalance.tasks.configs.task_row", lambda task_id: generated)
        with pytest.raises(UsageError, match="its dataset differs"):
            checked_row({**row, "dataset": "abalone19"})
    for unknown in ("v1-eval-9999", "v7-eval-0000", "mine"):
        with pytest.raises(UsageError):
            checked_row({**row, "task_id": unknown})


def test_a_row_without_a_task_id_is_a_custom_task_never_tagged_with_a_task_set_id(row, tmp_path):
    from imbalance.integrations.episode import TaskEpisode

    custom = {k: v for k, v in row.items() if k not in ("task_id", "version")}
    custom["source_settings"] = {"name": "synthetic", "n_train": 1500, "n_val": 600, "n_test": 600, "minority_frac": 0.05}
    episode = TaskEpisode(custom, FAST)
    assert episode.config.task_id is None and episode.row["version"] == "custom"
    episode.call("train", {"epochs": 1})
    outcome = episode.finish()
    assert outcome["task_id"] is None and outcome["custom_task"] is True and outcome["termination_reason"] == "auto_submitted"


@pytest.mark.parametrize("change, message", [
    ({"seed": 2**70}, "seed must be in [0, 4294967295]"),
    ({"seed": "3"}, "seed must be an integer"),
    ({"tau": 7}, "tau must be in [0, 1]"),
    ({"source_settings": {"name": "synthetic", "evil": 1}}, "'evil' is not a setting of source=synthetic"),
    ({"source_settings": {"name": "nope"}}, "source_settings.name must be one of"),
    ({"source_settings": {"name": "synthetic", "n_train": "many"}}, "source_settings do not fit source=synthetic"),
])
def test_a_custom_row_is_checked_like_any_configuration(row, change, message):
    from imbalance.integrations.episode import TaskEpisode

    custom = {k: v for k, v in {**row, **change}.items() if k != "task_id"}
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TaskEpisode(custom, FAST)
