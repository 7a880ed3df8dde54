"""`python -m imbalance.serve`, driven by openenv-core's own client over loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
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


def start_server(folder: Path, *overrides: str, env: dict[str, str] | None = None, token: str | None = None):
    port = free_port()
    log = open(folder / f"serve-{port}.log", "w+")  # a file, not a pipe nobody reads: a full pipe would stall the server
    proc = subprocess.Popen([sys.executable, "-m", "imbalance.serve", f"serve.port={port}", *TASK, *overrides], cwd=folder, env=env or cli_env(),
                            stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    proc.log = log
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request(f"{url}/health", token=token), timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(log.read()[-3000:]) from None
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("the server did not start")


def request(url: str, *, token: str | None = None, method: str = "GET", body: dict | None = None) -> urllib.request.Request:
    headers = {"content-type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    return urllib.request.Request(url, method=method, headers=headers, data=None if body is None else json.dumps(body).encode())


def status_of(req: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def stop_server(proc, sig: int = signal.SIGINT) -> str:
    os.killpg(proc.pid, sig)
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
    (["serve.host=0.0.0.0"], "serve.host=0.0.0.0 would let other machines reach the server"),
    (["serve.host=''"], "serve.host='' would let other machines reach the server"),  # uvicorn binds '' to every interface
    (["serve.host=::"], "serve.host=:: would let other machines reach the server"),
    (["serve.host=example.org"], "serve.host=example.org would let other machines reach"),  # a name may resolve anywhere
    (["serve.host=10.1.2.3"], "serve.host=10.1.2.3 would let other machines reach"),
    (["serve.port=0"], "serve.port must be in [1, 65535]"),
    (["serve.token_env=IMBALANCE_TEST_UNSET_TOKEN"], "the environment variable IMBALANCE_TEST_UNSET_TOKEN is not set or empty"),
    (["serve.token_env='not a name'"], "serve.token_env must name an environment variable"),
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


@pytest.mark.parametrize("host", ["0.0.0.0", "''"])
def test_allow_remote_starts_with_a_plain_warning(tmp_path, host):
    proc, _ = start_server(tmp_path, f"serve.host={host}", "serve.allow_remote=true", "mlflow.enabled=false")
    output = stop_server(proc)
    assert "WARNING: listening on every interface" in output and "reachable from other machines and unauthenticated" in output, output


def test_only_loopback_names_and_addresses_need_no_allow_remote():
    from imbalance.config.schema import ServeSettings
    from imbalance.errors import UsageError

    for host in ("localhost", "127.0.0.1", "127.8.9.10", "::1"):
        ServeSettings(host=host).check_combination("serve.")
    for host in ("", " ", "0.0.0.0", "::", "::ffff:0.0.0.0", "localhost.example.org", "192.168.1.2", "[::1]"):
        with pytest.raises(UsageError, match="would let other machines reach the server"):
            ServeSettings(host=host).check_combination("serve.")
        ServeSettings(host=host, allow_remote=True).check_combination("serve.")


TOKEN = "tok-marker-0123456789abcdef"


def ws_connect(url: str, token: str | None = None):
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {token}"} if token else None
    return connect(url.replace("http://", "ws://") + "/ws", additional_headers=headers, open_timeout=30)


def ask(conn, kind: str, data: dict | None = None) -> dict:
    conn.send(json.dumps({"type": kind, "data": data or {}}))
    return json.loads(conn.recv(timeout=300))


def test_with_a_token_every_http_and_websocket_request_needs_it(tmp_path, monkeypatch):
    from websockets.exceptions import InvalidStatus

    from tests.helpers import ROOT, python_snippets

    proc, url = start_server(tmp_path, "serve.token_env=IMBALANCE_TEST_TOKEN", env=cli_env(IMBALANCE_TEST_TOKEN=TOKEN), token=TOKEN)
    try:
        for path in ("/health", "/schema", "/metadata", "/docs"):
            assert [status_of(request(url + path)), status_of(request(url + path, token="wrong-token-0123456789")), status_of(request(url + path, token=TOKEN))] == [401, 401, 200], path
        for token in (None, "wrong-token-0123456789"):
            with pytest.raises(InvalidStatus) as refused:
                ws_connect(url, token)
            assert refused.value.response.status_code == 401
        with ws_connect(url, TOKEN) as conn:
            first = ask(conn, "reset", {"seed": 1})
            assert first["type"] == "observation" and "tau" in first["data"]["observation"]["prompt"]
            assert ask(conn, "step", {"tool": "train", "arguments": {"epochs": 1}})["data"]["observation"]["info"]["invalid"] is False
            done = ask(conn, "step", {"tool": "submit_answer"})["data"]
            assert done["done"] and done["reward"] in (0.0, 1.0)
        documented = {}  # the client docs/serving.md shows for a server with a token
        exec(next(code for _, _, code in python_snippets(ROOT / "docs" / "serving.md") if "def token_client" in code), documented)
        monkeypatch.setenv("IMBALANCE_TOKEN", TOKEN)
        with documented["token_client"](url).sync() as env:
            assert not env.reset(seed=2).done and env.step({"tool": "submit_answer"}).done
    finally:
        output = stop_server(proc)
    assert "every request must carry the token in $IMBALANCE_TEST_TOKEN" in output and TOKEN not in output
    assert "Traceback" not in output and "handshake" not in output, output[-3000:]
    client, _, runs = runs_of(local_uri(tmp_path))
    assert len(runs) == 2 and {r.data.params["serve.token_env"] for r in runs} == {"IMBALANCE_TEST_TOKEN"}
    assert TOKEN not in json.dumps([[r.data.params, r.data.tags] for r in runs])
    assert TOKEN not in open(client.download_artifacts(runs[0].info.run_id, "config.yaml", str(tmp_path / "dl"))).read()


def test_a_short_token_is_refused_before_listening(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "imbalance.serve", "serve.token_env=IMBALANCE_TEST_TOKEN"], cwd=tmp_path,
                          env=cli_env(IMBALANCE_TEST_TOKEN="short"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "use at least 16" in proc.stderr
    assert "short" not in proc.stderr  # the token itself is never printed


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


def run_statuses(folder: Path) -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(local_uri(folder))
    experiment = client.get_experiment_by_name("imbalance")
    return [r.info.status for r in client.search_runs([experiment.experiment_id], max_results=1000)] if experiment else []


def test_http_reset_step_and_state_are_not_served_so_nothing_outside_the_limit_builds_episodes(tmp_path):
    proc, url = start_server(tmp_path, "serve.max_sessions=1")
    try:
        with ws_connect(url) as conn:
            assert ask(conn, "reset", {"seed": 0})["type"] == "observation"
            refused = [status_of(request(f"{url}/reset", method="POST", body={"seed": 3})) for _ in range(8)]
            refused += [status_of(request(f"{url}/step", method="POST", body={"action": {"tool": "train", "arguments": {"epochs": 1}}})),
                        status_of(request(f"{url}/state"))]
            assert set(refused) <= {404, 405}, refused
            session = json.loads(urllib.request.urlopen(request(f"{url}/mcp", method="POST", body={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create", "params": {}})).read())
            assert "error" in session and "session_id" not in json.dumps(session)
            openapi = json.loads(urllib.request.urlopen(request(f"{url}/openapi.json")).read())
            assert not {"/reset", "/step", "/state"} & set(openapi["paths"]) and "/health" in openapi["paths"]
            assert run_statuses(tmp_path) == ["RUNNING"]  # the one WebSocket episode, no other
    finally:
        output = stop_server(proc)
    assert run_statuses(tmp_path) == ["KILLED"] and "Traceback" not in output


def test_a_reset_seed_outside_the_schema_is_one_line_and_plays_nothing(tmp_path):
    proc, url = start_server(tmp_path)
    try:
        with ws_connect(url) as conn:
            for seed in (2**70, -1, "3", True, 2.5):
                refused = ask(conn, "reset", {"seed": seed})
                assert refused["type"] == "error" and refused["data"]["message"].startswith("reset: seed must be an integer in [0, 4294967295]; got ")
                assert "\n" not in refused["data"]["message"]
            assert ask(conn, "reset", {"seed": 4294967295})["type"] == "observation"
    finally:
        stop_server(proc)
    assert run_statuses(tmp_path) == ["KILLED"]  # the one valid reset, ended by the shutdown


def test_a_reaped_session_stays_closed_and_its_slot_goes_to_the_next_client(tmp_path):
    proc, url = start_server(tmp_path, "serve.max_sessions=1", "serve.idle_timeout_s=2")
    try:
        a = ws_connect(url)
        assert ask(a, "reset", {"seed": 0})["type"] == "observation"
        deadline = time.monotonic() + 120  # the reaper looks every 5 s; this only bounds a broken server
        while run_statuses(tmp_path) != ["KILLED"]:
            assert time.monotonic() < deadline, run_statuses(tmp_path)
            time.sleep(0.5)
        revived = ask(a, "reset", {"seed": 1})
        assert revived["type"] == "error" and "this session was closed" in revived["data"]["message"] and "open a new connection" in revived["data"]["message"]
        step = ask(a, "step", {"tool": "train", "arguments": {"epochs": 1}})["data"]
        assert step["done"] and step["observation"]["output"]["error"] == "no_episode"
        assert run_statuses(tmp_path) == ["KILLED"]  # the refused reset started nothing
        with ws_connect(url) as b:  # the slot a held is free
            assert ask(b, "reset", {"seed": 2})["type"] == "observation"
        a.close()
    finally:
        output = stop_server(proc)
    assert sorted(run_statuses(tmp_path)) == ["KILLED", "KILLED"] and "Traceback" not in output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_the_server_ends_every_live_episode_killed(tmp_path, sig):
    proc, url = start_server(tmp_path, "serve.idle_timeout_s=null")
    conns = [ws_connect(url) for _ in range(3)]
    try:
        for i, conn in enumerate(conns):
            assert ask(conn, "reset", {"seed": i})["type"] == "observation"
        ask(conns[0], "step", {"tool": "train", "arguments": {"epochs": 1}})
        assert run_statuses(tmp_path) == ["RUNNING"] * 3
    finally:
        output = stop_server(proc, sig)
    assert proc.returncode is not None and run_statuses(tmp_path) == ["KILLED"] * 3, output[-3000:]
