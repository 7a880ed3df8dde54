"""One episode: an agent plays the environment through a recording Toolbox.

The runner, not the agent, decides when the episode ends: after submit_answer; when the
agent returns or hits a limit (the runner then submits for it: `auto_submitted`); or when
the agent fails for infrastructure reasons (`error`, not graded).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imbalance.agents.base import Agent, AgentFailure, EpisodeLimit, NullTracer, Tracer
from imbalance.env.results import Grade, ToolResult
from imbalance.env.tools import TOOLS, ToolSpec

OnCall = Callable[[dict, dict], None]  # (record, metrics after the call)


@dataclass
class EpisodeResult:
    termination_reason: str  # submitted | auto_submitted | error
    grade: Grade | None
    records: list[dict]
    steps_used: int
    tool_calls: int
    invalid_tool_calls: int
    wall_seconds: float
    limit: str | None = None
    error_message: str | None = None
    agent_metrics: dict[str, float] = field(default_factory=dict)  # e.g. tokens of LLM backends
    agent_artifacts: dict[str, Any] = field(default_factory=dict)  # e.g. transcript.json

    @property
    def passed(self) -> bool:
        return bool(self.grade and self.grade.passed)


class RecordingToolbox:
    """The Toolbox agents see: forwards to the env, records every call, enforces max_tool_calls.

    `cancel` (set by a launcher on Ctrl-C) stops the episode at its next tool call, as an
    interruption: the runner then marks its run KILLED."""

    specs: tuple[ToolSpec, ...] = TOOLS

    def __init__(self, env: Any, on_call: OnCall | None = None, cancel: threading.Event | None = None):
        self._env = env  # private: an agent plays through call(), never through the env (whose grader holds TEST)
        self.records: list[dict] = []
        self.on_call = on_call
        self._cancel = cancel

    def call(self, tool: str, arguments: Any = None) -> ToolResult:
        if self._cancel is not None and self._cancel.is_set():
            raise KeyboardInterrupt
        if self._env.truncated:
            raise EpisodeLimit("max_tool_calls", f"{self._env.budget.max_tool_calls} tool calls made")
        result = self._env.call(tool, arguments)
        record = {
            "index": len(self.records),
            "tool": result.tool,
            "arguments": result.arguments,
            "paid": result.paid,
            "charged": result.charged,
            "invalid": result.invalid,
            ("error" if result.is_error else "result"): result.output,
        }
        self.records.append(record)
        if self.on_call is not None:
            self.on_call(record, self._env.metrics())
        return result


def play(env: Any, agent: Agent, *, on_call: OnCall | None = None, tracer: Tracer | None = None, reset: bool = True,
         cancel: threading.Event | None = None) -> EpisodeResult:
    """Reset the env (training the baseline), let the agent play, and grade."""
    started = time.perf_counter()
    if reset:
        env.reset()
    toolbox = RecordingToolbox(env, on_call, cancel)
    limit = error = None
    try:
        agent.run(toolbox, tracer or NullTracer())
    except EpisodeLimit as exc:
        limit = exc.limit
    except AgentFailure as exc:
        error = str(exc) or type(exc).__name__
    return conclude(env, toolbox.records, started, limit=limit, error=error, agent_metrics=agent.metrics(), agent_artifacts=agent.artifacts())


def conclude(env: Any, records: list[dict], started: float, *, limit: str | None = None, error: str | None = None,
             agent_metrics: dict | None = None, agent_artifacts: dict | None = None) -> EpisodeResult:
    """How the episode ended: graded now if nobody submitted (unless it failed outside the agent)."""
    if error is None and not env.done:
        env.submit(auto=True)
    if error is not None:
        reason = "error"
    elif env.state.auto_submitted:
        reason = "auto_submitted"
    else:
        reason = "submitted"
    return EpisodeResult(
        termination_reason=reason,
        grade=env.state.grade if error is None else None,
        records=records,
        steps_used=env.state.steps_used,
        tool_calls=len(records),
        invalid_tool_calls=sum(1 for r in records if r["invalid"]),
        wall_seconds=time.perf_counter() - started,
        limit=limit,
        error_message=error,
        agent_metrics=agent_metrics or {},
        agent_artifacts=agent_artifacts or {},
    )
