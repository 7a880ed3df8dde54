"""The one small interface every agent backend implements.

An agent reaches the task only through `Toolbox.call`; it never sees the environment,
the data or the grader. The episode runner provides the Toolbox and records each call.
"""

from __future__ import annotations

from typing import Any, Protocol

from imbalance.env.environment import ToolResult
from imbalance.env.tools import ToolSpec


class Toolbox(Protocol):
    specs: tuple[ToolSpec, ...]

    def call(self, tool: str, arguments: Any = None) -> ToolResult: ...


class Agent(Protocol):
    name: str

    def run(self, tools: Toolbox) -> None:
        """Play one episode; return after submit_answer (or earlier: the runner then submits)."""


class EpisodeLimit(Exception):
    """A limit ended the episode early (tool calls, turns, tokens, wall clock); the runner submits."""

    def __init__(self, limit: str, message: str = ""):
        super().__init__(message or f"limit reached: {limit}")
        self.limit = limit


class AgentFailure(Exception):
    """The agent could not go on for a reason outside its control (e.g. the LLM API failed
    after its retries). The episode ends with termination_reason=error and is not graded,
    so infrastructure trouble is never counted as the agent's failure."""
