"""Many episodes: sweeps as parent + child runs, summaries, resume, rerun, parallel launchers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml
from mlflow.tracking import MlflowClient

from imbalance.analysis.stats import pass_at_k, pass_hat_k, wilson_interval
from tests.helpers import ROOT, cli_env, run_cli

TINY = ["source.n_train=1500", "source.n_val=600", "source.n_test=600", "budget.retrain_epochs=2", "budget.retrain_min_rows=0"]


def runs_of(uri: str, experiment: str = "imbalance"):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
    episodes = [r for r in runs if "termination_reason" in r.data.tags]
    return client, parents, episodes


def local_uri(workdir) -> str:
    return f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"


def check_summary(parent, children, output: str) -> None:
    """The parent's metrics and the printed block agree with the children."""
    graded = [c for c in children if c.data.tags["termination_reason"] != "error"]
    passed = sum(int(c.data.metrics["passed"]) for c in graded)
    m = parent.data.metrics
    assert (m["episodes"], m["passed"], m["failed"]) == (len(children), passed, len(graded) - passed)
    low, high = wilson_interval(passed, len(graded))
    assert m["pass_rate"] == pytest.approx(passed / len(graded)) and m["pass_rate_ci_low"] == pytest.approx(low)
    assert m["pass_rate_ci_high"] == pytest.approx(high)
    f1s = sorted(c.data.metrics["test_f1"] for c in graded)
    assert m["mean_test_f1"] == pytest.approx(sum(f1s) / len(f1s))
    assert f"Passed: {passed}/{len(graded)}" in output and f"Failed: {len(graded) - passed}" in output and "Pass Rate:" in output
    assert parent.info.status == "FINISHED"


@pytest.mark.slow
def test_multirun_is_one_parent_with_every_episode_a_child_and_a_summary(tmp_path):
    proc = run_cli("-m", *TINY, "agent=heuristic,random", "seed=0,1", "tau=0.3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, parents, episodes = runs_of(local_uri(tmp_path))
    assert len(parents) == 1 and len(episodes) == 4
    parent = client.get_run(parents[0].info.run_id)
    assert all(e.data.tags["mlflow.parentRunId"] == parent.info.run_id for e in episodes)
    assert "agent=heuristic,random" in parent.data.tags["overrides"]
    check_summary(parent, episodes, proc.stdout)
    progress = re.findall(r"\[job (\d)\] seed=(\d) (PASS|FAIL) TEST F1 ([0-9.]+) \| (\d)/4 done, running pass rate (\d)/(\d) \(\d+%\), 0 errors \| (\S+)", proc.stdout)
    assert [int(p[0]) for p in progress] == [0, 1, 2, 3]
    assert [int(p[4]) for p in progress] == [int(p[6]) for p in progress] == [1, 2, 3, 4]  # the running count grows with each episode
    urls = {e.info.run_id: f"http://127.0.0.1:5000/#/experiments/{e.info.experiment_id}/runs/{e.info.run_id}?workflowType=machine_learning" for e in episodes}
    assert sorted(p[7] for p in progress) == sorted(urls.values())  # each line names its own run's address
    assert f"python -m imbalance.report --sweep {parent.info.run_id}" in proc.stdout


@pytest.mark.slow
def test_trials_give_pass_at_k_and_pass_hat_k(tmp_path):
    proc = run_cli("-m", *TINY, "agent=random", "trial=range(0,3)", "seed=0,1", "tau=0.2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, parents, episodes = runs_of(local_uri(tmp_path))
    assert len(episodes) == 6 and len({e.data.tags["config_hash"] for e in episodes}) == 6
    groups: dict[str, list[int]] = {}
    for e in episodes:
        groups.setdefault(e.data.tags["task_hash"], []).append(int(e.data.metrics["passed"]))
    assert sorted(len(v) for v in groups.values()) == [3, 3]  # two tasks (seeds), three trials each
    # the random agent's choices differ between trials of one task
    assert len({e.data.tags["paid_actions"] for e in episodes}) > 2
    m = client.get_run(parents[0].info.run_id).data.metrics
    for k in (1, 2, 3):
        assert m[f"pass_at_{k}"] == pytest.approx(sum(pass_at_k(3, sum(v), k) for v in groups.values()) / 2)
        assert m[f"pass_hat_{k}"] == pytest.approx(sum(pass_hat_k(3, sum(v), k) for v in groups.values()) / 2)
    assert "pass@2" in proc.stdout and "pass^2" in proc.stdout


@pytest.mark.slow
def test_resume_runs_only_what_is_missing(tmp_path):
    first = run_cli("-m", *TINY, "seed=0,1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli("-m", *TINY, "seed=0,1,2,3", "resume=true", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("already finished as run") == 2
    client, parents, episodes = runs_of(local_uri(tmp_path))
    assert len(episodes) == 4  # no duplicates
    assert sorted(e.data.params["seed"] for e in episodes) == ["0", "1", "2", "3"]
    newest = max(parents, key=lambda p: p.info.start_time)
    children = [e for e in episodes if e.data.tags["mlflow.parentRunId"] == newest.info.run_id]
    assert len(children) == 4  # the resumed sweep covers every configuration
    check_summary(client.get_run(newest.info.run_id), children, second.stdout)
    assert sum("previous_parent_run_id" in e.data.tags for e in episodes) == 2


@pytest.mark.slow
def test_rerun_from_the_saved_config_reproduces_the_episode(tmp_path):
    assert run_cli(*TINY, "agent=random", "seed=4", cwd=tmp_path).returncode == 0
    client, _, (original,) = runs_of(local_uri(tmp_path))
    rid = original.info.run_id
    for extra in ([], ["--replay"]):
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "rerun.py"), rid, *extra], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    _, _, episodes = runs_of(local_uri(tmp_path))
    reruns = [e for e in episodes if e.data.tags.get("rerun_of") == rid]
    assert len(reruns) == 2 and {r.data.tags["agent"] for r in reruns} == {"random", "replay"}
    for rerun in reruns:
        assert rerun.data.metrics["test_f1"] == original.data.metrics["test_f1"]
        assert rerun.data.params["seed"] == "4" and rerun.data.params["source.n_train"] == "1500"
    # an override on top of the saved configuration
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "rerun.py"), rid, "--replay", "model.seed=123"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, _, episodes = runs_of(local_uri(tmp_path))
    (reseeded,) = [e for e in episodes if e.data.tags.get("rerun_of") == rid and e.data.params.get("model.seed") == "123"]
    assert reseeded.data.tags["agent"] == "replay" and reseeded.data.params["seed"] == "4"
    assert reseeded.data.tags["paid_actions"] == original.data.tags["paid_actions"]  # the same actions, other weights
    # Hydra's own way: the downloaded config.yaml as the primary config
    folder = tmp_path / "dl"
    client.download_artifacts(rid, "config.yaml", str(folder))
    assert yaml.safe_load((folder / "config.yaml").read_text())["seed"] == 4
    proc = run_cli("--config-path", str(folder), "--config-name", "config", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"TEST F1 {original.data.metrics['test_f1']:.4f}" in proc.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "rerun.py"), "feedc0ffee"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no run feedc0ffee" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["hydra/launcher=ray_local"]], ids=["joblib", "ray"])
def test_parallel_sweeps_log_every_episode_once_to_a_tracking_server(tmp_path, mlflow_server, launcher):
    experiment = f"parallel-{launcher[0].split('=')[1]}"
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's session files, not left in /tmp/ray; short for its socket paths
    try:
        proc = run_cli("-m", *launcher, *TINY, "seed=range(0,4)", f"mlflow.tracking_uri={mlflow_server}", f"mlflow.experiment_name={experiment}",
                       cwd=tmp_path, timeout=600, env=cli_env(RAY_TMPDIR=ray_tmp))
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, parents, episodes = runs_of(mlflow_server, experiment)
    assert len(parents) == 1 and len(episodes) == 4
    assert sorted(e.data.params["seed"] for e in episodes) == ["0", "1", "2", "3"]
    assert all(e.info.status == "FINISHED" and "test_f1" in e.data.metrics for e in episodes)
    assert {a.path for a in client.list_artifacts(episodes[0].info.run_id)} >= {"config.yaml", "tool_calls.json"}
    check_summary(client.get_run(parents[0].info.run_id), episodes, proc.stdout)
    assert not (tmp_path / "mlruns").exists()  # nothing went to the local store


@pytest.mark.slow
def test_history_reads_earlier_paid_action_sets_from_mlflow(tmp_path):
    from imbalance.tracking.history import paid_action_history

    proc = run_cli("-m", *TINY, "agent=random", "seed=0,1,2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, parents, episodes = runs_of(local_uri(tmp_path))
    expected = {e.data.tags["paid_actions"] for e in episodes}
    history = paid_action_history(local_uri(tmp_path), "imbalance")
    assert {json.dumps(h) for h in history} == expected
    assert paid_action_history(local_uri(tmp_path), "imbalance", parent_run_id="nope") == []
    assert paid_action_history(local_uri(tmp_path), "no-such-experiment") == []


def test_settings_added_later_leave_earlier_runs_hashes_alone_and_reward_is_not_a_task():
    import dataclasses

    from imbalance.experiment.runner import ADDED_LATER, config_hashes
    from tests.helpers import compose_config

    def made_before(tree: dict, prefix: str = "") -> dict:  # a run made before these settings existed
        return {k: made_before(v, f"{prefix}{k}.") if isinstance(v, dict) else v for k, v in tree.items() if f"{prefix}{k}" not in ADDED_LATER}

    resolved = dataclasses.asdict(compose_config([]))
    before = made_before(resolved)
    assert before["budget"] != resolved["budget"]  # a nested setting added later (budget.retrain_min_rows) counts too
    assert config_hashes(resolved) == config_hashes(before)  # resume finds it, pass@k groups with it
    config_hash, task_hash = config_hashes({**resolved, "reward": "normalized"})
    assert config_hash != config_hashes(resolved)[0] and task_hash == config_hashes(resolved)[1]
    config_hash, task_hash = config_hashes({**resolved, "task_id": "v1-eval-0003"})
    assert config_hash != config_hashes(resolved)[0] and task_hash != config_hashes(resolved)[1]
    assert config_hashes({**resolved, "trial": 1})[1] == config_hashes(resolved)[1]
