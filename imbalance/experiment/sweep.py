"""A Hydra multirun as one parent MLflow run with every episode as a child run.

`SweepCallback` is registered in conf/config.yaml (hydra.callbacks). Hydra instantiates it in
the launching process; launchers pickle it into their workers (joblib, Ray, submitit), so the
parent run id set in `on_multirun_start` travels with it, and `on_job_start` hands it to the
episode in whatever process runs the job. MLflow is the single source of truth: progress
lines and the final summary are computed from the finished child runs, whichever process
or machine wrote them.

Before the parent run exists every job's configuration is checked (ranges, the API key, the
data file and its rows, the store), so a sweep that cannot work stops with one message and leaves nothing
behind. Hydra turns a callback's Exception into a warning and launches the jobs anyway; the
callback therefore raises `SweepAborted`, a BaseException the command line reports.
"""

from __future__ import annotations

import atexit
import copy
import logging
import os
import time
from typing import Any

from hydra.experimental.callback import Callback

from imbalance.errors import UsageError

log = logging.getLogger("imbalance")
_job_parent: dict[str, str] = {}  # the parent run id, in the process that runs a job
_active: list[SweepCallback] = []  # the sweep this process launched (Ctrl-C finishes it)


class SweepAborted(BaseException):
    """A sweep that cannot start; carries the UsageError that says why."""

    def __init__(self, error: UsageError):
        super().__init__(str(error))
        self.error = error


def current_parent_run_id() -> str | None:
    return _job_parent.get("run_id")


def active_sweep() -> SweepCallback | None:
    return _active[-1] if _active else None


class SweepCallback(Callback):
    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None
        self.total_jobs: int | None = None
        self._finished = True
        self._launcher_pid: int | None = None
        self._episodes: list[dict] = []  # summaries of jobs that ended in this, the launching, process

    # ------------------------------------------------------------------ launching process
    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        try:
            self._start(config)
        except UsageError as exc:
            raise SweepAborted(exc) from None

    def _start(self, config: Any) -> None:
        self.total_jobs = check_every_job(config)
        self._launcher_pid = os.getpid()
        _active.append(self)
        if not config.mlflow.enabled:
            return
        # Ray (when it launches the jobs): no usage reporting from this machine, and every
        # episode's lines shown rather than folded into "[repeated 2x across cluster]".
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        from imbalance.tracking.runs import owner_tags, reap_dead_runs
        from imbalance.tracking.store import ensure_experiment, masked, prepare_store, resolve_tracking_uri, run_url

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
        jobs = f"{self.total_jobs} episodes" if self.total_jobs else "episodes"
        print(f"sweep: {jobs} ({overrides}); parent run {self.parent_run_id} in experiment '{config.mlflow.experiment_name}': "
              f"{run_url(self.tracking_uri, self.experiment_id, self.parent_run_id)}", flush=True)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self.parent_run_id is None:
            return
        self._close("FINISHED")

    def interrupted(self) -> None:
        """Ctrl-C or SIGTERM in the launching process: runs in flight are already KILLED (each
        episode marks its own); mark the parent KILLED, print what finished, and say how to go on."""
        if self.parent_run_id is None or self._finished:
            print("\nInterrupted; nothing was recorded (mlflow.enabled=false)", flush=True)
            return
        from imbalance.tracking.runs import reap_dead_runs

        reap_dead_runs(self._client(), self.experiment_id)  # episodes of worker processes that died with the sweep
        done = self._close("KILLED")
        total = f"/{self.total_jobs}" if self.total_jobs else ""
        print(f"Interrupted: {done}{total} episodes done; rerun the same command with resume=true to run only the rest", flush=True)

    def _close(self, status: str) -> int:
        from mlflow.entities import Metric

        from imbalance.experiment.sweep_summary import format_summary, load_children, summary_of, sweep_metrics

        client = self._client()
        summary = summary_of(load_children(client, self.tracking_uri, self.experiment_id, self.parent_run_id))
        print(format_summary(summary, self.parent_run_id, partial=status != "FINISHED"), flush=True)
        if summary is not None:
            now = int(time.time() * 1000)
            client.log_batch(self.parent_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in sweep_metrics(summary).items()])
        client.set_terminated(self.parent_run_id, status=status)
        self._finished = True
        return len(summary.episodes) if summary is not None else 0

    def _abort_if_unfinished(self) -> None:
        """A crashed sweep must not leave its parent run RUNNING."""
        if self.parent_run_id and not self._finished:
            try:
                self._client().set_terminated(self.parent_run_id, status="FAILED")
            except Exception as exc:  # at exit, with the store perhaps gone: say so, do not raise
                log.warning("could not mark the sweep's parent run %s FAILED: %s", self.parent_run_id, exc)

    # ------------------------------------------------------------------ process that runs the job
    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        if self.parent_run_id:
            _job_parent["run_id"] = self.parent_run_id

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        if not self.parent_run_id:
            return
        from imbalance.experiment.sweep_summary import counts_from_runs, counts_from_summaries, load_children, progress_line

        value = getattr(job_return, "_return_value", None)
        episode = value if isinstance(value, dict) else None
        if os.getpid() == self._launcher_pid:  # basic and concurrent launchers: every job ends here
            if episode is not None:
                self._episodes.append(episode)
            counts = counts_from_summaries(self._episodes)
        else:  # a worker of joblib, Ray or SLURM sees its own jobs only: ask the store
            counts = counts_from_runs(load_children(self._client(), self.tracking_uri, self.experiment_id, self.parent_run_id))
        print(progress_line(config.hydra.job.get("num"), episode, counts, self.total_jobs), flush=True)

    def _client(self):
        from mlflow.tracking import MlflowClient

        import imbalance.tracking  # noqa: F401  (MLflow defaults before MLflow loads)

        return MlflowClient(self.tracking_uri)


def check_every_job(config: Any) -> int | None:
    """Check every value of the sweep before any job starts, and the pre-checks of the first
    job (key, data file, store): a bad element (`tau=0.5,2`) or a missing key otherwise stops
    the sweep midway, or once per job. Each swept value is checked once on top of the first
    job's configuration (not every combination: a 200-seed sweep is checked in about a second).
    Returns the number of jobs where the sweeper enumerates them up front (the basic sweeper)."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    from imbalance.config.checks import to_objects
    from imbalance.config.registry import GROUP_SCHEMAS
    from imbalance.data import check_data
    from imbalance.experiment import hydra_private
    from imbalance.experiment.build import precheck
    from imbalance.tasks import apply_task

    if "basic" not in str(config.hydra.sweeper.get("_target_", "")).lower():
        return None
    parsed = hydra_private.parse_overrides(list(config.hydra.overrides.task))
    jobs = hydra_private.basic_sweep_jobs(parsed)
    first_job = jobs[0] if jobs else []

    def compose(overrides: list[str]) -> Any:
        try:
            return hydra_private.compose_job(config, overrides)
        except HydraException as exc:
            raise UsageError(f"{' '.join(overrides)}: {str(exc).splitlines()[0]}") from None

    base = compose(first_job)
    checked = [to_objects(base)]
    for override in parsed:
        if not override.is_sweep_override() or not override.is_discrete_sweep() or override.is_hydra_override():
            continue
        key = override.key_or_group
        if key in GROUP_SCHEMAS:  # another option of a group: compose it
            for option in override.sweep_string_iterator():
                checked.append(to_objects(compose([o for o in first_job if not o.startswith(f"{key}=")] + [f"{key}={option}"])))
            continue
        for value in override.sweep_iterator():
            job = copy.deepcopy(base)
            try:
                with open_dict(job):
                    OmegaConf.update(job, key, hydra_private.convert_value(value), force_add=override.is_add() or override.is_force_add())
            except OmegaConfBaseException as exc:
                raise UsageError(f"{key}={value}: {str(exc).splitlines()[0]}") from None
            checked.append(to_objects(job))
    # A task_id plays its task-set row: an unknown id or an override contradicting it stops here.
    checked = [apply_task(job_config, explicit=list(config.hydra.overrides.task)) for job_config in checked]
    seen: set[str] = set()
    for job_config in checked:  # the key, the data file, the store: once per distinct setting
        key = repr((job_config.agent, job_config.source, job_config.mlflow))
        if key not in seen:
            seen.add(key)
            precheck(job_config)
    sources: set[str] = set()
    for job_config in checked:  # a file's rows, once per file (its first seed): a parsed file is cached for the jobs
        if repr(job_config.source) not in sources:
            sources.add(repr(job_config.source))
            check_data(job_config.source, job_config.seed)
    return len(jobs)
