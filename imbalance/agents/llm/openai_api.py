"""Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp), through the
official SDK. Tool arguments arrive as a JSON string; text that does not parse is passed on
as it is, so the environment answers it with a clear, free, invalid-call error."""

from __future__ import annotations

import json

from imbalance.agents.base import AgentFailure
from imbalance.agents.llm.backend import MalformedReply, Reply, ToolCall, Usage, api_failure
from imbalance.env.tools import ToolSpec, openai_tools

ERROR_PREFIX = "ERROR: "


def tool_message(content: str, is_error: bool) -> str:
    """A tool message's content: an error result is marked, since the chat-completions format
    has no error flag (Anthropic's has `is_error`). Shared with the trainer integrations and
    the trajectory export, so every OpenAI-style conversation reads alike."""
    return ERROR_PREFIX + content if is_error else content


class OpenAIBackend:
    provider = "openai"

    def __init__(self, *, api_key: str, model: str, base_url: str | None, max_tokens: int, temperature: float | None,
                 top_p: float | None, max_retries: int, timeout_s: float, seed: int):
        import openai

        self._sdk = openai
        self.client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout_s)
        self.model, self.max_tokens, self.max_retries = model, max_tokens, max_retries
        self.sampling = {k: v for k, v in (("temperature", temperature), ("top_p", top_p), ("seed", seed)) if v is not None}
        self.messages: list[dict] = []

    def begin(self, system: str, user: str, specs: tuple[ToolSpec, ...]) -> dict:
        self.tools = openai_tools(specs)
        self.messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return {"model": self.model, "max_tokens": self.max_tokens, **self.sampling, "tools": self.tools}

    def send(self) -> Reply:
        sdk = self._sdk
        try:
            completion = self.client.chat.completions.create(
                model=self.model, messages=self.messages, tools=self.tools, max_tokens=self.max_tokens, **self.sampling
            )
        except (sdk.APIStatusError, sdk.APIConnectionError) as exc:  # connection errors include timeouts
            raise AgentFailure(api_failure("OpenAI-compatible API", exc, self.max_retries)) from None
        except json.JSONDecodeError as exc:
            raise MalformedReply(f"malformed JSON in the response: {exc.msg}") from None
        if not isinstance(completion, sdk.types.chat.ChatCompletion) or not completion.choices:
            error = getattr(completion, "error", None)
            detail = f"error body {error}" if error else f"unexpected response of type {type(completion).__name__}"
            raise MalformedReply(f"the response is not a chat completion: {str(detail)[:300]}")
        raw = completion.model_dump(mode="json", exclude_none=True, warnings=False)
        message = completion.choices[0].message
        calls = []
        for tc in message.tool_calls or []:
            function = getattr(tc, "function", None)
            if function is None:
                continue
            try:
                arguments = json.loads(function.arguments) if function.arguments else {}
            except (json.JSONDecodeError, TypeError):
                arguments = function.arguments
            calls.append(ToolCall(tc.id, function.name, arguments))
        u = completion.usage
        cached = (u.prompt_tokens_details.cached_tokens or 0) if u and u.prompt_tokens_details else 0
        usage = Usage(
            input_tokens=((u.prompt_tokens or 0) - cached) if u else 0,
            output_tokens=(u.completion_tokens or 0) if u else 0,
            cache_read_input_tokens=cached,
        )
        return Reply(message.content or "", calls, usage, completion.choices[0].finish_reason, raw)

    def add_reply(self, reply: Reply) -> None:
        message = reply.raw["choices"][0]["message"]
        self.messages.append({k: v for k, v in message.items() if k in ("role", "content", "tool_calls")} | {"role": "assistant"})

    def add_results(self, results: list[tuple[ToolCall, str, bool]], reminder: str) -> None:
        for call, content, is_error in results:
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": tool_message(content, is_error)})
        self.add_user(reminder)

    def add_user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

