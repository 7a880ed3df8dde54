"""The conversation runner shared by every LLM backend.

One episode: the prompt from the configuration, at most `budget.conv_steps` assistant turns,
every tool call of a turn executed in order and answered in the next message (errors as
error results, never exceptions), the budget reminder after each turn. It ends when the
agent submits, stops calling tools, or reaches a limit (turns, tokens, wall clock); the
episode runner then submits for it. API failures that outlive the retries end the episode
with termination_reason=error (AgentFailure), so they never count as the agent's failure.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from imbalance.agents.base import AgentFailure, EpisodeLimit, NullTracer, Toolbox, Tracer
from imbalance.agents.llm.backend import ChatBackend, MalformedReply, Reply, Usage
from imbalance.agents.llm.prompt import SYSTEM_PROMPT, TaskBrief, budget_reminder, task_prompt

MAX_RESULT_CHARS = 4000  # longer tool output is cut, with a marker, before it reaches the model
# The answer to a call made after the episode ended (a call after submit_answer in the same
# turn): this runner stops before such calls; integrations and exports that must answer
# every call use this text.
NOT_EXECUTED = "not executed: the episode is over (the answer was submitted)"
MALFORMED_BACKOFF_S = 0.5


@dataclass(frozen=True)
class Limits:
    conv_steps: int
    token_budget: int | None
    wall_clock_s: float | None
    max_retries: int  # for malformed 200 replies, which the SDKs do not retry


class LLMAgent:
    traced = True  # its LLM calls and tool calls become spans of the episode's trace

    def __init__(self, name: str, backend: ChatBackend, brief: TaskBrief, limits: Limits, *,
                 submit_after_sweep: bool = False, secret: str | None = None):
        self.name, self.backend, self.brief, self.limits = name, backend, brief, limits
        self.submit_after_sweep = submit_after_sweep
        self.tracer: Tracer = NullTracer()
        self._secret = secret
        self.usage = Usage()
        self.llm_calls = 0
        self.transcript: dict[str, Any] = {}

    def metrics(self) -> dict[str, float]:
        return {**{k: float(v) for k, v in vars(self.usage).items()}, "llm_calls": float(self.llm_calls)}

    def artifacts(self) -> dict[str, Any]:
        return {"transcript.json": self._redact(self.transcript)}

    def run(self, tools: Toolbox, tracer: Tracer | None = None) -> None:
        self.tracer = tracer or NullTracer()
        started = time.monotonic()
        request = self.backend.begin(SYSTEM_PROMPT, task_prompt(self.brief, tools.specs), tools.specs)
        self.transcript = {"provider": self.backend.provider, "request": request, "messages": self.backend.messages, "responses": [], "errors": [],
                           "adjustments": self.backend.adjustments}
        steps_used = 0
        for turn in range(self.limits.conv_steps):
            self._check_limits(started)
            reply = self._send(turn)
            self.backend.add_reply(reply)
            if not reply.tool_calls:
                return  # the agent stopped calling tools: the runner submits
            results = []
            for call in reply.tool_calls:
                with self.tracer.span(call.name, "TOOL", inputs={"arguments": call.arguments}) as span:
                    result = tools.call(call.name, call.arguments)
                    span.set_outputs(result.output)
                steps_used += int(result.charged)
                if call.name == "submit_answer" and not result.is_error:
                    return
                if self.submit_after_sweep and call.name == "sweep_thresholds" and not result.is_error:
                    return  # the runner submits (auto_submitted): the agent did not choose to

                results.append((call, result_content(result.output), result.is_error))
            self.backend.add_results(results, budget_reminder(self.brief.max_steps, steps_used))
        raise EpisodeLimit("conv_steps", f"{self.limits.conv_steps} assistant turns used")

    def _check_limits(self, started: float) -> None:
        if self.limits.token_budget is not None and self.usage.total >= self.limits.token_budget:
            raise EpisodeLimit("token_budget", f"{self.usage.total} tokens used of {self.limits.token_budget}")
        if self.limits.wall_clock_s is not None and time.monotonic() - started >= self.limits.wall_clock_s:
            raise EpisodeLimit("wall_clock", f"{self.limits.wall_clock_s} s elapsed")

    def _send(self, turn: int) -> Reply:
        """One API call; malformed 200 replies are retried like the SDK retries errors.

        Error text comes from the server and could echo the key (some APIs quote it in a 401):
        it is redacted here, before it reaches the trace, the transcript, the tags or the log.
        """
        for attempt in range(self.limits.max_retries + 1):
            with self.tracer.span(f"{self.backend.provider}.chat", "CHAT_MODEL", inputs={"turn": turn, "messages": self.backend.messages[-2:]}) as span:
                try:
                    reply = self.backend.send()
                except MalformedReply as exc:
                    error = self._redact_text(str(exc))
                    self.transcript["errors"].append({"turn": turn, "attempt": attempt, "error": error})
                    span.set_attribute("error", error)
                    if attempt == self.limits.max_retries:
                        raise AgentFailure(f"{error} (after {self.limits.max_retries} retries)") from None
                    time.sleep(min(MALFORMED_BACKOFF_S * 2**attempt, 8.0))
                    continue
                except AgentFailure as exc:
                    error = self._redact_text(str(exc))
                    self.transcript["errors"].append({"turn": turn, "attempt": attempt, "error": error})
                    raise AgentFailure(error) from None
                self.llm_calls += 1
                self.usage.add(reply.usage)
                self.transcript["responses"].append({"turn": turn, **reply.raw})
                span.set_outputs(reply.raw)
                span.set_attribute("mlflow.chat.tokenUsage", {
                    "input_tokens": reply.usage.input_tokens + reply.usage.cache_read_input_tokens + reply.usage.cache_creation_input_tokens,
                    "output_tokens": reply.usage.output_tokens,
                    "total_tokens": reply.usage.total,
                })
                return reply
        raise AssertionError("unreachable")

    def _redact_text(self, text: str) -> str:
        return text.replace(self._secret, "[REDACTED]") if self._secret else text

    def _redact(self, value: Any) -> Any:
        """Defence in depth: the key never enters a request body, but scrub it anyway."""
        if not self._secret:
            return value
        text = json.dumps(value, default=str)
        if self._secret not in text:
            return value
        return json.loads(text.replace(self._secret, "[REDACTED]"))


def result_content(output: dict) -> str:
    """A tool result as the model reads it: JSON, cut after MAX_RESULT_CHARS with a marker.
    The trainer integrations and the trajectory export write results the same way."""
    text = json.dumps(output, default=str)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"...<truncated {len(text) - MAX_RESULT_CHARS} chars>"
    return text
