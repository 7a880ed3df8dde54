"""`hydra/launcher=concurrent`: a multirun's episodes in flight at once, in one process.

An LLM episode mostly waits on its API. Here each episode runs in a thread of this process
(at most `max_concurrency` at a time) and every environment operation goes to a
`SessionPool` of `cpu_workers` processes, so the API waits overlap while the CPU work never
exceeds the cores. Per job this does what Hydra's `run_job` does for the other launchers —
compose the job's configuration, call the sweep callbacks, save the job's `.hydra/` files,
return a `JobReturn` — except what is process-wide (the working directory, the logging set-up,
`HydraConfig`), which is done once for the sweep.

Console: with tracking on, the sweep callback prints one progress line per finished episode;
with it off, each episode prints its grade line, prefixed with its job. Ctrl-C stops new
episodes, stops those in flight at their next tool call (runs KILLED), marks KILLED what is
still waiting on an API after a grace period, and leaves the partial summary to the command line.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger("imbalance")
GRACE_SECONDS = 10.0  # for episodes waiting on an API reply when Ctrl-C arrives


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
    from hydra.core.utils import configure_log, setup_globals

    from imbalance.config.checks import to_objects

    setup_globals()
    config, context = launcher.config, launcher.hydra_context
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    jobs = [_compose(context, config, list(overrides), initial_job_idx + i, sweep_dir) for i, overrides in enumerate(job_overrides)]
    if not jobs:
        launcher.take_pool().close()
        return []
    configure_log(jobs[0].hydra.job_logging, jobs[0].hydra.verbose)
    tracked = bool(jobs[0].mlflow.enabled)
    pool = launcher.take_pool()
    log.info("launching %d episodes, %d at a time; training, SMOTE and evaluation on %d worker process(es)", len(jobs), launcher.max_concurrency, pool.workers)

    from imbalance.experiment.build import warm_up
    from imbalance.tracking.episode_run import many_episodes

    with pool, many_episodes():
        for kind in {repr((j.agent, j.mlflow.enabled)): j for j in jobs}.values():
            warm_up(to_objects(_without_hydra(kind)))
        pool.ready()
        return _run_all(launcher, jobs, pool, tracked)


def _run_all(launcher: Any, jobs: list[DictConfig], pool: Any, tracked: bool) -> list:
    from hydra.core.utils import JobReturn, JobStatus

    from imbalance.config.checks import to_objects
    from imbalance.experiment.runner import ACTIVE_RUNS, episode_config, run_episode
    from imbalance.experiment.sweep import current_parent_run_id

    context = launcher.hydra_context
    done: queue.Queue = queue.Queue()
    cancel = threading.Event()
    returns: dict[int, Any] = {}
    pending = list(jobs)
    in_flight = 0

    def run(job: DictConfig, task_cfg: DictConfig) -> None:
        ret = JobReturn()
        ret.cfg, ret.hydra_cfg, ret.overrides = task_cfg, job, list(job.hydra.overrides.task)
        ret.working_dir, ret.task_name = str(Path.cwd()), job.hydra.job.name
        try:
            num = job.hydra.job.num
            config, choices = episode_config(to_objects(task_cfg), job.hydra.overrides.task, job.hydra.runtime.get("choices"))
            ret.return_value = run_episode(
                config, choices, parent_run_id=current_parent_run_id(), pool=pool,
                console="silent" if tracked else "summary", prefix=f"[job {num}] ", cancel=cancel,
            )
            ret.status = JobStatus.COMPLETED
        except Exception as exc:  # a job's failure is its JobReturn's, as under run_job
            ret.return_value, ret.status = exc, JobStatus.FAILED
            log.error("[job %s] failed: %s: %s", job.hydra.job.num, type(exc).__name__, exc)
        except BaseException as exc:  # cancelled: the run is already KILLED
            ret.return_value, ret.status = exc, JobStatus.FAILED
        done.put((job, ret))

    try:
        while pending or in_flight:
            while pending and in_flight < launcher.max_concurrency:
                job = pending.pop(0)
                task_cfg = _without_hydra(job)
                _save_job_files(job, task_cfg)
                context.callbacks.on_job_start(config=job, task_function=launcher.task_function)
                threading.Thread(target=run, args=(job, task_cfg), name=f"episode-{job.hydra.job.num}", daemon=True).start()
                in_flight += 1
            job, ret = done.get()
            in_flight -= 1
            returns[job.hydra.job.num] = ret
            context.callbacks.on_job_end(config=job, job_return=ret)
    except KeyboardInterrupt:
        cancel.set()
        deadline = time.monotonic() + GRACE_SECONDS
        while in_flight and time.monotonic() < deadline:
            try:
                done.get(timeout=0.2)
                in_flight -= 1
            except queue.Empty:
                pass
        for run_id, episode_run in list(ACTIVE_RUNS.items()):  # still waiting on an API reply
            episode_run.abort(KeyboardInterrupt())
            ACTIVE_RUNS.pop(run_id, None)
        raise
    return [returns[job.hydra.job.num] for job in jobs]


class ComposedOnce:
    """A config loader that composes a sweep's jobs cheaply and keeps them until the launcher
    takes them. Hydra's basic sweeper composes every job of a batch to validate it, then hands
    the batch to the launcher, which would compose each job again; and each composition costs
    about 0.2 s, so 64 jobs took half a minute before the first episode started. Jobs that
    differ only in values are derived from one composed job (`SweepComposer`). Anything else
    is the wrapped loader's."""

    def __init__(self, loader: Any):
        from imbalance.experiment.hydra_private import SweepComposer

        self._loader = loader
        self._composer = SweepComposer(loader)
        self._kept: dict[tuple[str, ...], DictConfig] = {}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        job = self._composer.load_sweep_config(master_config, sweep_overrides)
        self._kept[tuple(sweep_overrides)] = job
        return job

    def take(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        kept = self._kept.pop(tuple(sweep_overrides), None)
        return kept if kept is not None else self._composer.load_sweep_config(master_config, sweep_overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def _compose(context: Any, config: DictConfig, overrides: list[str], num: int, sweep_dir: Path) -> DictConfig:
    loader = context.config_loader
    job = loader.take(config, overrides) if isinstance(loader, ComposedOnce) else loader.load_sweep_config(config, overrides)
    with open_dict(job):
        job.hydra.job.id = num
        job.hydra.job.num = num
        job.hydra.runtime.output_dir = str((sweep_dir / str(OmegaConf.select(job, "hydra.sweep.subdir"))).absolute())
    Path(job.hydra.runtime.output_dir).mkdir(parents=True, exist_ok=True)
    return job


def _without_hydra(job: DictConfig) -> DictConfig:
    """The task's configuration, as run_job hands it to the task function: a copy without the
    `hydra` node. A whole copy keeps the root typed as Config, so to_objects converts it in
    about a millisecond; a copy of the task's keys alone (OmegaConf.masked_copy) is cheaper
    but untyped, and to_objects then rebuilds it from the schema at ten times the cost."""
    task_cfg = copy.deepcopy(job)
    with open_dict(task_cfg):
        del task_cfg["hydra"]
    return task_cfg


def _save_job_files(job: DictConfig, task_cfg: DictConfig) -> None:
    """The job's `.hydra/` files, as run_job saves them for the other launchers."""
    if job.hydra.output_subdir is not None:
        folder = Path(job.hydra.runtime.output_dir) / str(job.hydra.output_subdir)
        folder.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(task_cfg, folder / "config.yaml")
        OmegaConf.save(job.hydra.overrides.task, folder / "overrides.yaml")
