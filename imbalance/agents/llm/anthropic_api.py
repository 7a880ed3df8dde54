"""The Anthropic Messages API (tool use), through the official SDK.

Prompt caching: cache breakpoints on the last tool definition, on the system prompt and on
the newest user message, so every turn re-reads the stable prefix and the conversation so
far from the cache. (Prompts below the model's minimum cacheable length are not cached;
the API then simply reports zero cache tokens.)
"""

from __future__ import annotations

import json
from typing import Any

from imbalance.agents.base import AgentFailure
from imbalance.agents.llm.backend import MalformedReply, Reply, ToolCall, Usage, api_failure, shared_http_client
from imbalance.env.tools import ToolSpec

CACHE = {"type": "ephemeral"}
TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none"}  # agent.tool_choice -> the Messages API's names


class AnthropicBackend:
    provider = "anthropic"

    def __init__(self, *, api_key: str, model: str, base_url: str | None, max_tokens: int, temperature: float | None,
                 top_p: float | None, max_retries: int, timeout_s: float, prompt_caching: bool, tool_choice: str = "auto"):
        import anthropic

        self._sdk = anthropic
        self.client = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout_s,
                                          http_client=shared_http_client(anthropic))
        self.model, self.max_tokens, self.max_retries = model, max_tokens, max_retries
        self.sampling = {k: v for k, v in (("temperature", temperature), ("top_p", top_p)) if v is not None}
        self.caching = prompt_caching
        self.tool_choice = {"type": TOOL_CHOICE[tool_choice]}
        self.adjustments: list[str] = []
        self.messages: list[dict] = []
        self._marked: dict | None = None  # the user block that holds the moving cache breakpoint

    def begin(self, system: str, user: str, specs: tuple[ToolSpec, ...]) -> dict:
        self.tools = [{"name": s.name, "description": s.description, "input_schema": s.json_schema()} for s in specs]
        self.system = [{"type": "text", "text": system}]
        if self.caching:
            self.tools[-1]["cache_control"] = CACHE
            self.system[0]["cache_control"] = CACHE
        self.add_user(user)
        return {"model": self.model, "max_tokens": self.max_tokens, **self.sampling, "tool_choice": self.tool_choice, "system": self.system, "tools": self.tools}

    def send(self) -> Reply:
        sdk = self._sdk
        try:
            message = self.client.messages.create(
                model=self.model, max_tokens=self.max_tokens, system=self.system, tools=self.tools, tool_choice=self.tool_choice,
                messages=self.messages, **self.sampling
            )
        except (sdk.APIStatusError, sdk.APIConnectionError) as exc:  # connection errors include timeouts
            raise AgentFailure(api_failure("Anthropic API", exc, self.max_retries)) from None
        except json.JSONDecodeError as exc:
            raise MalformedReply(f"malformed JSON in the response: {exc.msg}") from None
        if not isinstance(message, sdk.types.Message) or message.type != "message" or message.content is None:
            error = getattr(message, "error", None)
            detail = f"error body {error}" if error else f"unexpected response of type {type(message).__name__}"
            raise MalformedReply(f"the response is not a message: {str(detail)[:300]}")
        raw = message.model_dump(mode="json", exclude_none=True, warnings=False)
        calls, texts = [], []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                calls.append(ToolCall(block.id, block.name, block.input))
        u = message.usage
        usage = Usage(
            input_tokens=(u.input_tokens or 0) if u else 0,
            output_tokens=(u.output_tokens or 0) if u else 0,
            cache_creation_input_tokens=(u.cache_creation_input_tokens or 0) if u else 0,
            cache_read_input_tokens=(u.cache_read_input_tokens or 0) if u else 0,
        )
        return Reply("\n".join(texts), calls, usage, message.stop_reason, raw)

    def add_reply(self, reply: Reply) -> None:
        self.messages.append({"role": "assistant", "content": reply.raw["content"]})

    def add_results(self, results: list[tuple[ToolCall, str, bool]], reminder: str) -> None:
        blocks: list[dict[str, Any]] = [
            {"type": "tool_result", "tool_use_id": call.id, "content": content, **({"is_error": True} if is_error else {})}
            for call, content, is_error in results
        ]
        blocks.append({"type": "text", "text": reminder})
        self._append_user(blocks)

    def add_user(self, text: str) -> None:
        self._append_user([{"type": "text", "text": text}])

    def _append_user(self, blocks: list[dict]) -> None:
        if self.caching:  # move the conversation breakpoint to the newest user block
            if self._marked is not None:
                self._marked.pop("cache_control", None)
            blocks[-1]["cache_control"] = CACHE
            self._marked = blocks[-1]
        self.messages.append({"role": "user", "content": blocks})

