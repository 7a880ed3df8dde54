"""Wire one episode from a composed configuration: data, env, agent, MLflow run, console."""

from __future__ import annotations

import json
import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imbalance.config import Config, to_objects
from imbalance.seeding import derive_seed

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


def run_episode(cfg: DictConfig) -> dict[str, Any]:
    """One episode = one MLflow run. Returns the episode's summary (used by sweep callbacks)."""
    config: Config = to_objects(cfg)
    choices = hydra_choices(cfg)

    from imbalance.agents import AgentContext, make_agent, require_api_key
    from imbalance.console import EpisodeConsole
    from imbalance.data import load_splits
    from imbalance.env.environment import ImbalanceEnv
    from imbalance.episode import play
    from imbalance.tracking.store import resolve_tracking_uri

    require_api_key(config.agent)  # before minutes of data loading
    tracking_uri = resolve_tracking_uri(config.mlflow.tracking_uri)
    splits = load_splits(config.source, config.seed)
    env = ImbalanceEnv(splits, model=config.model, budget=config.budget, tau=config.tau, seed=config.seed)
    context = AgentContext(
        seed=derive_seed(config.seed, "agent"),
        tau=config.tau,
        max_steps=config.budget.max_steps,
        conv_steps=config.budget.conv_steps,
        source=splits.description,
        tracking_uri=tracking_uri,
        history=_history(config, tracking_uri) if getattr(config.agent, "history", False) else [],
    )
    agent = make_agent(config.agent, context)

    resolved = OmegaConf.to_container(cfg, resolve=True)
    tracker = _start_run(config, choices, resolved, tracking_uri) if config.mlflow.enabled else None
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
        _finish_run(tracker, result, resolved, env)
        from imbalance.tracking.store import ui_command

        hint = f"MLflow run {tracker.run_id} in experiment '{config.mlflow.experiment_name}'; browse: {ui_command(tracker.tracking_uri)}"
    console.footer(result, config.tau, hint)
    return summary


def _start_run(config: Config, choices: dict[str, str], resolved: dict, uri: str):
    from imbalance.tracking.episode_run import EpisodeRun
    from imbalance.tracking.store import prepare_store

    prepare_store(uri)
    tracker = EpisodeRun(uri, config.mlflow.experiment_name)
    params = {k: v for k, v in flatten(resolved).items() if not k.startswith("mlflow.")}
    tags = {"agent": choices["agent"], "source": choices["source"], "model": choices["model"]}
    tracker.start(run_name=f"{choices['agent']}-{choices['source']}-seed{config.seed}", params=params, tags=tags)
    return tracker


def _finish_run(tracker, result, resolved: dict, env) -> None:
    metrics = {
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
    artifacts = {
        "config.yaml": OmegaConf.to_yaml(OmegaConf.create(resolved)),
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


def _history(config: Config, tracking_uri: str) -> list[list[dict]]:
    """Paid-action sets of earlier finished episodes in this experiment (or sweep)."""
    from imbalance.tracking.history import paid_action_history

    return paid_action_history(tracking_uri, config.mlflow.experiment_name)
