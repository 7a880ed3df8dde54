"""`hydra/launcher=concurrent`: many episodes in flight in one process, the CPU work on a pool
of worker processes; identical episodes to the one-process path, faults kept to their episode,
Ctrl-C leaving nothing RUNNING."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imbalance.seeding import derive_seed
from tests.fake_llm import FakeLLM, reply
from tests.helpers import SMALL, cli_env, local_uri, run_cli, runs_of

pytestmark = pytest.mark.slow
CONCURRENT = ["hydra/launcher=concurrent", "hydra.launcher.max_concurrency=8"]
PLAN = [
    reply(("imbalance_start", {})),
    reply(("train", {"epochs": 2}), ("set_class_weights", {"beta": 0.99})),
    reply(("sweep_thresholds", {})),
    reply(("submit_answer", {})),
]


def episodes_by_seed(folder: Path) -> dict:
    client, _, episodes = runs_of(local_uri(folder))
    out = {}
    for run in episodes:
        calls = json.loads(Path(client.download_artifacts(run.info.run_id, "tool_calls.json", str(folder / "dl" / run.info.run_id))).read_text())
        key = (run.data.tags["agent"], int(run.data.params["seed"]))
        out[key] = (run.data.metrics.get("test_f1"), run.data.tags["termination_reason"], run.data.tags["paid_actions"], calls)
    return out


def test_concurrent_episodes_are_identical_to_one_process_episodes(tmp_path):
    sweep = ["-m", "agent=heuristic,random", "seed=range(0,4)", "model=logreg", *SMALL]
    for folder, extra in (("basic", []), ("concurrent", CONCURRENT)):
        (tmp_path / folder).mkdir()
        proc = run_cli(*sweep, *extra, cwd=tmp_path / folder, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
    basic, concurrent = episodes_by_seed(tmp_path / "basic"), episodes_by_seed(tmp_path / "concurrent")
    assert len(basic) == 8 and basic == concurrent  # TEST F1, how it ended, paid actions, every tool result


def test_a_failing_api_in_one_episode_leaves_the_others_alone(tmp_path):
    doomed = derive_seed(2, "agent/0")  # the openai backend sends the episode's agent seed

    def fault(body: dict):
        if body.get("seed") == doomed:
            return {"status": 500, "headers": {"retry-after-ms": "1"}, "json": {"error": {"type": "api_error", "message": "boom"}}}
        return None

    with FakeLLM(plan=PLAN, delay=0.3, fault=fault) as server:
        proc = run_cli("-m", "seed=range(0,6)", "agent=openai", f"agent.base_url={server.openai_url}", "agent.max_retries=1", "model=logreg",
                       *SMALL, *CONCURRENT, cwd=tmp_path, env=cli_env(OPENAI_API_KEY="k"), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    by_seed = episodes_by_seed(tmp_path)
    reasons = {seed: reason for (_, seed), (_, reason, _, _) in by_seed.items()}
    assert reasons == {0: "submitted", 1: "submitted", 2: "error", 3: "submitted", 4: "submitted", 5: "submitted"}
    assert all(paid == '[{"tool": "set_class_weights", "beta": 0.99}]' for (_, seed), (_, _, paid, _) in by_seed.items() if seed != 2)
    assert "Errors: 1 (infrastructure; not counted as failed)" in proc.stdout
    # Every finished episode's trace is whole: its spans are written in batches across episodes.
    client, _, runs = runs_of(local_uri(tmp_path))
    for run in runs:
        if run.data.tags["termination_reason"] == "submitted":
            (trace,) = client.search_traces(locations=[run.info.experiment_id], run_id=run.info.run_id)
            kinds = sorted(span.span_type for span in trace.data.spans)
            assert kinds == ["AGENT"] + ["CHAT_MODEL"] * 4 + ["TOOL"] * 5, (run.data.params["seed"], kinds)
    assert proc.stdout.count("[job ") == 6  # one progress line per episode, none interleaved
    assert all(line.startswith(("[job ", "sweep:", "launching", "==", "Passed", "Failed", "Pass Rate", "Errors", "TEST F1", "Per-group", ""))
               for line in proc.stdout.splitlines())


def test_ctrl_c_stops_a_concurrent_sweep_with_nothing_left_running(tmp_path):
    with FakeLLM(plan=PLAN, delay=1.0) as server:
        proc = subprocess.Popen([sys.executable, "-m", "imbalance.run", "-m", "seed=range(0,12)", "agent=openai", f"agent.base_url={server.openai_url}",
                                 "model=logreg", *SMALL, "hydra/launcher=concurrent", "hydra.launcher.max_concurrency=4"],
                                cwd=tmp_path, env=cli_env(OPENAI_API_KEY="k"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("[job "):
                break
        time.sleep(1.5)  # the next episodes are in flight, each waiting on a 1 s reply per turn
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    output = "".join(seen) + out
    assert proc.returncode == 130, err[-2000:]
    assert "Interrupted: " in output and "/12 episodes done; rerun the same command with resume=true" in output
    _, parents, episodes = runs_of(local_uri(tmp_path))
    statuses = [r.info.status for r in episodes]
    assert "RUNNING" not in statuses and "KILLED" in statuses and statuses.count("FINISHED") < 12
    assert [p.info.status for p in parents] == ["KILLED"]
