"""End to end through the command users type: `python -m imbalance.run ...`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.helpers import DEFAULT_TAU, cli_env, run_cli, seed_kagglehub_cache

PER_CALL = {"val_f1", "val_precision", "val_recall", "threshold", "budget_remaining"}
FINAL = {"test_f1", "test_precision", "test_recall", "passed", "steps_used", "tool_calls", "invalid_tool_calls", "wall_seconds",
         "time_data_seconds", "time_training_seconds", "time_evaluation_seconds", "time_grading_seconds"}


def only_run(workdir):
    client = MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("imbalance")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


@pytest.mark.slow
def test_default_episode_leaves_everything_the_contract_lists(tmp_path):
    """The README's first command, with nothing set: offline, embedded store, under a minute."""
    proc = run_cli(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "imbalance_start()" in out and "submit_answer()" in out
    assert "TEST F1" in out and ("PASS" in out or "FAIL" in out)
    assert "mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db" in out
    assert "LeafSpec" not in proc.stderr and "Traceback" not in proc.stderr

    client, run = only_run(tmp_path)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["tau"] == str(DEFAULT_TAU) and params["seed"] == "0" and params["budget.max_steps"] == "3"
    assert (params["source.name"], params["agent.name"], params["model.name"]) == ("synthetic", "heuristic", "mlp")
    assert not any(k.startswith("mlflow.") for k in params)
    metrics = run.data.metrics
    assert FINAL <= set(metrics)
    assert metrics["passed"] == float(metrics["test_f1"] >= DEFAULT_TAU)
    tags = run.data.tags
    assert tags["termination_reason"] == "submitted" and tags["agent"] == "heuristic" and tags["source"] == "synthetic"

    records = json.loads((tmp_path / "mlruns").joinpath(*_artifact_path(run, "tool_calls.json")).read_text())
    assert metrics["tool_calls"] == len(records) and [r["index"] for r in records] == list(range(len(records)))
    assert records[-1]["tool"] == "submit_answer"
    assert all({"tool", "arguments", "paid", "charged", "invalid"} <= set(r) and ("result" in r or "error" in r) for r in records)
    assert metrics["steps_used"] == sum(r["charged"] for r in records)
    for key in PER_CALL:  # one value per tool call, at step = call index
        history = client.get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in history) == list(range(len(records))), key
    val_f1 = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_f1")}
    sweeps = [r for r in records if r["tool"] == "sweep_thresholds"]
    assert val_f1[sweeps[-1]["index"]] == pytest.approx(sweeps[-1]["result"]["val_f1"], abs=1e-6)

    config = yaml.safe_load((tmp_path / "mlruns").joinpath(*_artifact_path(run, "config.yaml")).read_text())
    assert config["tau"] == DEFAULT_TAU and config["source"]["n_train"] == 20000 and config["agent"]["name"] == "heuristic"


def _artifact_path(run, name):
    # file:///.../mlruns/artifacts/<exp>/<run>/artifacts -> parts below mlruns/
    uri = run.info.artifact_uri
    assert uri.startswith("file://")
    tail = uri.split("/mlruns/", 1)[1]
    return [*tail.split("/"), name]


@pytest.mark.slow
def test_kaggle_source_from_a_path_and_the_random_agent(tmp_path, creditcard_csv):
    proc = run_cli("source=kaggle", "tau=0.75", f"source.path={creditcard_csv}", f"source.cache_dir={tmp_path / 'cache'}", "agent=random", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "credit-card fraud" in proc.stdout
    _, run = only_run(tmp_path)
    assert run.data.params["source.name"] == "kaggle" and run.data.tags["agent"] == "random"
    assert run.data.params["tau"] == "0.75" and "test_f1" in run.data.metrics


@pytest.mark.slow
def test_kaggle_source_through_a_seeded_kagglehub_cache(tmp_path, creditcard_csv):
    seed_kagglehub_cache(tmp_path / "kh", creditcard_csv)
    env = cli_env(KAGGLEHUB_CACHE=str(tmp_path / "kh"), HTTPS_PROXY="http://127.0.0.1:9")
    proc = run_cli("source=kaggle", "tau=0.75", f"source.cache_dir={tmp_path / 'cache'}", "mlflow.enabled=false", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "5975 rows after removing exact duplicates" in proc.stdout
    assert not (tmp_path / "mlruns").exists()  # mlflow.enabled=false logs nothing


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, code, message",
    [
        (["source=nope"], 1, "Could not find 'source/nope'"),
        (["tau=abc"], 1, "could not be converted to Float"),
        (["tau=1.5"], 2, "tau must be in [0, 1]; got 1.5"),
        (["budget.max_steps=-2"], 2, "budget.max_steps must be in"),
        (["seed=" + "9" * 400], 2, "seed must be in [0, 4294967295]; got 9999"),  # beyond float range
        (["source=kaggle", "source.path=/nonexistent/creditcard.csv"], 2, "no such file"),
        (["source=kaggle"], 2, "source.path=/path/to/creditcard.csv"),
        (["source=csv"], 2, "source=csv needs a file"),
        (["+source.n_trian=100"], 2, "source.n_trian is not a setting; did you mean source.n_train?"),  # Hydra's own hint leads here
        (["~agent"], 2, "no agent chosen; pick one of heuristic"),
        (["model.seed=-3"], 2, "e.g. model.seed=0"),  # the example is typed: 0.0 would not compose
        (["model.hidden=[]"], 2, "use model=logreg"),
        (["resume=true", "mlflow.enabled=false"], 2, "needs mlflow.enabled=true"),
        (["source.n_train=10000000", "source.n_val=10000000", "source.n_test=10000000", "source.n_features=1000"], 2, "GiB"),
        (["mlflow.tracking_uri=foo://bar"], 2, "the tracking URI (mlflow.tracking_uri, --tracking-uri) must be"),
        (["mlflow.tracking_uri=sqlite:///"], 2, "an in-memory database would lose the run"),
        (["mlflow.tracking_uri=http://127.0.0.1:9"], 2, "cannot reach the MLflow tracking server"),
        (["mlflow.experiment_name=' '"], 2, "mlflow.experiment_name must not be empty"),
        (["agent=anthropic", "agent.base_url=notaurl"], 2, "agent.base_url must be an http(s) URL"),
        (["-m", "tau=0.5,2"], 2, "tau must be in [0, 1]; got 2.0"),  # checked before the first job starts
    ],
)
def test_bad_input_exits_with_a_clear_line_and_no_traceback(tmp_path, args, code, message):
    env = cli_env(KAGGLEHUB_CACHE=str(tmp_path / "empty-cache"), HTTPS_PROXY="http://127.0.0.1:9")
    proc = run_cli(*args, cwd=tmp_path, env=env)
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    if code == 2:
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "mlruns").exists()  # no half-made run for bad input


@pytest.mark.slow
def test_csv_source_end_to_end_and_files_it_refuses(tmp_path):
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.05).astype(int)
    X = rng.normal(size=(3000, 3)) + 1.5 * y[:, None]
    rows = ["x1,x2,x3,is_fraud", *(f"{a:.5f},{b:.5f},{c:.5f},{'yes' if t else 'no'}" for (a, b, c), t in zip(X, y))]
    (tmp_path / "ok.csv").write_text("\n".join(rows) + "\n")
    proc = run_cli("source=csv", f"source.path={tmp_path / 'ok.csv'}", "source.label=is_fraud", f"source.cache_dir={tmp_path / 'cache'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, run = only_run(tmp_path)
    assert run.data.params["source.name"] == "csv" and run.data.params["source.label"] == "is_fraud" and "test_f1" in run.data.metrics

    bad = {"inf.csv": "\n".join([rows[0], "inf,0,0,no", *rows[1:]]), "huge.csv": "\n".join([rows[0], *("1e308,0,0,no" for _ in range(50)), *rows[1:]])}
    (tmp_path / "folder").mkdir()
    for name, text in bad.items():
        (tmp_path / name).write_text(text + "\n")
    for path, message in [("inf.csv", "feature(s) x1 hold infinite values"), ("huge.csv", "feature(s) x1 hold values too large to standardise"),
                          ("folder", "is a folder; point it at the CSV file")]:
        proc = run_cli("source=csv", f"source.path={tmp_path / path}", "source.label=is_fraud", f"source.cache_dir={tmp_path / 'cache'}", "mlflow.enabled=false", cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, (path, proc.stderr[-2000:])


HEAVY = ("torch", "pytorch_lightning", "lightning", "mlflow", "sklearn", "imblearn", "anthropic", "openai", "ray",
         "verifiers", "trl", "transformers", "inspect_ai", "datasets", "openenv")  # the trainer integrations stay out of the runner


@pytest.mark.parametrize("args", [["--help"], ["tau=abc"], ["source=nope"]], ids=["help", "bad-type", "unknown-option"])
def test_help_and_bad_overrides_import_nothing_heavy(tmp_path, args):
    """Start-up stays fast: the heavy libraries load only once an episode really starts."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "imbalance.run", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "hydra" in imported and "imbalance" in imported  # the measurement saw the imports
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    if args == ["--help"]:
        assert proc.returncode == 0
        assert "source: benchmark, csv, kaggle, mixture, synthetic, synthetic_original" in proc.stdout and "agent: anthropic, heuristic, naive, openai, random, replay" in proc.stdout
        assert f"tau: {DEFAULT_TAU}" in proc.stdout and "schema/" not in proc.stdout
    else:
        assert proc.returncode == 1
