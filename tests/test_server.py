"""`python -m imbalance.serve`, driven by openenv-core's own client over loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from openenv.core.generic_client import GenericEnvClient

from tests.helpers import SMALL, cli_env, free_port, local_uri, run_cli, run_snippet, runs_of, snippet_using

pytestmark = pytest.mark.slow
TASK = [*SMALL, "model=logreg"]
EPISODE = [  # ten calls, malformed ones among them: each must be an invalid call, never a server error
    {"tool": "train", "arguments": {"epochs": 2}},
    {"tool": "eval_on_val"},
    {"tool": "no_such_tool", "arguments": {}},
    {"tool": "train", "args": {"epochs": 2}},
    {"bogus": True},
    {"tool": "smote", "arguments": {"ratio": "lots", "k": 5}},
    {"tool": "set_class_weights", "arguments": {"beta": 0.99}},
    {"tool": "sweep_thresholds", "arguments": {}},
    {"tool": "get_budget"},
    {"tool": "submit_answer"},
]


def start_server(folder: Path, *overrides: str):
    port = free_port()
    log = open(folder / f"serve-{port}.log", "w+")  # a file, not a pipe nobody reads: a full pipe would stall the server
    proc = subprocess.Popen([sys.executable, "-m", "imbalance.serve", f"serve.port={port}", *TASK, *overrides], cwd=folder, env=cli_env(),
                            stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    proc.log = log
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(log.read()[-3000:]) from None
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("the server did not start")


def stop_server(proc) -> str:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    proc.log.seek(0)
    return proc.log.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    proc, url = start_server(folder, "serve.max_sessions=64")
    yield folder, url
    output = stop_server(proc)
    assert "Traceback" not in output and "Exception in ASGI application" not in output, output[-3000:]


def play(url: str, seed: int) -> list:
    with GenericEnvClient(base_url=url, message_timeout_s=300).sync() as env:
        first = env.reset(seed=seed)
        return [first] + [env.step(action) for action in EPISODE]


def test_sixty_four_sessions_at_once_are_all_graded_and_recorded(server):
    folder, url = server
    results, errors = {}, []

    def session(i: int) -> None:
        try:
            results[i] = play(url, seed=i % 4)
        except Exception as exc:  # a refused or broken session fails the test below
            errors.append(f"{i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=session, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    assert errors == [] and len(results) == 64
    for steps in results.values():
        first, *rest, last = steps
        assert first.observation["tools"] and "tau" in first.observation["prompt"] and not first.done
        assert [s.observation["info"]["invalid"] for s in rest] == [False, False, True, True, True, True, False, False, False]
        assert last.done and last.reward in (0.0, 1.0) and last.reward == float(last.observation["info"]["passed"])
        assert 0.0 <= last.observation["info"]["test_f1"] <= 1.0
    by_seed = {}
    for i, steps in results.items():  # the same seed and calls: the same grade, whichever session
        by_seed.setdefault(i % 4, set()).add(steps[-1].observation["info"]["test_f1"])
    assert all(len(grades) == 1 for grades in by_seed.values())
    _, _, runs = runs_of(local_uri(folder))
    served = [r for r in runs if r.data.tags.get("agent") == "client"]
    assert len(served) == 64 and {r.info.status for r in served} == {"FINISHED"}
    assert all(r.data.metrics["invalid_tool_calls"] == 4 and r.data.metrics["tool_calls"] == 10 for r in served)


def test_a_served_episode_grades_as_the_same_calls_through_imbalance_run(server, tmp_path):
    _, url = server
    steps = play(url, seed=2)
    calls = [{"tool": str(a.get("tool")), "arguments": a.get("arguments")} for a in EPISODE]  # no tool: an unknown tool either way
    (tmp_path / "calls.json").write_text(json.dumps(calls))
    proc = run_cli("agent=replay", "agent.path=calls.json", "seed=2", *TASK, "mlflow.enabled=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"TEST F1 {steps[-1].observation['info']['test_f1']:.4f}" in proc.stdout


def test_one_session_over_the_limit_is_refused_at_once_and_an_idle_one_is_closed(tmp_path):
    # Long enough an idle timeout that session a is still alive, even on a busy machine, when
    # the third client knocks; the idle check itself comes after.
    proc, url = start_server(tmp_path, "serve.max_sessions=2", "serve.idle_timeout_s=10")
    try:
        a, b = GenericEnvClient(base_url=url).sync(), GenericEnvClient(base_url=url).sync()
        a.connect(), b.connect()
        a.reset(seed=0)
        b.reset(seed=1)
        b.step({"tool": "train", "arguments": {"epochs": 1}})
        started = time.monotonic()
        # What the server says to session 3, read off the socket: openenv-core's client, with
        # the websockets<17 that verifiers (via openai-agents) pins, sends its reset into the already closed
        # connection and shows only "received 1000 (OK)", never the refusal it was sent.
        from websockets.sync.client import connect

        with connect(url.replace("http://", "ws://") + "/ws", open_timeout=30) as raw:
            refusal = json.loads(raw.recv(timeout=30))
        assert refusal["type"] == "error" and refusal["data"]["code"] == "CAPACITY_REACHED", refusal
        assert (refusal["data"]["active_sessions"], refusal["data"]["max_sessions"]) == (2, 2)
        assert time.monotonic() - started < 10  # a refusal, not a hang
        time.sleep(16)  # both idle past the timeout; the reaper looks every 5 s
        after = a.step({"tool": "train", "arguments": {"epochs": 1}})
        assert after.done and after.observation["output"]["error"] == "no_episode" and "idle" in after.observation["output"]["message"]
        with GenericEnvClient(base_url=url).sync() as c:  # the slots were freed
            assert not c.reset(seed=2).done
        a.close(), b.close()
    finally:
        output = stop_server(proc)
    _, _, runs = runs_of(local_uri(tmp_path))
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert len(killed) >= 2 and all("session ended before the answer was submitted" in r.data.tags["error_message"] for r in killed)
    assert "RUNNING" not in {r.info.status for r in runs}
    assert "Traceback" not in output


@pytest.mark.parametrize("overrides, message", [
    (["serve.host=0.0.0.0"], "serve.host=0.0.0.0 would let anyone who reaches it play"),
    (["serve.port=0"], "serve.port must be in [1, 65535]"),
])
def test_bad_server_settings_are_one_line_before_listening(tmp_path, overrides, message):
    proc = subprocess.run([sys.executable, "-m", "imbalance.serve", *overrides], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("Error: ") and message in proc.stderr and "Traceback" not in proc.stderr


def test_a_port_in_use_is_named(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "imbalance.serve", f"serve.port={port}"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr


def test_allow_remote_starts_with_a_warning(tmp_path):
    proc, _ = start_server(tmp_path, "serve.host=0.0.0.0", "serve.allow_remote=true", "mlflow.enabled=false")
    output = stop_server(proc)
    assert "WARNING: sessions are unauthenticated" in output and "anyone who reaches port" in output


def test_the_readme_client_snippet_plays_an_episode(server, tmp_path):
    _, url = server
    proc = run_snippet(snippet_using("GenericEnvClient"), tmp_path, replace=(('"http://127.0.0.1:8000"', repr(url)),))
    assert proc.returncode == 0, proc.stderr[-3000:]
    reward, test_f1 = map(float, proc.stdout.split())
    assert reward in (0.0, 1.0) and 0.0 < test_f1 < 1.0


def test_the_task_api_lists_the_task_set_and_a_reset_plays_a_row(server):
    """OpenEnv 0.10's task API: rows over HTTP, and reset to one by split and index or by task_id."""
    from imbalance.tasks import load_taskset

    folder, url = server

    def call(path: str, body: dict | None = None):
        request = urllib.request.Request(url + path, json.dumps(body).encode() if body is not None else None, {"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, None

    assert call("/imbalance/splits") == (200, [{"name": "train", "type": "train", "num_tasks": 1000}, {"name": "eval", "type": "test", "num_tasks": 200},
                                                {"name": "lite", "type": "test", "num_tasks": 20}])
    assert call("/imbalance/tasks", {"split": "lite"}) == (200, {"tasks": load_taskset("lite"), "env_name": "imbalance"})
    assert call("/imbalance/num_tasks", {"split": "eval"}) == (200, {"num_tasks": 200})
    assert call("/imbalance/task", {"split": "eval", "index": 3})[1]["task"]["task_id"] == "v1-eval-0003"
    assert call("/imbalance/task_range", {"split": "train", "start": 2, "stop": 4})[1]["tasks"] == load_taskset("train")[2:4]
    assert call("/imbalance/task", {"split": "lite", "index": 20})[0] == 400

    with GenericEnvClient(base_url=url, message_timeout_s=300).sync() as env:
        by_index = env.reset(split="eval", index=3)
        assert env.state()["task_id"] == "v1-eval-0003"
        by_id = env.reset(task_id="v1-eval-0003")
        assert by_index.observation["output"] == by_id.observation["output"] and "error" not in by_id.observation["output"]
        seeded = env.reset(seed=3)
        assert seeded.observation["output"] != by_id.observation["output"] and env.state()["task_id"] is None
        for bad in ({"task_id": "v1-eval-9999"}, {"split": "lite", "index": 20}, {"split": "eval"}, {"task_id": "v1-eval-0003", "seed": 1}):
            assert env.reset(**bad).observation["output"]["error"] == "bad_task", bad
        assert env.step({"tool": "get_budget"}).observation["output"]["error"] == "no_episode"
    client, _, runs = runs_of(local_uri(folder))
    assert sum(1 for run in runs if run.data.tags.get("task_id") == "v1-eval-0003") == 2


def test_openenv_validate_accepts_the_running_server(server):
    _, url = server
    proc = subprocess.run([str(Path(sys.executable).with_name("openenv")), "validate", url, "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["passed"] is True and all(c["passed"] for c in report["criteria"]), report


def test_a_group_of_8_sessions_of_one_task_gets_one_reward(server):
    """A GRPO group through the wire: eight sessions of one row (by task_id), the same calls."""
    _, url = server
    finals, errors = [], []

    def session() -> None:
        try:
            with GenericEnvClient(base_url=url, message_timeout_s=600).sync() as env:
                assert "error" not in env.reset(task_id="v1-eval-0001").observation["output"]
                finals.append([env.step(action) for action in EPISODE][-1])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=session) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    assert errors == [] and len(finals) == 8 and all(f.done for f in finals)
    assert len({(f.reward, f.observation["info"]["test_f1"]) for f in finals}) == 1
