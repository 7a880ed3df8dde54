"""One episode = one MLflow run: pre-checks, resume, build, play with the console and the
tracker listening, then the final record. `run_episode` is what every launcher calls per job."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import imbalance
from imbalance.config.schema import Config
from imbalance.env.results import GRADER_VERSION
from imbalance.env.reward import config_reward
from imbalance.experiment.build import build_episode, precheck
from imbalance.experiment.console import EpisodeConsole
from imbalance.experiment.episode import EpisodeResult, play

if TYPE_CHECKING:
    from imbalance.experiment.sessions import SessionPool

log = logging.getLogger("imbalance")

NOT_IDENTITY = ("mlflow", "resume", "rerun_of")  # where and how a run is stored, not what it is
# Settings added after runs already existed: at their default they are left out of the hashes,
# so earlier runs keep theirs (resume still finds them; pass@k still groups them with new ones).
ADDED_LATER = {"reward": "pass", "oracle_f1": None, "task_id": None, "budget.retrain_min_rows": 51_200, "budget.max_train_rows": None}
NOT_TASK = ("trial", "reward")  # repeats of one task: another trial, or the same grade paid otherwise


def default_choices(config: Config, runtime: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The option of each group: from Hydra's runtime choices where a Hydra job has them (e.g.
    source=synthetic_original), else the schema's name."""
    choices = {"source": config.source.name, "model": config.model.name, "agent": config.agent.name, "budget": "default"}
    choices.update({k: str(v) for k, v in (runtime or {}).items() if k in choices and v is not None})
    return choices


def episode_config(config: Config, overrides: Sequence[str], runtime_choices: Mapping[str, Any] | None) -> tuple[Config, dict[str, str]]:
    """A Hydra job's configuration and group options, with its `task_id`'s row applied
    (task_id=v1-eval-0003 plays that row's seed, data, tau and budget). `overrides` are the
    job's own: one that contradicts the row is refused."""
    from imbalance.tasks import apply_task, task_row

    config = apply_task(config, explicit=list(overrides))
    choices = default_choices(config, runtime_choices)
    if config.task_id is not None:
        choices["source"] = task_row(config.task_id)["source"]
    return config, choices


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def config_hashes(resolved: dict) -> tuple[str, str]:
    """(config_hash, task_hash): the episode's identity (resume skips a config with a finished
    run) and its task without the trial number (pass@k groups repeats of one task)."""
    identity = _without_later_defaults({k: v for k, v in resolved.items() if k not in NOT_IDENTITY})
    task = {k: v for k, v in identity.items() if k not in NOT_TASK}
    def digest(tree):
        return hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return digest(identity), digest(task)


def _without_later_defaults(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        dotted = prefix + key
        if dotted in ADDED_LATER and value == ADDED_LATER[dotted]:
            continue
        out[key] = _without_later_defaults(value, dotted + ".") if isinstance(value, dict) else value
    return out


def run_episode(config: Config, choices: dict[str, str] | None = None, *, parent_run_id: str | None = None,
                pool: SessionPool | None = None, console: str = "full", prefix: str = "",
                cancel: threading.Event | None = None) -> dict[str, Any]:
    """Play one episode and record it; returns its summary (sweep progress and summaries use it).

    `pool` serves the environment from worker processes; `console` is the account's mode
    (full, summary, silent); `cancel` stops the episode at its next tool call, as Ctrl-C does."""
    from imbalance.tasks import check_plays_its_task

    check_plays_its_task(config)  # a run tagged task_id=X plays X's row
    tracking_uri = precheck(config)
    if config.resume:
        done = _already_finished(config, dataclasses.asdict(config), tracking_uri, parent_run_id)
        if done is not None:
            return done
    setup = build_episode(config, tracking_uri=tracking_uri, parent_run_id=parent_run_id, pool=pool)
    try:
        recorder = EpisodeRecorder(config, choices, tracking_uri=tracking_uri, parent_run_id=parent_run_id, console=console, prefix=prefix)
        recorder.header(setup.env.description)
        try:
            with recorder.trace(setup.agent.traced) as (tracer, root):
                result = play(setup.env, setup.agent, on_call=recorder.on_call, tracer=tracer, cancel=cancel)
                if root is not None:
                    root.set_outputs({"termination_reason": result.termination_reason, "test_f1": result.grade.test_f1 if result.grade else None})
        except BaseException as exc:  # a bug, Ctrl-C or SIGTERM: never leave the run RUNNING
            recorder.abort(exc)
            raise
        return recorder.finish(result, setup.env, setup.data_seconds)
    finally:
        setup.env.close()


class EpisodeRecorder:
    """What one episode leaves behind: its MLflow run (a `NoRun` when tracking is off) and its
    console account. The runner drives it from `play`; the environment server from the steps
    its clients send."""

    def __init__(self, config: Config, choices: dict[str, str] | None = None, *, tracking_uri: str, parent_run_id: str | None = None,
                 console: str = "full", prefix: str = ""):
        self.config = config
        self.choices = choices or default_choices(config)
        self.resolved = dataclasses.asdict(config)
        self.run = _start_run(config, self.choices, self.resolved, tracking_uri, parent_run_id) if config.mlflow.enabled else _no_run()
        self.console = EpisodeConsole(config.budget.max_steps, console, prefix)
        if self.run.run_id is not None:
            with _ACTIVE_LOCK:
                ACTIVE_RUNS[self.run.run_id] = self.run

    def header(self, description: str) -> None:
        c = self.config
        self.console.header(
            f"episode: agent={self.choices['agent']} source={self.choices['source']} model={self.choices['model']} seed={c.seed} "
            f"tau={c.tau} max_steps={c.budget.max_steps}" + (f" task_id={c.task_id}" if c.task_id else ""),
            description,
        )

    def on_call(self, record: dict, metrics: dict) -> None:
        self.console.on_call(record, metrics)
        self.run.log_step(record["index"], metrics)

    def trace(self, traced: bool):
        c = self.config
        return self.run.trace(traced, f"episode {self.choices['agent']} seed={c.seed}", {"tau": c.tau, "seed": c.seed})

    def abort(self, exc: BaseException, message: str | None = None) -> None:
        self._forget()
        self.run.abort(exc, message)

    def finish(self, result: EpisodeResult, env: Any, data_seconds: float) -> dict[str, Any]:
        self._forget()
        reward = config_reward(self.config, result.grade) if result.grade is not None else None
        self.run.finish(**_final_record(result, env, data_seconds, self.resolved, reward))
        url = _run_url(self.run)
        normalized = reward if self.config.reward == "normalized" else None
        self.console.footer(result, self.config.tau, _run_hint(self.run, self.config, url), normalized_reward=normalized)
        return {
            "test_f1": result.grade.test_f1 if result.grade else None,
            "passed": result.passed if result.grade else None,
            "termination_reason": result.termination_reason,
            "steps_used": result.steps_used,
            "tool_calls": result.tool_calls,
            "invalid_tool_calls": result.invalid_tool_calls,
            "wall_seconds": result.wall_seconds,
            "seed": self.config.seed,
            "run_id": self.run.run_id,
            "url": url,
            "timings": {"data": data_seconds, **env.timings, "tracking": self.run.seconds},
        }

    def _forget(self) -> None:
        with _ACTIVE_LOCK:
            ACTIVE_RUNS.pop(self.run.run_id, None)


# The runs this process is writing, by id: a launcher interrupted while episodes wait on an
# LLM reply marks what is still here KILLED before it exits.
ACTIVE_RUNS: dict[str, Any] = {}
_ACTIVE_LOCK = threading.Lock()


def version_tags(config: Config) -> dict[str, str]:
    """What a result is comparable with: the package, the grading rule and, for an episode
    of the task set, its row."""
    tags = {"imbalance.version": imbalance.__version__, "grader_version": GRADER_VERSION}
    if config.task_id is not None:
        tags["task_id"] = config.task_id
    return tags


def _no_run():
    from imbalance.tracking.episode_run import NoRun

    return NoRun()


def _start_run(config: Config, choices: dict[str, str], resolved: dict, uri: str, parent_run_id: str | None):
    from imbalance.tracking.episode_run import EpisodeRun
    from imbalance.tracking.runs import owner_tags

    run = EpisodeRun(uri, config.mlflow.experiment_name)
    params = {k: v for k, v in flatten(resolved).items() if not k.startswith("mlflow.")}
    config_hash, task_hash = config_hashes(resolved)
    tags = {
        "agent": choices["agent"], "source": choices["source"], "model": choices["model"],
        "config_hash": config_hash, "task_hash": task_hash, **owner_tags(), **version_tags(config),
    }
    if config.rerun_of:
        tags["rerun_of"] = config.rerun_of
    trial = f"-trial{config.trial}" if config.trial else ""
    run.start(run_name=f"{choices['agent']}-{choices['source']}-seed{config.seed}{trial}", params=params, tags=tags, parent_run_id=parent_run_id)
    return run


def _final_record(result: EpisodeResult, env: Any, data_seconds: float, resolved: dict, reward: float | None) -> dict[str, Any]:
    """What the finished run holds: the final metrics, the tags and the artifacts."""
    from imbalance.tracking.store import masked

    metrics = {
        "time_data_seconds": data_seconds,
        "steps_used": result.steps_used,
        "tool_calls": result.tool_calls,
        "invalid_tool_calls": result.invalid_tool_calls,
        "wall_seconds": result.wall_seconds,
        **{f"time_{k}_seconds": v for k, v in env.timings.items()},
        **result.agent_metrics,
    }
    if result.grade is not None:
        metrics.update(
            test_f1=result.grade.test_f1,
            test_precision=result.grade.test_precision,
            test_recall=result.grade.test_recall,
            passed=float(result.grade.passed),
            baseline_test_f1=result.grade.baseline_test_f1,
            reward=reward,  # in the configured mode (param `reward`); the grade is the same in both
        )
    tags = {
        "termination_reason": result.termination_reason,
        "paid_actions": json.dumps(env.state.paid_actions),
        # The prompt's data clause: the trajectory export writes a scripted agent's calls under
        # the prompt an LLM would have had, without loading the data again.
        "source_description": env.description[:5000],
    }
    if result.limit:
        tags["limit"] = result.limit
    if result.error_message:
        tags["error_message"] = result.error_message[:5000]
    saved = copy.deepcopy(resolved)
    if saved["mlflow"].get("tracking_uri"):
        saved["mlflow"]["tracking_uri"] = masked(saved["mlflow"]["tracking_uri"])
    import yaml

    artifacts = {
        # What OmegaConf.to_yaml writes for these plain values, at a third of its cost.
        "config.yaml": yaml.dump(saved, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True),
        "tool_calls.json": result.records,
        **result.agent_artifacts,
    }
    return {"metrics": metrics, "tags": tags, "artifacts": artifacts}


def _run_url(run) -> str | None:
    if run.run_id is None:
        return None
    from imbalance.tracking.store import run_url

    return run_url(run.tracking_uri, run.experiment_id, run.run_id)


def _run_hint(run, config: Config, url: str | None) -> str | None:
    if url is None:
        return None
    from imbalance.tracking.store import ui_command

    hint = f"MLflow run {run.run_id} in experiment '{config.mlflow.experiment_name}': {url}"
    if not run.tracking_uri.startswith(("http://", "https://")):
        hint += f"\n  (serve the UI first: {ui_command(run.tracking_uri)})"
    return hint


def _already_finished(config: Config, resolved: dict, tracking_uri: str, parent_run_id: str | None) -> dict[str, Any] | None:
    """resume=true: the summary of this configuration's finished run, if it has one.

    A run skipped inside a resumed sweep moves under the new sweep's parent run, so the
    sweep's summary covers every configuration exactly once.
    """
    from mlflow.tracking import MlflowClient

    from imbalance.tracking.runs import finished_episode, reap_dead_runs
    from imbalance.tracking.store import ensure_experiment, prepare_store, run_url

    prepare_store(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment_id = ensure_experiment(client, config.mlflow.experiment_name, tracking_uri)
    reap_dead_runs(client, experiment_id)
    run = finished_episode(client, experiment_id, config_hashes(resolved)[0])
    if run is None:
        return None
    old_parent = run.data.tags.get("mlflow.parentRunId")
    if parent_run_id and old_parent != parent_run_id:
        if old_parent:
            client.set_tag(run.info.run_id, "previous_parent_run_id", old_parent)
        client.set_tag(run.info.run_id, "mlflow.parentRunId", parent_run_id)
    m = run.data.metrics
    log.info("resume: seed=%s already finished as run %s (TEST F1 %.4f); skipped", config.seed, run.info.run_id, m.get("test_f1", float("nan")))
    return {
        "test_f1": m.get("test_f1"),
        "passed": bool(m["passed"]) if "passed" in m else None,
        "termination_reason": run.data.tags.get("termination_reason"),
        "seed": config.seed,
        "run_id": run.info.run_id,
        "url": run_url(tracking_uri, experiment_id, run.info.run_id),
        "skipped": True,
    }
