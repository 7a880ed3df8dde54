"""Agent backends, each behind the `Agent` interface (base.py); built from the `agent` config group."""

from __future__ import annotations

from typing import Any

from imbalance.agents.base import Agent, Toolbox

__all__ = ["Agent", "Toolbox", "make_agent"]


def make_agent(cfg: Any, *, seed: int) -> Agent:
    """The agent for one episode; `seed` is the episode's agent stream."""
    if cfg.name == "heuristic":
        from imbalance.agents.heuristic import HeuristicAgent

        return HeuristicAgent()
    if cfg.name == "random":
        from imbalance.agents.random_agent import RandomAgent

        return RandomAgent(seed=seed, max_calls=cfg.max_calls)
    raise ValueError(f"no agent backend named {cfg.name!r}")
