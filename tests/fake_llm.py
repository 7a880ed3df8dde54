"""A scripted LLM API server on 127.0.0.1: the network edge the real SDK clients talk to.

It speaks the Anthropic Messages API (POST /v1/messages) and OpenAI chat completions
(POST /v1/chat/completions). Each request takes the next step of the script; when the
script runs out it answers with a text-only turn. Like the real Messages API, it rejects a
request (HTTP 400) whose tool calls were not all answered in the next message.

Steps:
    reply(("train", {"epochs": 3}), ("sweep_thresholds", {}), text="...")  tool calls (any number)
    text("done")                                                          a text-only turn
    {"status": 429, "headers": {"retry-after": "0.01"}, "json": {...}}     an HTTP error
    {"drop": True}           close the connection without answering
    {"delay": 2.0, **step}   answer late (client timeouts)
    {"body": "not json"}     a 200 whose body is not JSON
    {"error_body": "overloaded_error"}   a 200 whose body is an API error object

`TurnScriptedLLM` picks the step by the conversation instead (its number of assistant turns so
far), so concurrent conversations (a trainer's rollouts) each follow the whole script.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 50}


def reply(*calls: tuple[str, Any], text: str = "Calling tools.") -> dict:
    return {"calls": list(calls), "text": text}


def text(message: str = "I am done.") -> dict:
    return {"calls": [], "text": message}


class FakeLLM:
    def __init__(self, script: list[dict]):
        self.script = list(script)
        self.requests: list[dict] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fake = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    def __enter__(self) -> FakeLLM:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_step(self, request: dict) -> dict:
        with self._lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else text()

    # ------------------------------------------------------------------ rendering
    def render(self, api: str, step: dict) -> dict:
        calls = [(f"call_{next(self._ids)}", name, args) for name, args in step["calls"]]
        if api == "anthropic":
            content: list[dict] = [{"type": "text", "text": step["text"]}] if step["text"] else []
            content += [{"type": "tool_use", "id": cid, "name": name, "input": args} for cid, name, args in calls]
            return {
                "id": f"msg_{next(self._ids)}", "type": "message", "role": "assistant", "model": "fake-claude",
                "content": content, "stop_reason": "tool_use" if calls else "end_turn", "stop_sequence": None, "usage": USAGE,
            }
        message: dict[str, Any] = {"role": "assistant", "content": step["text"] or None}
        if calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
                for cid, name, args in calls
            ]
        return {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": 1_700_000_000, "model": "fake-gpt",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": 150, "completion_tokens": 20, "total_tokens": 170, "prompt_tokens_details": {"cached_tokens": 50}},
        }


class TurnScriptedLLM(FakeLLM):
    def next_step(self, request: dict) -> dict:
        turn = sum(1 for m in request["body"].get("messages", []) if m.get("role") == "assistant")
        with self._lock:
            self.requests.append(request)
            return self.script[turn] if turn < len(self.script) else text()


def unanswered_tool_calls(api: str, body: dict) -> list[str]:
    """Tool call ids of assistant turns not answered in the following message(s)."""
    messages = body.get("messages", [])
    missing = []
    for i, m in enumerate(messages):
        if m.get("role") != "assistant":
            continue
        if api == "anthropic":
            ids = [b["id"] for b in m.get("content") or [] if isinstance(b, dict) and b.get("type") == "tool_use"]
            nxt = messages[i + 1]["content"] if i + 1 < len(messages) else []
            answered = {b.get("tool_use_id") for b in nxt if isinstance(b, dict) and b.get("type") == "tool_result"}
        else:
            ids = [c["id"] for c in m.get("tool_calls") or []]
            answered = set()
            for later in messages[i + 1 :]:
                if later.get("role") != "tool":
                    break
                answered.add(later.get("tool_call_id"))
        missing += [x for x in ids if x not in answered]
    return missing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        fake: FakeLLM = self.server.fake  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.loads(raw) if raw else {}
        api = "anthropic" if self.path.rstrip("/").endswith("/messages") else "openai"
        request = {"path": self.path, "api": api, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "t": time.monotonic()}
        step = fake.next_step(request)
        if step.get("delay"):
            time.sleep(step["delay"])
        if step.get("drop"):
            self.close_connection = True
            return
        missing = unanswered_tool_calls(api, body)
        if missing:
            return self._send(400, {"type": "error", "error": {"type": "invalid_request_error", "message": f"tool calls without results: {missing}"}})
        if "status" in step or "json" in step:
            return self._send(step.get("status", 200), step.get("json", {}), step.get("headers"))
        if "body" in step:
            return self._send(200, step["body"])
        if "error_body" in step:
            return self._send(200, {"type": "error", "error": {"type": step["error_body"], "message": "Overloaded"}})
        return self._send(200, fake.render(api, step))

    def _send(self, status: int, payload: Any, headers: dict | None = None) -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
