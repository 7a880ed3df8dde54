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

The OpenAI side answers as llama.cpp's server does (the first real server this project met):
tool-call ids of 60+ characters, `"{ }"` for a call without arguments, `content: null` beside
tool calls; and it refuses, with llama.cpp's HTTP 500, an assistant message that carries tool
calls without string `content`. `FakeLLM(script, refuse={...})` refuses request fields as other
servers do: {"max_tokens": ...} (OpenAI's reasoning models), {"temperature": ...},
{"tool_choice": "required"} (llama.cpp: an empty HTTP 500).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 50}


def reply(*calls: tuple[str, Any], text: str = "Calling tools.") -> dict:
    return {"calls": list(calls), "text": text}


def text(message: str = "I am done.") -> dict:
    return {"calls": [], "text": message}


class FakeLLM:
    def __init__(self, script: list[dict] | None = None, refuse: dict | None = None, *, plan: list[dict] | None = None,
                 delay: float = 0.0, fault: Any = None, keep_requests: bool = True):
        """`script`: steps taken in arrival order, whichever conversation asks (one episode at a
        time). `plan`: stateless, for many episodes at once: each request gets the step of its
        turn (the number of assistant turns already in it), after `delay` seconds; `fault(body)`
        returning a step (e.g. an HTTP 500) answers that request instead."""
        self.script = list(script or [])
        self.plan, self.delay, self.fault, self.keep_requests = plan, delay, fault, keep_requests
        self.refuse = dict(refuse or {})
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
            if self.keep_requests:
                self.requests.append(request)
            if self.plan is None:
                return self.script.pop(0) if self.script else text()
        body = request["body"]
        injected = self.fault(body) if self.fault is not None else None
        if injected is not None:
            return injected
        turn = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        step = self.plan[turn] if turn < len(self.plan) else text()
        return {**step, "delay": self.delay} if self.delay else step

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
        message: dict[str, Any] = {"role": "assistant", "content": None if calls else step["text"]}
        if calls:
            message["tool_calls"] = [
                {"id": f"call__0_{name}_cmpl-{uuid.uuid4()}", "type": "function", "function": {"name": name, "arguments": _arguments(args)}}
                for _, name, args in calls
            ]
        return {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": 1_700_000_000, "model": "fake-gpt",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            "usage": {"prompt_tokens": 150, "completion_tokens": 20, "total_tokens": 170, "prompt_tokens_details": {"cached_tokens": 50}},
        }


def _arguments(args: Any) -> str:
    if isinstance(args, str):
        return args
    return json.dumps(args) if args else "{ }"  # llama.cpp's text for a call without arguments


def refusal(fake: FakeLLM, api: str, body: dict) -> tuple[int, dict] | None:
    """What a real OpenAI-compatible server refuses in this request, as it says it."""
    if api != "openai":
        return None
    for m in body.get("messages", []):
        if m.get("role") == "assistant" and m.get("tool_calls") and not isinstance(m.get("content"), str):
            detail = "'dict object' has no attribute 'content'" if "content" not in m else "Input should be a valid string"
            return 500, {"error": {"message": detail, "type": "internal_server_error"}}
    if "max_tokens" in fake.refuse and "max_tokens" in body:
        return 400, {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                               "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}}
    if "temperature" in fake.refuse and "temperature" in body:
        return 400, {"error": {"message": f"Unsupported value: 'temperature' does not support {body['temperature']} with this model. Only the default (1) value is supported.",
                               "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}}
    if fake.refuse.get("tool_choice") is not None and body.get("tool_choice") == fake.refuse["tool_choice"]:
        return 500, {"error": {"message": "", "type": "internal_server_error"}}
    return None


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
        refused = refusal(fake, api, body)
        if refused is not None:  # refused before any script step is taken: the retry gets it
            with fake._lock:
                fake.requests.append(request)
            return self._send(*refused)
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
