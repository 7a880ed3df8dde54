"""Wire one episode from a composed configuration: data, env, agent, MLflow run, console."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imbalance.config import Config, to_objects
from imbalance.seeding import derive_seed
from imbalance.sweep import current_parent_run_id

log = logging.getLogger("imbalance")


def hydra_choices(cfg: DictConfig) -> dict[str, str]:
    """Which option of each group composed this config (e.g. source=synthetic_original)."""
    choices = {"source": cfg.source.name, "model": cfg.model.name, "agent": cfg.agent.name, "budget": "default"}
    try:
        from hydra.core.hydra_config import HydraConfig

        runtime = HydraConfig.get().runtime.choices
        choices.update({k: str(v) for k, v in runtime.items() if k in choices and v is not None})
    except ValueError:  # composed outside @hydra.main (tests, notebooks)
        pass
    return choices


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


NOT_IDENTITY = ("mlflow", "resume", "rerun_of")  # where and how a run is stored, not what it is


def config_hashes(resolved: dict) -> tuple[str, str]:
    """(config_hash, task_hash): the episode's identity (resume skips a config with a finished
    run) and its task without the trial number (pass@k groups repeats of one task)."""
    identity = {k: v for k, v in resolved.items() if k not in NOT_IDENTITY}
    task = {k: v for k, v in identity.items() if k != "trial"}
    digest = lambda tree: hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return digest(identity), digest(task)


def run_episode(cfg: DictConfig) -> dict[str, Any]:
    """One episode = one MLflow run. Returns the episode's summary (used by sweep callbacks)."""
    config: Config = to_objects(cfg)
    choices = hydra_choices(cfg)

    from imbalance.agents import AgentContext, make_agent, require_api_key
    from imbalance.console import EpisodeConsole
    from imbalance.data import load_splits
    from imbalance.env.environment import ImbalanceEnv
    from imbalance.episode import play
    from imbalance.tracking.store import probe_store, resolve_tracking_uri

    require_api_key(config.agent)  # before minutes of data loading
    tracking_uri = resolve_tracking_uri(config.mlflow.tracking_uri)
    if config.mlflow.enabled:
        probe_store(tracking_uri)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    parent_run_id = current_parent_run_id()
    if config.resume and config.mlflow.enabled:
        done = _already_finished(config, resolved, tracking_uri, parent_run_id)
        if done is not None:
            return done
    started = time.perf_counter()
    splits = load_splits(config.source, config.seed)
    data_seconds = time.perf_counter() - started
    env = ImbalanceEnv(splits, model=config.model, budget=config.budget, tau=config.tau, seed=config.seed)
    context = AgentContext(
        seed=derive_seed(config.seed, f"agent/{config.trial}"),
        tau=config.tau,
        max_steps=config.budget.max_steps,
        conv_steps=config.budget.conv_steps,
        source=splits.description,
        tracking_uri=tracking_uri,
        history=_history(config, tracking_uri, parent_run_id) if getattr(config.agent, "history", False) else [],
    )
    agent = make_agent(config.agent, context)

    tracker = _start_run(config, choices, resolved, tracking_uri, parent_run_id) if config.mlflow.enabled else None
    tracer = _tracer(tracker) if tracker is not None and getattr(agent, "traced", False) else None
    if tracer is not None:
        agent.tracer = tracer
    console = EpisodeConsole(config.budget.max_steps)
    console.header(
        f"episode: agent={choices['agent']} source={choices['source']} model={choices['model']} seed={config.seed} "
        f"tau={config.tau} max_steps={config.budget.max_steps}",
        splits.description,
    )

    def on_call(record: dict, metrics: dict) -> None:
        console.on_call(record, metrics)
        if tracker is not None:
            tracker.log_step(record["index"], metrics)

    try:
        if tracer is None:
            result = play(env, agent, on_call=on_call)
        else:
            with tracer.episode(f"episode {choices['agent']} seed={config.seed}", {"tau": config.tau, "seed": config.seed}) as root:
                result = play(env, agent, on_call=on_call)
                root.set_outputs({"termination_reason": result.termination_reason, "test_f1": result.grade.test_f1 if result.grade else None})
            tracer.flush()
    except BaseException as exc:  # a bug or Ctrl-C: never leave the run RUNNING
        if tracker is not None:
            _abort_run(tracker, exc)
        raise

    summary = {
        "test_f1": result.grade.test_f1 if result.grade else None,
        "passed": result.passed if result.grade else None,
        "termination_reason": result.termination_reason,
        "steps_used": result.steps_used,
        "tool_calls": result.tool_calls,
        "invalid_tool_calls": result.invalid_tool_calls,
        "wall_seconds": result.wall_seconds,
        "seed": config.seed,
        "run_id": tracker.run_id if tracker else None,
    }
    hint = None
    if tracker is not None:
        _finish_run(tracker, result, resolved, env, data_seconds)
        from imbalance.tracking.store import ui_command

        hint = f"MLflow run {tracker.run_id} in experiment '{config.mlflow.experiment_name}'; browse: {ui_command(tracker.tracking_uri)}"
    console.footer(result, config.tau, hint)
    summary["timings"] = {"data": data_seconds, **env.timings, "tracking": tracker.seconds if tracker else 0.0}
    return summary


def _start_run(config: Config, choices: dict[str, str], resolved: dict, uri: str, parent_run_id: str | None):
    from imbalance.tracking.episode_run import EpisodeRun
    from imbalance.tracking.runs import owner_tags
    from imbalance.tracking.store import prepare_store

    started = time.perf_counter()
    prepare_store(uri)
    tracker = EpisodeRun(uri, config.mlflow.experiment_name)
    tracker.seconds = time.perf_counter() - started  # store preparation and client set-up count as tracking
    params = {k: v for k, v in flatten(resolved).items() if not k.startswith("mlflow.")}
    config_hash, task_hash = config_hashes(resolved)
    tags = {
        "agent": choices["agent"], "source": choices["source"], "model": choices["model"],
        "config_hash": config_hash, "task_hash": task_hash, **owner_tags(),
    }
    if config.rerun_of:
        tags["rerun_of"] = config.rerun_of
    trial = f"-trial{config.trial}" if config.trial else ""
    tracker.start(run_name=f"{choices['agent']}-{choices['source']}-seed{config.seed}{trial}", params=params, tags=tags, parent_run_id=parent_run_id)
    return tracker


def _finish_run(tracker, result, resolved: dict, env, data_seconds: float) -> None:
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
        )
    tags = {"termination_reason": result.termination_reason, "paid_actions": json.dumps(env.state.paid_actions)}
    if result.limit:
        tags["limit"] = result.limit
    if result.error_message:
        tags["error_message"] = result.error_message[:5000]
    from imbalance.tracking.store import masked

    saved = copy.deepcopy(resolved)
    if saved["mlflow"].get("tracking_uri"):
        saved["mlflow"]["tracking_uri"] = masked(saved["mlflow"]["tracking_uri"])
    artifacts = {
        "config.yaml": OmegaConf.to_yaml(OmegaConf.create(saved)),
        "tool_calls.json": result.records,
        **result.agent_artifacts,
    }
    tracker.finish(metrics=metrics, tags=tags, artifacts=artifacts)


def _abort_run(tracker, exc: BaseException) -> None:
    status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
    try:
        tracker.flush()
        tracker.finish(metrics={}, tags={"termination_reason": "error", "error_message": f"{type(exc).__name__}: {exc}"[:5000]}, artifacts={}, status=status)
    except Exception:  # the original error matters more than a failed bookkeeping write
        log.exception("could not mark run %s as %s", tracker.run_id, status)


def _tracer(tracker):
    from imbalance.tracking.tracing import MlflowTracer

    return MlflowTracer(tracker.tracking_uri, tracker.experiment_id, tracker.run_id)


def _history(config: Config, tracking_uri: str, parent_run_id: str | None) -> list[list[dict]]:
    """Paid-action sets of earlier finished episodes: of this sweep inside a sweep, else of the experiment."""
    from imbalance.tracking.history import paid_action_history

    return paid_action_history(tracking_uri, config.mlflow.experiment_name, parent_run_id)


def _already_finished(config: Config, resolved: dict, tracking_uri: str, parent_run_id: str | None) -> dict[str, Any] | None:
    """resume=true: the summary of this configuration's finished run, if it has one.

    A run skipped inside a resumed sweep moves under the new sweep's parent run, so the
    sweep's summary covers every configuration exactly once.
    """
    from mlflow.tracking import MlflowClient

    from imbalance.tracking.runs import finished_episode, reap_dead_runs
    from imbalance.tracking.store import ensure_experiment, prepare_store

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
        "skipped": True,
    }
