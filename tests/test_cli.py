"""End to end through the command users type: `python -m imbalance.run ...`."""

from __future__ import annotations

import json

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import DEFAULT_TAU, cli_env, run_cli
from tests.test_data import seed_kagglehub_cache

PER_CALL = {"val_f1", "val_precision", "val_recall", "threshold", "budget_remaining"}
FINAL = {"test_f1", "passed", "steps_used", "tool_calls", "invalid_tool_calls", "wall_seconds"}


def only_run(workdir):
    client = MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("imbalance")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


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


def test_kaggle_source_from_a_path_and_the_random_agent(tmp_path, creditcard_csv):
    proc = run_cli("source=kaggle", "tau=0.75", f"source.path={creditcard_csv}", f"source.cache_dir={tmp_path / 'cache'}", "agent=random", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "credit-card fraud" in proc.stdout
    _, run = only_run(tmp_path)
    assert run.data.params["source.name"] == "kaggle" and run.data.tags["agent"] == "random"
    assert run.data.params["tau"] == "0.75" and "test_f1" in run.data.metrics


def test_kaggle_source_through_a_seeded_kagglehub_cache(tmp_path, creditcard_csv):
    seed_kagglehub_cache(tmp_path / "kh", creditcard_csv)
    env = cli_env(KAGGLEHUB_CACHE=str(tmp_path / "kh"), HTTPS_PROXY="http://127.0.0.1:9")
    proc = run_cli("source=kaggle", "tau=0.75", f"source.cache_dir={tmp_path / 'cache'}", "mlflow.enabled=false", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "5975 rows after removing exact duplicates" in proc.stdout
    assert not (tmp_path / "mlruns").exists()  # mlflow.enabled=false logs nothing


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


HEAVY = ("torch", "pytorch_lightning", "lightning", "mlflow", "sklearn", "imblearn", "anthropic", "openai", "ray")


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
        assert "source: csv, kaggle, synthetic, synthetic_original" in proc.stdout and "agent: anthropic, heuristic, openai, random, replay" in proc.stdout
        assert f"tau: {DEFAULT_TAU}" in proc.stdout and "schema/" not in proc.stdout
    else:
        assert proc.returncode == 1
