"""One MLflow run per episode, logged in batches (one SQLite write costs ~10 ms).

Per-call metrics are buffered and written with log_batch at most every FLUSH_SECONDS, so a
long LLM episode shows live progress in the UI while an offline one costs a few writes. Many
episodes in one process (`many_episodes()`) share one SQLite writer, so there each run
flushes less often and its traces are exported once at the end.
`NoRun` has the same methods and records nothing (mlflow.enabled=false), so the runner
never asks whether it is tracking.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

FLUSH_SECONDS = 2.0
MANY_EPISODES_FLUSH_SECONDS = 30.0  # 64 episodes flushing every 2 s queue behind one writer
_flush_seconds = [FLUSH_SECONDS]
MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch
log = logging.getLogger("imbalance")
# SQLite takes one writer at a time. Episodes in threads of one process (the concurrent launcher,
# the server) write one after the other here rather than queue inside MLflow's connection pool,
# which gives up after 30 s with 15 connections taken.
_SQLITE_WRITES = threading.Lock()


@contextmanager
def many_episodes() -> Iterator[None]:
    """For many episodes in threads of one process (the concurrent launcher, the server):
    per-call metrics are written every MANY_EPISODES_FLUSH_SECONDS instead of every
    FLUSH_SECONDS, and traces are exported once when the block ends."""
    from imbalance.tracking.tracing import one_flush_at_the_end

    _flush_seconds.append(MANY_EPISODES_FLUSH_SECONDS)
    try:
        with one_flush_at_the_end():
            yield
    finally:
        _flush_seconds.pop()


def _writes_lock(tracking_uri: str) -> Any:
    return _SQLITE_WRITES if tracking_uri.startswith("sqlite:") else nullcontext()


def _timed(method):
    """One write to the store: serialised where the store needs it, and its duration added to
    `self.seconds` (what tracking costs an episode, for the benchmarks)."""

    def wrapper(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            with self._writes:
                return method(self, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started

    return wrapper


class NoRun:
    """Tracking switched off: every method is a no-op."""

    run_id: str | None = None
    experiment_id: str | None = None
    tracking_uri: str | None = None
    seconds = 0.0

    def log_step(self, step: int, metrics: dict[str, float]) -> None:
        pass

    @contextmanager
    def trace(self, traced: bool, name: str, inputs: dict) -> Iterator[Any]:
        from imbalance.agents.base import NullTracer

        yield NullTracer(), None

    def finish(self, *, metrics: dict[str, float], tags: dict[str, str], artifacts: dict[str, Any], status: str = "FINISHED") -> None:
        pass

    def abort(self, exc: BaseException, message: str | None = None) -> None:
        pass


class EpisodeRun:
    def __init__(self, tracking_uri: str, experiment_name: str):
        started = time.perf_counter()
        from mlflow.tracking import MlflowClient

        from imbalance.tracking.store import ensure_experiment, prepare_store

        self._writes = _writes_lock(tracking_uri)
        self.tracking_uri = tracking_uri
        with self._writes:
            prepare_store(tracking_uri)
            self.client = MlflowClient(tracking_uri)
            self.experiment_id = ensure_experiment(self.client, experiment_name, tracking_uri)
        self.run_id: str | None = None
        self._artifact_uri: str | None = None
        self._pending: list = []
        self._last_flush = time.monotonic()
        self.seconds = time.perf_counter() - started

    @_timed
    def start(self, *, run_name: str, params: dict[str, Any], tags: dict[str, str], parent_run_id: str | None = None) -> str:
        from mlflow.entities import Param

        all_tags = dict(tags)
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        self.run_id, self._artifact_uri = run.info.run_id, run.info.artifact_uri
        items = [Param(k, _param_value(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # log_batch takes at most 100 params
            self.client.log_batch(self.run_id, params=items[i : i + 100])
        return self.run_id

    @_timed
    def log_step(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if time.monotonic() - self._last_flush >= _flush_seconds[-1]:
            self._flush()

    @contextmanager
    def trace(self, traced: bool, name: str, inputs: dict) -> Iterator[Any]:
        """(tracer, root span) for an agent that is `traced`: one MLflow trace linked to this run,
        exported before the run ends. Untraced agents get a tracer that records nothing."""
        if not traced:
            from imbalance.agents.base import NullTracer

            yield NullTracer(), None
            return
        from imbalance.tracking.tracing import MlflowTracer

        tracer = MlflowTracer(self.tracking_uri, self.experiment_id, self.run_id)
        try:
            with tracer.episode(name, inputs) as root:
                yield tracer, root
        finally:
            tracer.flush()

    def _flush(self) -> None:
        while self._pending:  # a metric leaves the buffer once written: a failed write keeps it for abort()
            self.client.log_batch(self.run_id, metrics=self._pending[:MAX_BATCH])
            self._pending = self._pending[MAX_BATCH:]
        self._last_flush = time.monotonic()

    def finish(self, *, metrics: dict[str, float], tags: dict[str, str], artifacts: dict[str, Any], status: str = "FINISHED") -> None:
        """Artifacts first, then metrics and tags, then the status: a FINISHED run is complete.
        Artifacts are files, not store writes: they are written outside the writes lock."""
        started = time.perf_counter()
        try:
            if artifacts:
                self._log_artifacts(artifacts)
        finally:
            self.seconds += time.perf_counter() - started
        self._finish_in_store(metrics, tags, status)

    def _log_artifacts(self, artifacts: dict[str, Any]) -> None:
        """All of a run's files in one upload, to the artifact location create_run returned:
        MlflowClient.log_text would read the whole run back from the store (params, tags,
        metrics) to find that location, and stage each file in a folder of its own."""
        import tempfile
        from pathlib import Path

        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
        from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

        location = add_databricks_profile_info_to_artifact_uri(self._artifact_uri, self.tracking_uri)  # as MlflowClient does
        with tempfile.TemporaryDirectory(prefix="imbalance-artifacts-") as folder:
            for name, content in artifacts.items():
                text = content if isinstance(content, str) else json.dumps(content, indent=1, default=str)
                path = Path(folder) / name
                path.parent.mkdir(parents=True, exist_ok=True)  # a name may hold folders, as log_text allows
                path.write_text(text, encoding="utf-8")
            get_artifact_repository(location, tracking_uri=self.tracking_uri).log_artifacts(folder)

    @_timed
    def _finish_in_store(self, metrics: dict[str, float], tags: dict[str, str], status: str) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        tag_list = [RunTag(k, str(v)) for k, v in tags.items()]
        # One write for the last metrics and the tags (log_batch takes 1000 entries, 100 of them tags).
        first_tags = tag_list[:100]
        room = MAX_BATCH - len(first_tags)
        self.client.log_batch(self.run_id, metrics=self._pending[:room], tags=first_tags)
        self._pending = self._pending[room:]
        for i in range(100, len(tag_list), 100):
            self.client.log_batch(self.run_id, tags=tag_list[i : i + 100])
        self._flush()
        self.client.set_terminated(self.run_id, status=status)

    def abort(self, exc: BaseException, message: str | None = None) -> None:
        """A bug or an interruption: never leave the run RUNNING. Ctrl-C and SIGTERM (both reach
        here as KeyboardInterrupt) mark it KILLED, anything else FAILED."""
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        if message is None:
            message = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        try:
            self.finish(metrics={}, tags={"termination_reason": "error", "error_message": message[:5000]}, artifacts={}, status=status)
        except Exception:  # the original error matters more than a failed bookkeeping write
            log.exception("could not mark run %s as %s", self.run_id, status)


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text[:6000]  # MLflow's param value limit
