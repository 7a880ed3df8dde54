"""One episode = one MLflow run: pre-checks, resume, build, play with the console and the
tracker listening, then the final record. `run_episode` is what every launcher calls per job."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
from typing import Any

import imbalance
from imbalance.config.schema import Config
from imbalance.env.environment import GRADER_VERSION
from imbalance.experiment.build import build_episode, precheck
from imbalance.experiment.console import EpisodeConsole
from imbalance.experiment.episode import EpisodeResult, play

log = logging.getLogger("imbalance")

NOT_IDENTITY = ("mlflow", "resume", "rerun_of")  # where and how a run is stored, not what it is


def default_choices(config: Config) -> dict[str, str]:
    """The option of each group, when no Hydra run says which YAML option composed it."""
    return {"source": config.source.name, "model": config.model.name, "agent": config.agent.name, "budget": "default"}


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
    identity = {k: v for k, v in resolved.items() if k not in NOT_IDENTITY}
    task = {k: v for k, v in identity.items() if k != "trial"}
    def digest(tree):
        return hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return digest(identity), digest(task)


def run_episode(config: Config, choices: dict[str, str] | None = None, *, parent_run_id: str | None = None) -> dict[str, Any]:
    """Play one episode and record it; returns its summary (sweep progress and summaries use it)."""
    from imbalance.tasks import check_plays_its_task

    choices = choices or default_choices(config)
    check_plays_its_task(config)  # a run tagged task_id=X plays X's row
    tracking_uri = precheck(config)
    resolved = dataclasses.asdict(config)
    if config.resume:
        done = _already_finished(config, resolved, tracking_uri, parent_run_id)
        if done is not None:
            return done
    setup = build_episode(config, tracking_uri=tracking_uri, parent_run_id=parent_run_id)
    run = _start_run(config, choices, resolved, tracking_uri, parent_run_id) if config.mlflow.enabled else _no_run()
    console = EpisodeConsole(config.budget.max_steps)
    console.header(
        f"episode: agent={choices['agent']} source={choices['source']} model={choices['model']} seed={config.seed} "
        f"tau={config.tau} max_steps={config.budget.max_steps}" + (f" task_id={config.task_id}" if config.task_id else ""),
        setup.env.splits.description,
    )

    def on_call(record: dict, metrics: dict) -> None:
        console.on_call(record, metrics)
        run.log_step(record["index"], metrics)

    try:
        with run.trace(setup.agent.traced, f"episode {choices['agent']} seed={config.seed}", {"tau": config.tau, "seed": config.seed}) as (tracer, root):
            result = play(setup.env, setup.agent, on_call=on_call, tracer=tracer)
            if root is not None:
                root.set_outputs({"termination_reason": result.termination_reason, "test_f1": result.grade.test_f1 if result.grade else None})
    except BaseException as exc:  # a bug, Ctrl-C or SIGTERM: never leave the run RUNNING
        run.abort(exc)
        raise
    run.finish(**_final_record(result, setup, resolved))
    url = _run_url(run)
    normalized = setup.env.reward() if config.reward == "normalized" and result.grade is not None else None
    console.footer(result, config.tau, _run_hint(run, config, url), normalized_reward=normalized)
    return {
        "test_f1": result.grade.test_f1 if result.grade else None,
        "passed": result.passed if result.grade else None,
        "termination_reason": result.termination_reason,
        "steps_used": result.steps_used,
        "tool_calls": result.tool_calls,
        "invalid_tool_calls": result.invalid_tool_calls,
        "wall_seconds": result.wall_seconds,
        "seed": config.seed,
        "run_id": run.run_id,
        "url": url,
        "timings": {"data": setup.data_seconds, **setup.env.timings, "tracking": run.seconds},
    }


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


def _final_record(result: EpisodeResult, setup, resolved: dict) -> dict[str, Any]:
    """What the finished run holds: the final metrics, the tags and the artifacts."""
    from imbalance.tracking.store import masked

    env = setup.env
    metrics = {
        "time_data_seconds": setup.data_seconds,
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
            reward=env.reward(),  # in the configured mode (param `reward`); the grade is the same in both
        )
    tags = {
        "termination_reason": result.termination_reason,
        "paid_actions": json.dumps(env.state.paid_actions),
        # The prompt's data clause: the trajectory export writes a scripted agent's calls under
        # the prompt an LLM would have had, without loading the data again.
        "source_description": env.splits.description[:5000],
    }
    if result.limit:
        tags["limit"] = result.limit
    if result.error_message:
        tags["error_message"] = result.error_message[:5000]
    saved = copy.deepcopy(resolved)
    if saved["mlflow"].get("tracking_uri"):
        saved["mlflow"]["tracking_uri"] = masked(saved["mlflow"]["tracking_uri"])
    from omegaconf import OmegaConf

    artifacts = {
        "config.yaml": OmegaConf.to_yaml(OmegaConf.create(saved)),
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
