"""What keeps many episodes in one process cheap (the concurrent launcher, the server): each
job composed once (jobs that differ in values derived from one: test_hydra_private.py), the
workers started while Hydra composes, fewer store writes per run, one artifact upload per
run, one HTTP client per SDK. The launcher and the server themselves are exercised end to
end in test_concurrent.py and test_server.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from imbalance.experiment.concurrent import ComposedOnce
from imbalance.tracking import episode_run
from imbalance.tracking.episode_run import EpisodeRun, many_episodes


class CountingLoader:
    """A config loader that counts compositions (Hydra's ConfigLoader has more methods; the
    wrapper must hand those through)."""

    def __init__(self):
        self.calls: list[tuple[str, ...]] = []

    def load_sweep_config(self, master_config, sweep_overrides):
        self.calls.append(tuple(sweep_overrides))
        return {"overrides": list(sweep_overrides), "n": len(self.calls)}

    def get_sources(self):
        return ["conf"]


def test_the_launcher_takes_the_jobs_the_sweeper_composed_to_validate_them():
    loader = CountingLoader()
    once = ComposedOnce(loader)
    validated = [once.load_sweep_config(None, ["seed=0"]), once.load_sweep_config(None, ["seed=1"])]  # the sweeper's check of a batch
    assert once.take(None, ["seed=1"]) is validated[1] and once.take(None, ["seed=0"]) is validated[0]
    assert loader.calls == [("seed=0",), ("seed=1",)]  # composed once each
    assert once.take(None, ["seed=0"])["n"] == 3  # taken already (or never validated): composed afresh
    assert once.get_sources() == ["conf"]


def test_a_pool_started_for_a_sweep_that_never_launched_leaves_no_worker_behind():
    """The launcher starts its workers before the jobs are composed; if the sweep stops there,
    the workers must not go on importing torch (seconds of CPU) after the process has exited."""
    import os
    import subprocess
    import sys

    code = ("import sys; from imbalance.experiment.sessions import SessionPool; "
            "print(*(w.process.pid for w in SessionPool(2, wait=False)._workers), flush=True)")
    # The workers share the child's stdout: read its line and wait for the child, not for the pipe.
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in child.stdout.readline().split()]
    assert child.wait(timeout=60) == 0 and len(pids) == 2
    alive = [pid for pid in pids if os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"]
    assert not alive, f"workers {alive} outlived the process that started them"


def written_steps(tmp_path, inside: bool) -> tuple[list[int], list[int]]:
    """Steps of `val_f1` in the store after two calls (the second 5 s after the last write),
    then after finish."""
    run = EpisodeRun(f"sqlite:///{tmp_path / 'mlflow.db'}", "many")
    run.start(run_name="r", params={"seed": 0}, tags={"agent": "test"})

    def steps() -> list[int]:
        return sorted(m.step for m in run.client.get_metric_history(run.run_id, "val_f1"))

    def play() -> list[int]:
        run.log_step(0, {"val_f1": 0.5})
        run._last_flush = time.monotonic() - 5  # later than FLUSH_SECONDS, sooner than MANY_EPISODES_FLUSH_SECONDS
        run.log_step(1, {"val_f1": 0.6})
        return steps()

    if inside:
        with many_episodes():
            live = play()
    else:
        live = play()
    run.finish(metrics={"test_f1": 0.7}, tags={"termination_reason": "submitted"}, artifacts={"notes.json": {"a": 1}})
    finished = run.client.get_run(run.run_id)
    assert finished.info.status == "FINISHED" and finished.data.metrics["test_f1"] == 0.7
    assert finished.data.tags["termination_reason"] == "submitted"
    return live, steps()


@pytest.mark.slow  # two fresh MLflow stores: their migrations take seconds
def test_runs_write_per_call_metrics_less_often_when_many_episodes_share_the_store(tmp_path):
    assert episode_run.FLUSH_SECONDS < 5 < episode_run.MANY_EPISODES_FLUSH_SECONDS
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    assert written_steps(tmp_path / "one", inside=False) == ([0, 1], [0, 1])  # live progress for a single episode
    assert written_steps(tmp_path / "many", inside=True) == ([], [0, 1])  # nothing lost: all written at finish
    assert episode_run._flush_seconds == [episode_run.FLUSH_SECONDS]  # the block restores the interval


def test_every_llm_episode_of_a_process_shares_one_http_client_per_sdk():
    from imbalance.agents.llm.anthropic_api import AnthropicBackend
    from imbalance.agents.llm.openai_api import OpenAIBackend

    common = {"api_key": "k", "model": "m", "base_url": "http://127.0.0.1:9", "max_tokens": 10, "temperature": None, "top_p": None,
              "max_retries": 0, "timeout_s": 5.0}
    a1, a2 = AnthropicBackend(**common, prompt_caching=False), AnthropicBackend(**{**common, "timeout_s": 7.0}, prompt_caching=False)
    o1, o2 = OpenAIBackend(**common, seed=0), OpenAIBackend(**common, seed=1)
    assert a1.client._client is a2.client._client and o1.client._client is o2.client._client
    assert a1.client._client is not o1.client._client
    assert (a1.client.timeout, a2.client.timeout) == (5.0, 7.0)  # timeouts stay per SDK client


@pytest.mark.slow  # a fresh MLflow store: its migrations take seconds
def test_a_runs_artifacts_go_up_together_as_text_and_indented_json(tmp_path):
    # One upload to the location create_run returned (not log_text per file, which reads the
    # run back from the store each time): every file arrives, a name with a folder included.
    run = EpisodeRun(f"sqlite:///{tmp_path / 'mlflow.db'}", "artifacts")
    run.start(run_name="r", params={"seed": 0}, tags={})
    run.finish(metrics={}, tags={}, artifacts={"config.yaml": "seed: 0\n", "tool_calls.json": [{"tool": "train"}], "agent/transcript.json": {"n": 1}})
    uploaded = {a.path for a in run.client.list_artifacts(run.run_id)} | {a.path for a in run.client.list_artifacts(run.run_id, "agent")}
    assert uploaded == {"config.yaml", "tool_calls.json", "agent", "agent/transcript.json"}
    read = {name: Path(run.client.download_artifacts(run.run_id, name, str(tmp_path / "dl"))).read_text() for name in ("config.yaml", "tool_calls.json", "agent/transcript.json")}
    assert read == {"config.yaml": "seed: 0\n", "tool_calls.json": '[\n {\n  "tool": "train"\n }\n]', "agent/transcript.json": '{\n "n": 1\n}'}
    assert run.client.get_run(run.run_id).info.status == "FINISHED"
