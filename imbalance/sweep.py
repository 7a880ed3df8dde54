"""A Hydra multirun as one parent MLflow run with every episode as a child run.

`SweepCallback` is registered in conf/config.yaml (hydra.callbacks). Hydra instantiates it in
the launching process; launchers pickle it into their workers (joblib, Ray, submitit), so the
parent run id set in `on_multirun_start` travels with it, and `on_job_start` hands it to the
episode in whatever process runs the job. MLflow is the single source of truth: progress
lines and the final summary are computed from the finished child runs, whichever process
or machine wrote them.
"""

from __future__ import annotations

import atexit
import os
import time
from typing import Any

from hydra.experimental.callback import Callback

_job_parent: dict[str, str] = {}  # the parent run id, in the process that runs a job


def current_parent_run_id() -> str | None:
    return _job_parent.get("run_id")


class SweepCallback(Callback):
    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None

    # ------------------------------------------------------------------ launching process
    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        if not config.mlflow.enabled:
            return
        # Ray (when it launches the jobs): no usage reporting from this machine, and every
        # episode's lines shown rather than folded into "[repeated 2x across cluster]".
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        from imbalance.tracking.runs import owner_tags, reap_dead_runs
        from imbalance.tracking.store import ensure_experiment, masked, prepare_store, resolve_tracking_uri

        self.tracking_uri = resolve_tracking_uri(config.mlflow.tracking_uri)
        prepare_store(self.tracking_uri)  # migrate a fresh SQLite store once, before any job
        client = self._client()
        self.experiment_id = ensure_experiment(client, config.mlflow.experiment_name, self.tracking_uri)
        reap_dead_runs(client, self.experiment_id)
        overrides = masked(" ".join(config.hydra.overrides.task))  # stored in a tag and printed
        run = client.create_run(
            self.experiment_id,
            run_name=f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}",
            tags={"sweep": "true", "overrides": overrides[:5000], "sweep_dir": str(config.hydra.sweep.dir), **owner_tags()},
        )
        self.parent_run_id = run.info.run_id
        self._finished = False
        atexit.register(self._abort_if_unfinished)
        print(f"sweep: parent run {self.parent_run_id} in experiment '{config.mlflow.experiment_name}' ({overrides})", flush=True)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self.parent_run_id is None:
            return
        from mlflow.entities import Metric

        from imbalance.sweep_summary import format_summary, load_children, summary_of, sweep_metrics

        client = self._client()
        summary = summary_of(load_children(client, self.tracking_uri, self.experiment_id, self.parent_run_id))
        print(format_summary(summary), flush=True)
        if summary is not None:
            now = int(time.time() * 1000)
            client.log_batch(self.parent_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in sweep_metrics(summary).items()])
        client.set_terminated(self.parent_run_id, status="FINISHED")
        self._finished = True

    def _abort_if_unfinished(self) -> None:
        """A crashed or interrupted sweep must not leave its parent run RUNNING."""
        if self.parent_run_id and not getattr(self, "_finished", True):
            try:
                self._client().set_terminated(self.parent_run_id, status="FAILED")
            except Exception:
                pass

    # ------------------------------------------------------------------ process that runs the job
    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        if self.parent_run_id:
            _job_parent["run_id"] = self.parent_run_id

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        if not self.parent_run_id:
            return
        from imbalance.sweep_summary import load_children, progress_line

        value = getattr(job_return, "_return_value", None)
        episode = value if isinstance(value, dict) else None
        rows = load_children(self._client(), self.tracking_uri, self.experiment_id, self.parent_run_id)
        print(progress_line(config.hydra.job.get("num"), episode, rows), flush=True)

    def _client(self):
        import imbalance.tracking  # noqa: F401  (MLflow defaults before MLflow loads)
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.tracking_uri)
