"""verifiers 0.4 (the real package, in .venv-verifiers): the id `imbalance` through verifiers'
own loader, and rollouts through its own evaluation entry point (`vf-eval`) against loopback
model servers: the scripted fake, and llama.cpp's server when the main venv is at hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from verifiers.v1.utils.loaders import default_harness_id, env_config_type, environment_class, load_taskset, taskset_class, taskset_config_type

from imbalance.env.tools import openai_tools
from imbalance.tasks import load_taskset as imbalance_rows
from tests.fake_llm import FakeLLM, reply
from tests.helpers import FAST, ROOT, replay_task, run_artifact, run_task

VF_EVAL = Path(sys.executable).with_name("vf-eval")
# An unknown tool and arguments that are not JSON (both invalid, free), a paid call, then a
# call after submit_answer in the same turn, which must not be played.
SCRIPT = [
    reply(("imbalance_start", {})),
    reply(("train", {"epochs": 2}), ("no_such_tool", {}), ("smote", '{"ratio": 0.1, "k": ')),
    reply(("smote", {"ratio": 0.1, "k": 5})),
    reply(("sweep_thresholds", {}), ("submit_answer", {}), ("train", {"epochs": 1})),
]
CALLS = [("imbalance_start", {}), ("train", {"epochs": 2}), ("no_such_tool", {}), ("smote", '{"ratio": 0.1, "k": '),
         ("smote", {"ratio": 0.1, "k": 5}), ("sweep_thresholds", {}), ("submit_answer", {})]


def vf_eval(base_url: str, out: Path, *args: str, overrides: list[str] = FAST, timeout: float = 600) -> list[dict]:
    """verifiers' own evaluation CLI on the id; the traces it wrote, in task order."""
    cmd = [str(VF_EVAL), "imbalance", "-m", "fake", "--client.base-url", base_url, "--client.api-key-var", "OPENAI_API_KEY",
           "--env.taskset.task.overrides", json.dumps(overrides), "--no-push", "--no-rich", "-o", str(out), "--run.name", "run", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=out.parent, env={**os.environ, "OPENAI_API_KEY": "local"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    episodes = [json.loads(line) for line in (out / "run" / "traces.jsonl").read_text().splitlines()]
    traces = [trace for episode in episodes for trace in episode["traces"]]
    return sorted(traces, key=lambda t: t["task"]["data"]["idx"])


def test_import_imbalance_loads_neither_verifiers_nor_torch():
    code = "import sys, imbalance; print(sorted(m for m in ('verifiers', 'torch', 'mlflow') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


@pytest.mark.parametrize("ident", ["imbalance", "someone/imbalance@0.1.0"])  # a Hub id names the same module
def test_the_id_resolves_with_verifiers_own_loader(ident):
    import verifiers.v1 as vf

    import imbalance

    assert taskset_class(ident) is imbalance.ImbalanceTaskset
    assert environment_class(ident) is imbalance.ImbalanceEnv and issubclass(imbalance.ImbalanceEnv, vf.SingleAgentEnv)
    assert default_harness_id(ident) == ident  # the id's own harness, not verifiers' bash
    # The harness runs no code: the local subprocess runtime is the default, not a remote sandbox.
    assert env_config_type(ident)().agent.runtime.type == "subprocess"


def test_the_tasks_are_the_task_set_rows_with_imbalance_runs_prompt():
    from imbalance.agents.llm.prompt import SYSTEM_PROMPT
    from imbalance.integrations.episode import row_prompts

    rows = imbalance_rows("lite")
    tasks = list(load_taskset(taskset_config_type("imbalance").model_validate({"id": "imbalance"})))
    assert [t.data.row for t in tasks] == rows and [t.key for t in tasks] == [t.data.id for t in tasks] == [r["task_id"] for r in rows]
    assert [[t.data.system_prompt, t.data.prompt] for t in tasks] == [[m["content"] for m in p] for p in row_prompts(rows)]
    assert tasks[0].data.system_prompt == SYSTEM_PROMPT
    config = taskset_config_type("imbalance").model_validate({"id": "imbalance", "split": "eval"})
    assert len(list(load_taskset(config))) == len(imbalance_rows("eval")) == 200


def comparable(messages: list[dict]) -> list[tuple]:
    """A request's conversation without what differs by construction (the fake's call ids)."""
    out = []
    for m in messages:
        calls = tuple((c["function"]["name"], c["function"]["arguments"]) for c in m.get("tool_calls") or [])
        out.append((m["role"], m.get("content") or None, calls))
    return out


def test_two_rollouts_through_vf_eval_play_and_grade_like_imbalance_run(tmp_path, monkeypatch):
    rows = imbalance_rows("lite")[:2]
    with FakeLLM(plan=SCRIPT) as fake:
        traces = vf_eval(fake.openai_url, tmp_path / "out", "-n", "2", "-r", "1")
        requests = list(fake.requests)
    assert [t["task"]["data"]["id"] for t in traces] == [r["task_id"] for r in rows]
    assert all(t["ok"] and t["stop_condition"] == "agent_completed" for t in traces), [t.get("errors") for t in traces]
    assert requests[0]["body"]["tools"] == openai_tools()  # native tools, the catalogue's schemas
    longest = {}  # the first tool result (the task summary) tells the rows apart -> the row's last request
    for r in requests:
        messages = r["body"]["messages"]
        if len(messages) > 3 and len(messages) > len(longest.get(messages[3]["content"], [])):
            longest[messages[3]["content"]] = messages

    monkeypatch.setenv("OPENAI_API_KEY", "local")
    for trace, row in zip(traces, rows):
        with FakeLLM(plan=SCRIPT) as fake:
            run = run_task(row, [*FAST, "agent=openai", f"agent.base_url={fake.openai_url}"], tmp_path)
            reference = fake.requests[-1]["body"]["messages"]
        m = run.data.metrics
        assert m["invalid_tool_calls"] == 2 and m["steps_used"] == 1 and run.data.tags["termination_reason"] == "submitted"
        assert trace["metrics"] == {"test_f1": m["test_f1"], "passed": m["passed"], "steps_used": m["steps_used"], "tool_calls": 7.0,
                                    "invalid_tool_calls": m["invalid_tool_calls"], "margin_to_tau": pytest.approx(m["test_f1"] - row["tau"]),
                                    "submitted": 1.0}
        assert trace["rewards"]["reward"]["score"] == m["reward"]
        assert comparable(longest[reference[3]["content"]]) == comparable(reference)  # the same conversation, reminders included
        assert len(run_artifact(tmp_path, run, "tool_calls.json")) == 7  # the call after submit_answer was not played


def test_a_group_of_8_rollouts_of_one_row_gets_one_reward_in_each_mode(tmp_path):
    """GRPO's premise: identical calls on one row, identical rewards; pass and normalized alike."""
    row = imbalance_rows("lite")[0]
    for mode in ("pass", "normalized"):
        overrides = [*FAST, f"reward={mode}"]
        with FakeLLM(plan=SCRIPT) as fake:
            traces = vf_eval(fake.openai_url, tmp_path / mode, "-n", "1", "-r", "8", overrides=overrides)
        run = replay_task(row, CALLS, overrides, tmp_path)
        assert len(traces) == 8
        (reward,) = {t["rewards"]["reward"]["score"] for t in traces}
        assert reward == pytest.approx(run.data.metrics["reward"])
        assert {t["metrics"]["test_f1"] for t in traces} == {run.data.metrics["test_f1"]}


MAIN_PYTHON = os.environ.get("IMBALANCE_MAIN_PYTHON")  # the main venv, which holds llama.cpp's server and the model


@pytest.mark.skipif(not MAIN_PYTHON and not os.environ.get("CI"), reason="llama.cpp's server lives in the main venv: run through tests/test_verifiers_v1_venv.py")
def test_a_rollout_against_llama_cpps_server(tmp_path):
    from tests.test_llama_server import ToolPicker

    log = tmp_path / "llama.log"
    port = free_port()
    assert MAIN_PYTHON, "CI runs this test through tests/test_verifiers_v1_venv.py, which names the main venv"
    server = subprocess.Popen([MAIN_PYTHON, str(ROOT / "scripts" / "serve_smollm2.py"), "--port", str(port)], stdout=log.open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/v1/models", server, log)
        # SmolLM2-135M rarely picks a tool itself: the proxy names each turn's tool, the model writes the call.
        with ToolPicker(f"http://127.0.0.1:{port}", ["imbalance_start", "submit_answer"]) as picker:
            (trace,) = vf_eval(picker.url, tmp_path / "out", "-n", "1", "-r", "1")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    assert [status for _, status, _ in picker.exchanges][:2] == [200, 200], picker.exchanges[-1]
    assert trace["ok"], trace.get("errors")
    metrics = trace["metrics"]
    assert metrics["tool_calls"] == 2 and metrics["submitted"] == 1.0 and metrics["steps_used"] == 0 and 0.0 <= metrics["test_f1"] <= 1.0
    # What went back to the server: the tool-calling turn with string content (llama.cpp refuses null).
    turns = [m for m in picker.exchanges[1][0]["messages"] if m["role"] == "assistant"]
    assert turns and all(isinstance(m["content"], str) and m["tool_calls"] for m in turns)


def free_port() -> int:
    from tests.helpers import free_port as port

    return port()


def wait_for(url: str, proc: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the llama.cpp server did not start: {log.read_text()[-3000:]}")
        time.sleep(0.5)


def test_the_readmes_vf_eval_line_is_a_valid_run(tmp_path):
    """The documented command, as typed (vf-eval resolves and validates it, then stops: --dry-run)."""
    import shlex

    (line,) = [x for x in (ROOT / "README.md").read_text().splitlines() if x.startswith(".venv-verifiers/bin/vf-eval imbalance")]
    argv = shlex.split(line)
    proc = subprocess.run([str(VF_EVAL), *argv[1:], "--dry-run"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "OPENAI_API_KEY": "unused"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (saved,) = tmp_path.glob("outputs/*/configs/resolved/eval.json")
    config = json.loads(saved.read_text())
    assert config["env"]["taskset"]["id"] == "imbalance" and config["env"]["agent"]["runtime"]["type"] == "subprocess"
    assert config["select"]["limit"] == 5 and config["num_rollouts"] == 2
