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

from imbalance.errors import UsageError, exit_with

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
        # Hydra turns a callback's exception into a warning and launches the jobs anyway;
        # SystemExit is the one way to stop a sweep whose configuration cannot work.
        try:
            self._start(config)
        except UsageError as exc:
            exit_with(exc)

    def _start(self, config: Any) -> None:
        check_every_job(config)
        if not config.mlflow.enabled:
            return
        # Ray (when it launches the jobs): no usage reporting from this machine, and every
        # episode's lines shown rather than folded into "[repeated 2x across cluster]".
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        from imbalance.tracking.runs import owner_tags, reap_dead_runs
        from imbalance.tracking.store import ensure_experiment, masked, prepare_store, probe_store, resolve_tracking_uri

        self.tracking_uri = resolve_tracking_uri(config.mlflow.tracking_uri)
        probe_store(self.tracking_uri)
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


def check_every_job(config: Any) -> None:
    """Range-check every value of the sweep before any job starts: a bad element (`tau=0.5,2`)
    otherwise stops the sweep midway and leaves a failed parent run. Each swept value is
    checked once on top of the first job's configuration (not every combination: a
    200-seed sweep is checked in about a second). Only Hydra's basic sweeper enumerates its
    jobs up front; other sweepers choose values as they go."""
    import copy

    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    from imbalance.config import GROUP_SCHEMAS, to_objects

    if "basic" not in str(config.hydra.sweeper.get("_target_", "")).lower():
        return
    loader = GlobalHydra.instance().config_loader()
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(list(config.hydra.overrides.task))
    first_job = list(BasicSweeper.split_arguments(parsed, None)[0][0])

    def compose(overrides: list[str]) -> Any:
        try:
            job = loader.load_sweep_config(config, overrides)
        except HydraException as exc:
            raise UsageError(f"{' '.join(overrides)}: {str(exc).splitlines()[0]}") from None
        with open_dict(job):
            del job["hydra"]
        return job

    base = compose(first_job)
    to_objects(base)
    for override in parsed:
        if not override.is_sweep_override() or not override.is_discrete_sweep() or override.is_hydra_override():
            continue
        key = override.key_or_group
        if key in GROUP_SCHEMAS:  # another option of a group: compose it
            for option in override.sweep_string_iterator():
                to_objects(compose([o for o in first_job if not o.startswith(f"{key}=")] + [f"{key}={option}"]))
            continue
        for value in override.sweep_iterator():
            job = copy.deepcopy(base)
            try:
                with open_dict(job):
                    OmegaConf.update(job, key, Override._convert_value(value), force_add=override.is_add() or override.is_force_add())
            except OmegaConfBaseException as exc:
                raise UsageError(f"{key}={value}: {str(exc).splitlines()[0]}") from None
            to_objects(job)
