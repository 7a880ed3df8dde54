"""verifiers (PrimeIntellect) 0.3: `load_environment(**kwargs)` returns a StatefulToolEnv.

    from imbalance.integrations.verifiers import load_environment
    env = load_environment()                                # the task set's lite split
    env = load_environment(split="train", overrides=["reward=normalized"])

- Dataset: one example per task-set row; `prompt` is imbalance.run's system and task prompt,
  `info` the row. Each rollout builds its own episode from the row (TaskEpisode).
- Tools: the catalogue's tools, added with `add_tool(..., args_to_skip=["episode"])` so the
  episode never appears in the model's schema; each tool definition is then the ToolSpec's
  own JSON schema (with its ranges). Calls are played as imbalance.run plays them: bad JSON
  arguments and unknown tools reach the environment and count as invalid calls, calls after
  a successful submit_answer in the same turn are not executed, and the budget reminder
  follows every turn. The rollout ends at submit_answer, when the model stops calling
  tools, or after the row's `conv_steps` turns; an unsubmitted episode is then submitted.
- Rubric: `task_reward` (weight 1): 1.0/0.0 for a pass, or the normalized F1 with
  `overrides=["reward=normalized"]`. Weight-0 metrics: `passed`, `test_f1`, `margin_to_tau`
  (TEST F1 - tau), `paid_steps_used`, `invalid_calls`.

verifiers 0.3 is pinned (<0.4): 0.4 replaced this API (StatefulToolEnv, Rubric, evaluate)
with `verifiers.v1` and requires openai<3, which breaks inspect-ai's OpenAI providers.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from typing import Any

import verifiers as vf
from verifiers.types import ToolMessage, UserMessage

from imbalance.env.tools import TOOLS, ToolSpec
from imbalance.integrations.episode import NOT_EXECUTED, TaskEpisode, row_prompts
from imbalance.integrations.signatures import as_tool_function
from imbalance.tasks import load_taskset

EPISODE = inspect.Parameter("episode", inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _tool(spec: ToolSpec):
    async def play(episode: TaskEpisode, **arguments: Any) -> str:
        return await episode.acall(spec.name, arguments)

    return as_tool_function(spec, play, leading=(EPISODE,))


class ImbalanceVerifiersEnv(vf.StatefulToolEnv):
    """Task-set episodes as verifiers rollouts (see the module docstring)."""

    def __init__(self, *, overrides: Sequence[str] = (), **kwargs: Any):
        super().__init__(tools=[], **kwargs)
        self.overrides = tuple(overrides)
        for spec in TOOLS:
            self.add_tool(_tool(spec), args_to_skip=["episode"])
            # The model sees the catalogue's schema itself, ranges included (not the one
            # verifiers derives from the Python signature).
            self.tool_defs[-1] = vf.Tool(name=spec.name, description=spec.description, parameters=spec.json_schema())

    async def setup_state(self, state: vf.State) -> vf.State:
        state["episode"] = await TaskEpisode.start(state["info"], self.overrides)
        return await super().setup_state(state)

    def update_tool_args(self, tool_name: str, tool_args: dict, messages: vf.Messages, state: vf.State, **kwargs: Any) -> dict:
        return {**tool_args, "episode": state["episode"]}

    async def env_response(self, messages: vf.Messages, state: vf.State, **kwargs: Any) -> vf.Messages:
        episode: TaskEpisode = state["episode"]
        replies: list = []
        if messages[-1].tool_calls and messages[-1].content is None:
            # verifiers sends the turn back as the model gave it; llama.cpp's server (and others
            # built on its chat templates) refuse an assistant message whose content is null.
            messages[-1].content = ""
        for call in messages[-1].tool_calls or []:
            if episode.over:
                replies.append(ToolMessage(role="tool", content=NOT_EXECUTED, tool_call_id=call.id))
                continue
            try:
                arguments = json.loads(call.arguments) if call.arguments else {}
            except (json.JSONDecodeError, TypeError):
                arguments = call.arguments  # the environment answers with an invalid-arguments error
            if call.name in self.tool_map and isinstance(arguments, dict):
                message = await self.call_tool(call.name, self.update_tool_args(call.name, arguments, messages, state), call.id)
            else:  # unknown tool or non-object arguments: recorded as an invalid call, as imbalance.run does
                message = ToolMessage(role="tool", content=await episode.acall(call.name, arguments), tool_call_id=call.id)
            replies.append(message)
        if episode.over:
            state["final_env_response"] = replies
            return replies
        return [*replies, UserMessage(role="user", content=episode.reminder())]

    @vf.stop
    async def conv_steps_reached(self, state: vf.State) -> bool:
        """The row's turn budget (budget.conv_steps), as imbalance.run's LLM agents have it."""
        episode = state.get("episode")
        return episode is not None and len(state["trajectory"]) >= episode.config.budget.conv_steps

    @vf.cleanup
    async def grade_episode(self, state: vf.State) -> None:
        """Submit for the model if it did not, and keep the outcome for the rubric. A rollout
        whose model calls failed is not graded (as termination_reason=error)."""
        episode = state.get("episode")
        if episode is not None and state.get("imbalance") is None:
            error = state.get("error")
            state["imbalance"] = await episode.afinish(error=repr(error) if error is not None else None)


def _outcome(state: vf.State) -> dict:
    return state.get("imbalance") or {}


async def task_reward(state: vf.State) -> float:
    """1.0 on a pass (reward=pass) or the normalized TEST F1 (reward=normalized)."""
    return float(_outcome(state).get("reward") or 0.0)


async def passed(state: vf.State) -> float:
    return 1.0 if _outcome(state).get("passed") else 0.0


async def test_f1(state: vf.State) -> float:
    return float(_outcome(state).get("test_f1") or 0.0)


async def margin_to_tau(state: vf.State) -> float:
    outcome = _outcome(state)
    return float(outcome["margin"]) if outcome.get("margin") is not None else 0.0


async def paid_steps_used(state: vf.State) -> float:
    return float(_outcome(state).get("steps_used") or 0)


async def invalid_calls(state: vf.State) -> float:
    return float(_outcome(state).get("invalid_tool_calls") or 0)


def rubric() -> vf.Rubric:
    return vf.Rubric(funcs=[task_reward, passed, test_f1, margin_to_tau, paid_steps_used, invalid_calls], weights=[1.0, 0.0, 0.0, 0.0, 0.0, 0.0])


def task_dataset(split: str = "lite", version: str | None = None, overrides: Sequence[str] = ()):
    """The split as a verifiers dataset: prompt (system + task messages), info (the row)."""
    from datasets import Dataset

    rows = load_taskset(split, version)
    return Dataset.from_list([{"prompt": prompt, "info": row} for row, prompt in zip(rows, row_prompts(rows, overrides))])


def load_environment(split: str = "lite", version: str | None = None, overrides: Sequence[str] = (), **kwargs: Any) -> vf.Environment:
    """A verifiers environment over a task-set split (default: lite, the quick evaluation).

    `overrides` are Hydra overrides of what the row leaves open (model=logreg,
    reward=normalized, budget.retrain_epochs=3); one that contradicts the row is refused.
    Other keyword arguments go to the verifiers environment (e.g. max_turns)."""
    dataset = task_dataset(split, version, overrides)
    kwargs.setdefault("env_args", {"split": split, "version": version, "overrides": list(overrides)})
    return ImbalanceVerifiersEnv(dataset=dataset, eval_dataset=dataset, rubric=rubric(), overrides=overrides, **kwargs)
