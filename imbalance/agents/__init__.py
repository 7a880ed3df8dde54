"""Agent backends, each behind the `Agent` interface (base.py), built from the `agent` config group."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from imbalance.agents.base import Agent, Toolbox
from imbalance.config.schema import HeuristicAgent, LLMAgent, NaiveAgent, OpenAIAgent, RandomAgent, ReplayAgent
from imbalance.errors import UsageError

__all__ = ["Agent", "AgentContext", "Toolbox", "make_agent", "require_api_key"]


@dataclass
class AgentContext:
    """What an agent may know besides its tools: the configuration-derived brief, never the data."""

    seed: int  # the episode's agent stream
    tau: float
    max_steps: int
    conv_steps: int
    source: str = ""
    history: list[list[dict]] = field(default_factory=list)  # paid-action sets of earlier episodes (agent.history)
    records: list[dict] = field(default_factory=list)  # the tool calls agent=replay re-executes


def require_api_key(cfg: Any) -> str | None:
    """The LLM backend's key from the environment (checked before any data is loaded)."""
    if not isinstance(cfg, LLMAgent):
        return None
    key = os.environ.get(cfg.api_key_env, "").strip()
    if not key:
        raise UsageError(
            f"agent={cfg.name} needs an API key in the environment variable {cfg.api_key_env}; export it "
            "(for local servers that ignore it, any value), or run offline with agent=heuristic or agent=random"
        )
    return key


def make_agent(cfg: Any, ctx: AgentContext) -> Agent:
    if isinstance(cfg, HeuristicAgent):
        from imbalance.agents.heuristic import HeuristicAgent as Heuristic

        return Heuristic()
    if isinstance(cfg, NaiveAgent):
        from imbalance.agents.naive import NaiveAgent as Naive

        return Naive()
    if isinstance(cfg, RandomAgent):
        from imbalance.agents.random_agent import RandomAgent as Random

        return Random(seed=ctx.seed, max_calls=cfg.max_calls)
    if isinstance(cfg, ReplayAgent):
        from imbalance.agents.replay import ReplayAgent as Replay

        return Replay(ctx.records)
    if isinstance(cfg, LLMAgent):
        return _make_llm_agent(cfg, ctx)
    raise TypeError(f"no agent backend for {type(cfg).__name__}")


def _make_llm_agent(cfg: LLMAgent, ctx: AgentContext) -> Agent:
    from imbalance.agents.llm.conversation import Limits
    from imbalance.agents.llm.conversation import LLMAgent as Conversation
    from imbalance.agents.llm.prompt import TaskBrief

    key = require_api_key(cfg)
    common = dict(
        api_key=key, model=cfg.model, base_url=cfg.base_url, max_tokens=cfg.max_tokens, temperature=cfg.temperature,
        top_p=cfg.top_p, max_retries=cfg.max_retries, timeout_s=cfg.timeout_s, tool_choice=cfg.tool_choice,
    )
    if isinstance(cfg, OpenAIAgent):
        from imbalance.agents.llm.openai_api import OpenAIBackend

        backend = OpenAIBackend(**common, seed=ctx.seed, max_tokens_param=cfg.max_tokens_param)
    else:
        from imbalance.agents.llm.anthropic_api import AnthropicBackend

        backend = AnthropicBackend(**common, prompt_caching=cfg.prompt_caching)
    brief = TaskBrief(tau=ctx.tau, max_steps=ctx.max_steps, conv_steps=ctx.conv_steps, source=ctx.source, history=ctx.history if cfg.history else [])
    limits = Limits(conv_steps=ctx.conv_steps, token_budget=cfg.token_budget, wall_clock_s=cfg.wall_clock_s, max_retries=cfg.max_retries)
    return Conversation(cfg.name, backend, brief, limits, submit_after_sweep=cfg.submit_after_sweep, secret=key)
