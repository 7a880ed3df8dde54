"""The one small interface every agent backend implements, and what it may ask of the runner.

An agent reaches the task only through `Toolbox.call`; it never sees the environment,
the data, the grader or the tracking store. What it needs from outside it declares here:
`traced` asks for a `Tracer` (an LLM agent's calls become spans of one trace), and
`metrics()` / `artifacts()` hand back what the runner should record (tokens, a transcript).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from imbalance.env.tools import ToolSpec

if TYPE_CHECKING:  # only a type here; importing the environment would load torch for every reader of agent messages
    from imbalance.env.environment import ToolResult


class Toolbox(Protocol):
    specs: tuple[ToolSpec, ...]

    def call(self, tool: str, arguments: Any = None) -> ToolResult: ...


class Span(Protocol):
    def set_outputs(self, outputs: Any) -> None: ...

    def set_attribute(self, key: str, value: Any) -> None: ...


class Tracer(Protocol):
    """Spans of one episode's trace; the runner passes an MLflow tracer to agents that are `traced`."""

    def span(self, name: str, kind: str, inputs: Any = None) -> Any:
        """A context manager yielding a `Span`."""


class Agent(Protocol):
    name: str
    traced: ClassVar[bool]  # True: `run` gets a tracer that records into the episode's trace

    def run(self, tools: Toolbox, tracer: Tracer) -> None:
        """Play one episode; return after submit_answer (or earlier: the runner then submits)."""

    def metrics(self) -> dict[str, float]:
        """Numbers the runner logs at the end of the episode (e.g. tokens)."""

    def artifacts(self) -> dict[str, Any]:
        """Files the runner logs at the end of the episode (name -> text or JSON-able value)."""


class ScriptedAgent:
    """Defaults for agents that need no tracer and record nothing beyond the tool calls."""

    name = "scripted"
    traced: ClassVar[bool] = False

    def metrics(self) -> dict[str, float]:
        return {}

    def artifacts(self) -> dict[str, Any]:
        return {}


class NullSpan:
    def set_outputs(self, outputs: Any) -> None:
        pass

    def set_attribute(self, key: str, value: Any) -> None:
        pass


class NullTracer:
    """Used when tracking is off, and for agents that are not traced."""

    @contextmanager
    def span(self, name: str, kind: str, inputs: Any = None) -> Iterator[NullSpan]:
        yield NullSpan()


class EpisodeLimit(Exception):
    """A limit ended the episode early (tool calls, turns, tokens, wall clock); the runner submits."""

    def __init__(self, limit: str, message: str = ""):
        super().__init__(message or f"limit reached: {limit}")
        self.limit = limit


class AgentFailure(Exception):
    """The agent could not go on for a reason outside its control (e.g. the LLM API failed
    after its retries). The episode ends with termination_reason=error and is not graded,
    so infrastructure trouble is never counted as the agent's failure."""
