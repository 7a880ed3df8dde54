"""The versioned task set: frozen rows, the row -> config path, determinism, and the tags."""

from __future__ import annotations

import dataclasses

import pytest

from imbalance.config.schema import SyntheticSource
from imbalance.data.synthetic import bayes_optimal_f1
from imbalance.errors import UsageError
from imbalance.experiment.determinism import DeterminismError, check_task, fingerprint
from imbalance.tasks import RULES, load_taskset, row_mismatches, task_config, task_row
from tests.helpers import local_uri, run_cli, runs_of

FAST = ["model=logreg", "budget.retrain_epochs=2", "budget.retrain_min_rows=0"]  # keys a row leaves open: quick episodes of the real rows


def test_v1_rows_never_change():
    """v1 is frozen: these ids and seeds are what every copy of the project generates."""
    train, evaluation, lite = load_taskset("train", "v1"), load_taskset("eval", "v1"), load_taskset("lite", "v1")
    assert (len(train), len(evaluation), len(lite)) == (1000, 200, 20)
    pinned = {
        "v1-train-0000": 164368926, "v1-train-0001": 1744434158, "v1-train-0999": 1205215007,
        "v1-eval-0000": 87348399, "v1-eval-0001": 747521081, "v1-eval-0019": 1786948834, "v1-eval-0199": 2136169204,
    }
    rows = {r["task_id"]: r for r in train + evaluation}
    assert {task_id: rows[task_id]["seed"] for task_id in pinned} == pinned
    assert evaluation[0] == {
        "task_id": "v1-eval-0000", "version": "v1", "seed": 87348399, "source": "synthetic",
        "source_settings": {"name": "synthetic", "n_train": 20000, "n_val": 5000, "n_test": 5000, "n_features": 4, "separation": 1.2, "minority_frac": 0.03},
        "tau": 0.585, "max_steps": 3, "conv_steps": 20, "oracle_f1": 0.572647,
    }
    assert lite == evaluation[:20]
    assert load_taskset("eval") == evaluation  # v1 is the current version


def test_splits_have_unique_seeds_and_eval_never_meets_train():
    train = [r["seed"] for r in load_taskset("train")]
    evaluation = [r["seed"] for r in load_taskset("eval")]
    assert len(set(train)) == len(train) and len(set(evaluation)) == len(evaluation)
    assert not set(train) & set(evaluation)
    assert all(0 <= s < 2**31 for s in train + evaluation)


def test_the_v1_oracle_is_the_bayes_optimal_f1_of_its_source():
    rule = RULES["v1"]
    settings = {k: v for k, v in rule.source_settings.items() if k != "name"}
    assert rule.oracle_f1 == round(bayes_optimal_f1(SyntheticSource(**settings)), 6)


def test_rows_are_found_by_id_and_bad_ids_say_what_exists():
    assert task_row("v1-eval-0003") == load_taskset("eval")[3]
    assert task_row("v1-train-0999") == load_taskset("train")[999]
    for bad, message in [("v1-eval-0200", "200 rows"), ("v9-eval-0000", "unknown task-set version"), ("eval-3", "must look like"), ("v1-lite-0000", "must look like")]:
        with pytest.raises(UsageError, match=message):
            task_row(bad)
    with pytest.raises(UsageError, match="the splits are train, eval, lite"):
        load_taskset("test")


def test_a_row_becomes_the_configuration_it_names():
    row = load_taskset("lite")[2]
    config = task_config(row, [*FAST, "reward=normalized"])
    assert (config.seed, config.tau, config.task_id, config.oracle_f1) == (row["seed"], 0.585, "v1-eval-0002", 0.572647)
    assert (config.budget.max_steps, config.budget.conv_steps, config.model.name, config.reward) == (3, 20, "logreg", "normalized")
    assert dataclasses.asdict(config.source) == row["source_settings"]
    assert row_mismatches(config, row) == []
    assert row_mismatches(dataclasses.replace(config, seed=1), row) == ["seed"]
    # An override that contradicts the row is refused; one that agrees is fine (reruns pass them all).
    for override in (f"seed={row['seed'] + 1}", "tau=0.5", "source.n_train=3000", "source=synthetic_original", "budget.max_steps=5"):
        with pytest.raises(UsageError, match="task_id=v1-eval-0002 fixes"):
            task_config(row, [override])
    assert task_config(row, [f"seed={row['seed']}", "tau=0.585", "source=synthetic"]).seed == row["seed"]


@pytest.mark.slow
def test_the_determinism_check_passes_on_rows_and_catches_a_nondeterministic_build(monkeypatch):
    rows = load_taskset("lite")[:2]
    check_task(rows[0], FAST)
    first, other = fingerprint(rows[0], FAST), fingerprint(rows[1], FAST)
    assert all(first[key] != other[key] for key in ("train split", "hidden TEST split", "initial observation"))

    import imbalance.data.synthetic as synthetic

    real, draws = synthetic.generator, iter(range(1, 1000))
    monkeypatch.setattr(synthetic, "generator", lambda seed, purpose: real(seed + next(draws), purpose))
    with pytest.raises(DeterminismError, match="train split differs"):
        check_task(rows[0], FAST)


@pytest.mark.slow
def test_a_run_of_a_task_is_tagged_and_plays_its_row(tmp_path):
    row = load_taskset("lite")[1]
    result = run_cli(f"task_id={row['task_id']}", "agent=random", "agent.max_calls=3", *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"seed={row['seed']} tau=0.585 max_steps=3 task_id=v1-eval-0001" in result.stdout
    untagged = run_cli("agent=random", "agent.max_calls=3", "source.n_train=1500", "source.n_val=600", "source.n_test=600", *FAST, cwd=tmp_path)
    assert untagged.returncode == 0, untagged.stderr[-2000:]
    _, _, episodes = runs_of(local_uri(tmp_path))
    by_task = {e.data.tags.get("task_id"): e for e in episodes}
    run = by_task["v1-eval-0001"]
    assert run.data.params["seed"] == str(row["seed"]) and run.data.params["source.n_train"] == "20000"
    assert run.data.params["task_id"] == "v1-eval-0001"
    import imbalance

    for episode in episodes:
        assert episode.data.tags["imbalance.version"] == imbalance.__version__ and episode.data.tags["grader_version"] == "1"
        assert "reward" in episode.data.metrics and "baseline_test_f1" in episode.data.metrics
    assert set(by_task) == {"v1-eval-0001", None}


@pytest.mark.slow
def test_command_line_task_ids_are_checked_before_any_work(tmp_path):
    result = run_cli("task_id=v1-eval-0001", "seed=3", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == (
        "Error: task_id=v1-eval-0001 fixes seed (seed=747521081); drop the override of seed (or drop task_id to play another task)"
    )
    result = run_cli("-m", "task_id=v1-eval-0001,v1-eval-0900", cwd=tmp_path)
    assert result.returncode == 2 and "Error: task_id v1-eval-0900: v1's eval split has 200 rows" in result.stderr
    assert not (tmp_path / "mlruns").exists()
