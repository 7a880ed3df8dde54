"""Any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp), through the
official SDK. What each server accepts differs (docs/llm-agents.md has the table); this adapter
sends what all of them take and adapts, once, where a server says what it wants instead:

- an assistant message that carries tool calls always has string `content` (`""` when the
  model wrote none): llama.cpp's server answers a missing key or `null` with HTTP 500;
- `tool_choice` is always sent: llama.cpp ignores the tools when it is left out;
- `max_tokens`, unless `agent.max_tokens_param` says otherwise; with `auto`, an HTTP 400 asking
  for `max_completion_tokens` (OpenAI's reasoning models) switches to it for the episode;
- a sampling setting the model refuses (`temperature`, `top_p` on reasoning models) is dropped
  after that HTTP 400, so the episode runs with the model's default; the transcript says so.

Tool arguments arrive as a JSON string; text that does not parse is passed on as it is, so the
environment answers it with a clear, free, invalid-call error.
"""

from __future__ import annotations

import json
import logging
import re

from imbalance.agents.base import AgentFailure
from imbalance.agents.llm.backend import MalformedReply, Reply, ToolCall, Usage, api_failure, shared_http_client
from imbalance.env.tools import ToolSpec, openai_tools

ERROR_PREFIX = "ERROR: "


def tool_message(content: str, is_error: bool) -> str:
    """A tool message's content: an error result is marked, since the chat-completions format
    has no error flag (Anthropic's has `is_error`). Shared with the trainer integrations and
    the trajectory export, so every OpenAI-style conversation reads alike."""
    return ERROR_PREFIX + content if is_error else content

log = logging.getLogger("imbalance")
REFUSED_SETTING = re.compile(r"Unsupported (?:parameter|value): '(temperature|top_p|seed)'")


class OpenAIBackend:
    provider = "openai"

    def __init__(self, *, api_key: str, model: str, base_url: str | None, max_tokens: int, temperature: float | None,
                 top_p: float | None, max_retries: int, timeout_s: float, seed: int, tool_choice: str = "auto",
                 max_tokens_param: str = "auto"):
        import openai

        self._sdk = openai
        self.client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout_s,
                                    http_client=shared_http_client(openai))
        self.model, self.max_tokens, self.max_retries = model, max_tokens, max_retries
        self.sampling = {k: v for k, v in (("temperature", temperature), ("top_p", top_p), ("seed", seed)) if v is not None}
        self.tool_choice = tool_choice
        self.token_param = "max_completion_tokens" if max_tokens_param == "max_completion_tokens" else "max_tokens"
        self.adapt_token_param = max_tokens_param == "auto"
        self.adjustments: list[str] = []  # what was changed after a server refused it (transcript)
        self.messages: list[dict] = []

    def begin(self, system: str, user: str, specs: tuple[ToolSpec, ...]) -> dict:
        self.tools = openai_tools(specs)
        self.messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return {k: v for k, v in self._request().items() if k != "messages"}

    def _request(self) -> dict:
        return {"model": self.model, "messages": self.messages, "tools": self.tools, "tool_choice": self.tool_choice,
                self.token_param: self.max_tokens, **self.sampling}

    def send(self) -> Reply:
        sdk = self._sdk
        while True:
            try:
                completion = self.client.chat.completions.create(**self._request())
                break
            except sdk.BadRequestError as exc:
                if not self._adapt(exc):
                    raise AgentFailure(self._failure(exc)) from None
            except (sdk.APIStatusError, sdk.APIConnectionError) as exc:  # connection errors include timeouts
                raise AgentFailure(self._failure(exc)) from None
            except json.JSONDecodeError as exc:
                raise MalformedReply(f"malformed JSON in the response: {exc.msg}") from None
        if not isinstance(completion, sdk.types.chat.ChatCompletion) or not completion.choices:
            error = getattr(completion, "error", None)
            detail = f"error body {error}" if error else f"unexpected response of type {type(completion).__name__}"
            raise MalformedReply(f"the response is not a chat completion: {str(detail)[:300]}")
        raw = completion.model_dump(mode="json", exclude_none=True, warnings=False)
        message = completion.choices[0].message
        calls = []
        for index, tc in enumerate(message.tool_calls or []):
            function = getattr(tc, "function", None)
            if function is None:
                continue
            try:
                arguments = json.loads(function.arguments) if function.arguments and function.arguments.strip() else {}
            except (json.JSONDecodeError, TypeError):
                arguments = function.arguments
            calls.append(ToolCall(tc.id or f"call_{len(self.messages)}_{index}", function.name, arguments, function.arguments))
        u = completion.usage
        details = getattr(u, "prompt_tokens_details", None) if u else None
        cached = (details.cached_tokens or 0) if details else 0
        usage = Usage(
            input_tokens=((u.prompt_tokens or 0) - cached) if u else 0,
            output_tokens=(u.completion_tokens or 0) if u else 0,
            cache_read_input_tokens=cached,
        )
        return Reply(message.content or "", calls, usage, completion.choices[0].finish_reason, raw)

    def _adapt(self, exc: Exception) -> bool:
        """Change what the server refused, once per setting; False when nothing is left to change."""
        text = str(exc)
        if self.adapt_token_param and self.token_param == "max_tokens" and "max_completion_tokens" in text:
            self.token_param = "max_completion_tokens"
            return self._note("the server asked for max_completion_tokens instead of max_tokens; sending that")
        refused = REFUSED_SETTING.search(text)
        if refused and refused[1] in self.sampling:
            del self.sampling[refused[1]]
            return self._note(f"the model refused {refused[1]}; using its default")
        return False

    def _note(self, what: str) -> bool:
        self.adjustments.append(what)
        log.info("  %s: %s", self.model, what)
        return True

    def _failure(self, exc: Exception) -> str:
        message = api_failure("OpenAI-compatible API", exc, self.max_retries)
        status = getattr(exc, "status_code", None)
        # llama.cpp's server answers tool_choice="required" with an empty HTTP 500; others name it.
        if self.tool_choice != "auto" and status is not None and ("tool_choice" in str(exc) or status >= 500):
            message += f"; the server may not support agent.tool_choice={self.tool_choice}: try agent.tool_choice=auto"
        return message

    def add_reply(self, reply: Reply) -> None:
        """The assistant turn as every server accepts it back: string content, and the tool
        calls with their arguments as the server wrote them (and the ids this adapter used)."""
        message: dict = {"role": "assistant", "content": reply.text or ""}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.raw_arguments or "{}"}}
                for call in reply.tool_calls
            ]
        self.messages.append(message)

    def add_results(self, results: list[tuple[ToolCall, str, bool]], reminder: str) -> None:
        for call, content, is_error in results:
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": tool_message(content, is_error)})
        self.add_user(reminder)

    def add_user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})
