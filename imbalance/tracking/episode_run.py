"""One MLflow run per episode, logged in batches (one SQLite write costs ~10 ms).

Per-call metrics are buffered and written with log_batch at most every FLUSH_SECONDS, so a
long LLM episode shows live progress in the UI while an offline one costs a few writes.
"""

from __future__ import annotations

import json
import time
from typing import Any

FLUSH_SECONDS = 2.0
MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch


def _timed(method):
    """Adds the call's duration to `self.seconds`: what tracking costs an episode (benchmarks)."""

    def wrapper(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started

    return wrapper


class EpisodeRun:
    def __init__(self, tracking_uri: str, experiment_name: str):
        started = time.perf_counter()
        from mlflow.tracking import MlflowClient

        from imbalance.tracking.store import ensure_experiment

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = ensure_experiment(self.client, experiment_name, tracking_uri)
        self.run_id: str | None = None
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
        self.run_id = run.info.run_id
        items = [Param(k, _param_value(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # log_batch takes at most 100 params
            self.client.log_batch(self.run_id, params=items[i : i + 100])
        return self.run_id

    @_timed
    def log_step(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self._flush()

    @_timed
    def flush(self) -> None:
        self._flush()

    def _flush(self) -> None:
        while self._pending:
            chunk, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            self.client.log_batch(self.run_id, metrics=chunk)
        self._last_flush = time.monotonic()

    @_timed
    def finish(self, *, metrics: dict[str, float], tags: dict[str, str], artifacts: dict[str, Any], status: str = "FINISHED") -> None:
        """Artifacts first, then metrics and tags, then the status: a FINISHED run is complete."""
        from mlflow.entities import Metric, RunTag

        for name, content in artifacts.items():
            if isinstance(content, str):
                self.client.log_text(self.run_id, content, name)
            else:
                self.client.log_text(self.run_id, json.dumps(content, indent=1, default=str), name)
        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        self._flush()
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        self.client.set_terminated(self.run_id, status=status)


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text[:6000]  # MLflow's param value limit
