"""One episode's parts from a checked configuration: the single wiring of an episode.

The runner (one MLflow run per episode), calibration, the concurrent launcher, the trainer
integrations and the tests all build episodes here:

    config = compose_config(["agent=random", "seed=3"])    # or to_objects(cfg) under Hydra
    tracking_uri = precheck(config)                         # everything checkable, before any work
    setup = build_episode(config, tracking_uri=tracking_uri)
    result = play(setup.env, setup.agent)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from imbalance.agents import Agent, AgentContext, make_agent, require_api_key
from imbalance.config.schema import Config, LLMAgent, ReplayAgent, SyntheticSource
from imbalance.data import Splits, check_source, load_splits
from imbalance.env.environment import ImbalanceEnv
from imbalance.errors import UsageError
from imbalance.seeding import derive_seed


@dataclass
class EpisodeSetup:
    config: Config
    env: ImbalanceEnv
    agent: Agent
    data_seconds: float  # loading and splitting the data


def precheck(config: Config) -> str:
    """Every check that needs no data and no run: the API key, the data file, the store.
    Raises UsageError; returns the resolved tracking URI. A sweep runs it once, before its
    parent run exists; each episode runs it again (a job may run on another machine)."""
    from imbalance.tracking.store import probe_store, resolve_tracking_uri

    require_api_key(config.agent)
    check_source(config.source)
    if isinstance(config.agent, ReplayAgent):
        _check_replay_source(config.agent)
    tracking_uri = resolve_tracking_uri(config.mlflow.tracking_uri)
    if config.mlflow.enabled:
        probe_store(tracking_uri)
    return tracking_uri


def build_episode(config: Config, *, tracking_uri: str | None = None, parent_run_id: str | None = None, splits: Splits | None = None) -> EpisodeSetup:
    """The environment (its data loaded and split) and the agent, ready for `play`.

    `splits` lets many episodes of one (source, seed) share the data read-only. The store at
    `tracking_uri` is read only where the agent needs it: a replay's recorded calls, and the
    earlier episodes an LLM agent with `agent.history=true` is told about."""
    started = time.perf_counter()
    if splits is None:
        splits = load_splits(config.source, config.seed)
    data_seconds = time.perf_counter() - started
    env = ImbalanceEnv(
        splits, model=config.model, budget=config.budget, tau=config.tau, seed=config.seed,
        reward=config.reward, oracle_f1=oracle_f1(config) if config.reward == "normalized" else None,
    )
    context = AgentContext(
        seed=derive_seed(config.seed, f"agent/{config.trial}"),
        tau=config.tau,
        max_steps=config.budget.max_steps,
        conv_steps=config.budget.conv_steps,
        source=splits.description,
        history=_history(config, tracking_uri, parent_run_id),
        records=_replay_records(config, tracking_uri),
    )
    return EpisodeSetup(config, env, make_agent(config.agent, context), data_seconds)


def oracle_f1(config: Config) -> float | None:
    """The task's oracle F1 (reward=normalized's 1): `oracle_f1` when set (task-set rows set
    it), else the synthetic source's Bayes-optimal F1; None where neither is known."""
    if config.oracle_f1 is not None:
        return config.oracle_f1
    if isinstance(config.source, SyntheticSource):
        from imbalance.data.synthetic import bayes_optimal_f1

        return bayes_optimal_f1(config.source)
    return None


def _history(config: Config, tracking_uri: str | None, parent_run_id: str | None) -> list[list[dict]]:
    """Paid-action sets of earlier finished episodes: of this sweep inside a sweep, else of the experiment."""
    if not (isinstance(config.agent, LLMAgent) and config.agent.history and config.mlflow.enabled and tracking_uri):
        return []
    from imbalance.tracking.history import paid_action_history

    return paid_action_history(tracking_uri, config.mlflow.experiment_name, parent_run_id)


def _check_replay_source(agent: ReplayAgent) -> None:
    if bool(agent.run_id) == bool(agent.path):
        raise UsageError("agent=replay needs exactly one of agent.run_id=<MLflow run id> or agent.path=<tool_calls.json>")
    if agent.path and not Path(agent.path).is_file():
        raise UsageError(f"agent.path={agent.path}: no such file; point it at a tool_calls.json artifact")


def _replay_records(config: Config, tracking_uri: str | None) -> list[dict]:
    if not isinstance(config.agent, ReplayAgent):
        return []
    from imbalance.agents.replay import parse_records

    agent = config.agent
    _check_replay_source(agent)
    if agent.path:
        try:
            return parse_records(Path(agent.path).read_text(), agent.path)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"agent.path={agent.path} cannot be read: {exc}") from None
    from imbalance.tracking.store import read_artifact

    assert agent.run_id is not None
    return parse_records(read_artifact(tracking_uri, agent.run_id, "tool_calls.json"), f"run {agent.run_id}'s tool_calls.json")
