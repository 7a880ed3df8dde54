"""MLflow tracing: one trace per LLM episode, its spans the LLM calls and the tool calls.

Spans are made by hand (not by SDK autologging), so both providers look alike, nothing but
the request body and the response is recorded (no headers, no key), and an episode is one
trace linked to its run (the Traces tab of the run shows it). `MlflowTracer` is what the
runner hands to agents that declare `traced` (imbalance.agents.base.Tracer).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class MlflowTracer:
    def __init__(self, tracking_uri: str, experiment_id: str, run_id: str):
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)  # the trace exporter reads the global URI
        self.mlflow = mlflow
        self.experiment_id, self.run_id = experiment_id, run_id

    @contextmanager
    def episode(self, name: str, inputs: dict) -> Iterator[Any]:
        from mlflow.entities import SpanType
        from mlflow.entities.trace_location import MlflowExperimentLocation

        with self.mlflow.start_span(
            name, span_type=SpanType.AGENT, run_id=self.run_id, trace_destination=MlflowExperimentLocation(self.experiment_id)
        ) as span:
            span.set_inputs(inputs)
            yield span

    @contextmanager
    def span(self, name: str, kind: str, inputs: Any = None) -> Iterator[Any]:
        with self.mlflow.start_span(name, span_type=kind) as span:
            if inputs is not None:
                span.set_inputs(inputs)
            yield span

    def flush(self) -> None:
        """Before the run ends: traces are exported asynchronously. With many episodes in one
        process the flush waits for everyone's traces; they flush once, at the end instead."""
        if not _deferred:
            self.mlflow.flush_trace_async_logging()


_deferred: list[bool] = []


@contextmanager
def one_flush_at_the_end() -> Iterator[None]:
    """For many episodes in one process (the concurrent launcher, the server): episodes do not
    wait for the trace queue when they end; it is flushed once when the block ends."""
    _deferred.append(True)
    try:
        yield
    finally:
        _deferred.pop()
        if not _deferred:
            import sys

            if "mlflow" in sys.modules:
                sys.modules["mlflow"].flush_trace_async_logging()
