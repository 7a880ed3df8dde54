"""What the conversation runner needs from a provider API, in provider-neutral types.

Each adapter (anthropic_api.py, openai_api.py) owns its message format: it turns the single
tool catalogue into the provider's tool definitions, sends the conversation, and parses the
reply into `Reply`. API failures that outlive the SDK's retries become `AgentFailure`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from imbalance.env.tools import ToolSpec


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Any  # the parsed JSON object, or the raw text when it did not parse
    raw_arguments: str | None = None  # the JSON text as the server sent it (OpenAI-style APIs)


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def add(self, other: Usage) -> None:
        for key in vars(self):
            setattr(self, key, getattr(self, key) + getattr(other, key))

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


@dataclass
class Reply:
    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    stop_reason: str | None
    raw: dict = field(repr=False)  # the response as received


class MalformedReply(Exception):
    """A 200 response that is not a usable message (an error body, malformed JSON, wrong type).
    The SDKs do not retry these; the conversation runner does."""


_HTTP_CLIENTS: dict[str, Any] = {}
_HTTP_CLIENTS_LOCK = threading.Lock()


def shared_http_client(sdk: Any) -> Any:
    """One HTTP client per SDK and process, shared by every episode's SDK client. Each new
    client builds an SSL context (about 0.1 s of CPU under the GIL): 64 episodes in one
    process would spend seconds on that alone. An httpx client is safe to share between
    threads; timeouts and retries stay per SDK client (the SDK sets them on each request)."""
    with _HTTP_CLIENTS_LOCK:
        if sdk.__name__ not in _HTTP_CLIENTS:
            _HTTP_CLIENTS[sdk.__name__] = sdk.DefaultHttpxClient()
        return _HTTP_CLIENTS[sdk.__name__]


def api_failure(api: str, exc: Exception, max_retries: int) -> str:
    """One line on an SDK error that outlived the retries (bounded: never a whole response body)."""
    text = str(exc).strip()
    summary = (text.splitlines()[0] if text else type(exc).__name__)[:300]
    status = getattr(exc, "status_code", None)
    if status is None:  # connection refused or dropped, timeout: always retried
        return f"{api} unreachable after {max_retries} retries: {type(exc).__name__}: {summary}"
    retried = status in (408, 409, 429) or status >= 500
    kind = getattr(exc, "type", None) or type(exc).__name__
    return f"{api} returned HTTP {status} ({kind}){f' after {max_retries} retries' if retried else ''}: {summary}"


class ChatBackend(Protocol):
    provider: str
    model: str
    messages: list[dict]  # the conversation so far, in the provider's format
    adjustments: list[str]  # settings changed after the server refused them (kept in the transcript)

    def begin(self, system: str, user: str, specs: tuple[ToolSpec, ...]) -> dict:
        """Start a conversation; returns the stable part of the request (for the transcript)."""

    def send(self) -> Reply:
        """One API call on the conversation so far. Raises AgentFailure or MalformedReply."""

    def add_reply(self, reply: Reply) -> None: ...

    def add_results(self, results: list[tuple[ToolCall, str, bool]], reminder: str) -> None:
        """Tool results (call, content, is_error) for every call of the last reply, then the reminder."""

    def add_user(self, text: str) -> None: ...
