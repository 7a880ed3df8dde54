"""Faults, concurrency and crash safety: every episode ends recorded, none is lost or left half-written."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from imbalance.experiment.runner import run_episode
from tests.fake_llm import FakeLLM, reply
from tests.helpers import TINY, check_summary, compose_config, local_uri, run_cli, runs_of

KEY = "sk-marker-faults-5e2d"
FAST = {"retry-after-ms": "1"}
FAULTS = {
    "429": {"status": 429, "headers": {"retry-after": "0.01"}, "json": {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}},
    "500": {"status": 500, "headers": FAST, "json": {"type": "error", "error": {"type": "api_error", "message": "boom"}}},
    "529": {"status": 529, "headers": FAST, "json": {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}},
    "overloaded-body": {"error_body": "overloaded_error"},
    "dropped": {"drop": True},
    "timeout": {"delay": 2.5},  # well past agent.timeout_s, so a loaded machine cannot blur the two
    "malformed-json": {"body": "{not json"},
}
SCRIPT = [reply(("imbalance_start", {})), reply(("train", {"epochs": 2}), ("sweep_thresholds", {})), reply(("submit_answer", {}))]
UNPARSEABLE = {"anthropic": "not an object", "openai": "{\"epochs\": "}


def llm_run(tmp_path, monkeypatch, api: str, script: list[dict]):
    """One LLM episode in-process with MLflow on; returns (client, run, tool call records)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FakeLLM(script) as server:
        url = server.url if api == "anthropic" else server.openai_url
        summary = run_episode(compose_config([*TINY, f"agent={api}", f"agent.base_url={url}", "agent.max_retries=1", "agent.timeout_s=1"]))
    client = MlflowClient(local_uri(tmp_path))
    run = client.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"config.yaml", "tool_calls.json", "transcript.json"}
    records = json.loads(open(client.download_artifacts(run.info.run_id, "tool_calls.json", str(tmp_path / "dl"))).read())
    assert len(records) == run.data.metrics["tool_calls"]
    return client, run, records


@pytest.mark.slow
@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_transient_api_faults_of_every_kind_leave_a_completed_episode(tmp_path, monkeypatch, api):
    """Each fault once, between normal turns, after a tool call with unparseable input."""
    script = [reply(("train", UNPARSEABLE[api]))]
    for fault in FAULTS.values():
        script += [fault, reply(("eval_on_val", {}))]
    client, run, records = llm_run(tmp_path, monkeypatch, api, [*script, *SCRIPT])
    assert run.data.tags["termination_reason"] == "submitted" and "test_f1" in run.data.metrics
    assert records[0]["invalid"] and records[0]["error"]["error"] == "invalid_arguments"
    assert [r["tool"] for r in records].count("eval_on_val") == len(FAULTS)


@pytest.mark.slow
@pytest.mark.parametrize("api", ["anthropic", "openai"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_persistent_api_faults_end_in_error_with_a_complete_run(tmp_path, monkeypatch, api, fault):
    client, run, records = llm_run(tmp_path, monkeypatch, api, [reply(("train", UNPARSEABLE[api])), *[FAULTS[fault]] * 4])
    assert run.data.tags["termination_reason"] == "error" and run.data.tags["error_message"]
    assert "test_f1" not in run.data.metrics and "passed" not in run.data.metrics  # not counted as a fail
    assert len(records) == 1 and records[0]["invalid"]


@pytest.mark.slow
def test_twenty_parallel_episodes_on_a_fresh_sqlite_store(tmp_path):
    proc = run_cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY, "seed=range(0,20)", cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, parents, episodes = runs_of(local_uri(tmp_path))
    assert len(parents) == 1 and len(episodes) == 20
    assert sorted(int(e.data.params["seed"]) for e in episodes) == list(range(20))
    assert all(e.info.status == "FINISHED" and len(client.get_metric_history(e.info.run_id, "val_f1")) == e.data.metrics["tool_calls"] for e in episodes)
    check_summary(client.get_run(parents[0].info.run_id), episodes, proc.stdout)


@pytest.mark.slow
def test_twenty_parallel_episodes_against_a_tracking_server(tmp_path, mlflow_server):
    # credentials in the URI (the server ignores them) must be masked wherever the project writes the URI
    password = "pw-marker-31c9"
    with_password = mlflow_server.replace("http://", f"http://alice:{password}@")
    proc = run_cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY, "seed=range(0,20)",
                   f"mlflow.tracking_uri={with_password}", "mlflow.experiment_name=concurrency", cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, parents, episodes = runs_of(mlflow_server, "concurrency")
    assert len(parents) == 1 and len(episodes) == 20
    assert sorted(int(e.data.params["seed"]) for e in episodes) == list(range(20))
    assert all(e.info.status == "FINISHED" and len(client.get_metric_history(e.info.run_id, "val_f1")) == e.data.metrics["tool_calls"] for e in episodes)
    check_summary(client.get_run(parents[0].info.run_id), episodes, proc.stdout)
    assert password not in parents[0].data.tags["overrides"] and "alice:***@" in parents[0].data.tags["overrides"]
    ours = [line for line in (proc.stdout + proc.stderr).splitlines() if "[HYDRA]" not in line]  # Hydra echoes the command as typed
    assert not [line for line in ours if password in line] and any("alice:***@" in line for line in ours)
    saved = open(client.download_artifacts(episodes[0].info.run_id, "config.yaml", str(tmp_path / "dl"))).read()
    assert f"alice:***@{mlflow_server.removeprefix('http://')}" in saved and password not in saved


def _statuses(db) -> list[tuple[str, str]]:
    """(run_uuid, status) straight from the store's table, without creating anything."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT run_uuid, status FROM runs").fetchall()
    except sqlite3.Error:
        return []


@pytest.mark.slow
def test_a_sweep_killed_mid_episode_resumes_with_one_finished_run_per_configuration(tmp_path):
    args = [sys.executable, "-m", "imbalance.run", "-m", "seed=range(0,4)", "source.n_train=6000", "source.n_val=2000", "source.n_test=2000"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    db = tmp_path / "mlruns" / "mlflow.db"
    deadline = time.monotonic() + 300
    try:
        while True:  # parent RUNNING + one FINISHED child + the next child RUNNING: mid-episode
            statuses = [s for _, s in _statuses(db)]
            if statuses.count("FINISHED") >= 1 and statuses.count("RUNNING") >= 2:
                break
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, statuses
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert [s for _, s in _statuses(db)].count("RUNNING") >= 2  # what SIGKILL leaves behind

    resumed = run_cli("-m", "seed=range(0,4)", "source.n_train=6000", "source.n_val=2000", "source.n_test=2000", "resume=true", cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    client = MlflowClient(local_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("imbalance").experiment_id], max_results=1000)
    episodes = [r for r in runs if r.data.tags.get("sweep") != "true"]
    finished = [r for r in episodes if r.info.status == "FINISHED"]
    assert sorted(r.data.params["seed"] for r in finished) == ["0", "1", "2", "3"]  # exactly one each
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert len(killed) >= 2 and all("died" in r.data.tags["error_message"] for r in killed)  # the episode and its sweep
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert "already finished as run" in resumed.stdout


@pytest.mark.slow
def test_same_configuration_same_episode_to_the_last_digit(tmp_path):
    outputs = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        proc = run_cli(*TINY, "agent=random", "seed=7", cwd=tmp_path / folder)
        assert proc.returncode == 0, proc.stderr[-3000:]
        client, _, (run,) = runs_of(local_uri(tmp_path / folder))
        records = json.loads(open(client.download_artifacts(run.info.run_id, "tool_calls.json", str(tmp_path / folder / "dl"))).read())
        outputs.append((records, run.data.metrics["test_f1"]))
    assert outputs[0][0] == outputs[1][0] and outputs[0][1] == outputs[1][1]
