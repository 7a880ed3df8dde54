"""Inspect AI: the task set as an `@task`, so epochs, pass@k reducers and the log viewer work.

    from inspect_ai import Epochs, eval
    from imbalance.integrations.inspect_task import imbalance_task
    eval(imbalance_task(split="lite"), model="openai/gpt-4o-mini", epochs=Epochs(4, ["mean", "pass_at_2"]))

- Samples: one per task-set row (id = task_id, metadata = the row); the input is
  imbalance.run's system and task prompt.
- Solver: builds the row's episode (TaskEpisode) per sample and epoch, then up to the row's
  `conv_steps` model turns, each followed by the budget reminder, as imbalance.run's
  conversation runs. It stops at submit_answer or when the model calls no tool; an
  unsubmitted episode is then submitted for it. Calls after a successful submit_answer in
  the same turn are not executed.
- Tools: the catalogue's, with each ToolSpec's JSON schema. Inspect validates arguments
  against it before a call and answers a mismatch itself, so such calls never reach the
  environment (and are not counted as invalid, unlike under imbalance.run). Inspect's
  schema type has no exclusive bounds: each parameter's description states its range, and
  the environment refuses a value on an open bound (e.g. smote ratio=0).
- Scorer `task_passed`: CORRECT when the episode passes; metadata holds test_f1, the
  margin to tau, the reward (reward=normalized via `overrides`), paid steps and invalid calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageSystem, ChatMessageUser
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, scorer, stderr
from inspect_ai.solver import Generate, TaskState, solver
from inspect_ai.tool import Tool, ToolDef, ToolParams
from inspect_ai.util import JSONSchema, store

from imbalance.env.tools import TOOLS, ToolSpec
from imbalance.integrations.episode import NOT_EXECUTED, TaskEpisode, row_prompts
from imbalance.integrations.signatures import param_description
from imbalance.tasks import load_taskset

OUTCOME = "imbalance/outcome"  # the store key the solver leaves for the scorer


def tool_params(spec: ToolSpec) -> ToolParams:
    schema = spec.json_schema()
    properties = {p.name: JSONSchema.model_validate({**schema["properties"][p.name], "description": param_description(p)}) for p in spec.params}
    return ToolParams(properties=properties, required=schema["required"])


def episode_tools(episode: TaskEpisode) -> list[Tool]:
    def bind(name: str):
        async def execute(**arguments: Any) -> str:
            if episode.over:
                return NOT_EXECUTED
            return await episode.acall(name, arguments)

        return execute

    return [ToolDef(bind(spec.name), name=spec.name, description=spec.description, parameters=tool_params(spec)).as_tool() for spec in TOOLS]


@solver
def play_episode(overrides: Sequence[str] = ()):
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        episode = await TaskEpisode.start(state.metadata, overrides)
        state.tools = episode_tools(episode)
        for _ in range(episode.config.budget.conv_steps):
            state = await generate(state, tool_calls="single")
            if episode.over or not state.output.message.tool_calls:
                break
            state.messages.append(ChatMessageUser(content=episode.reminder()))
        store().set(OUTCOME, await episode.afinish())
        return state

    return solve


@scorer(metrics=[accuracy(), stderr()])
def task_passed():
    async def score(state: TaskState, target: Target) -> Score:
        outcome = store().get(OUTCOME)
        if outcome is None:
            return Score(value=INCORRECT, explanation="the episode was not played")
        f1 = outcome["test_f1"]
        return Score(
            value=CORRECT if outcome["passed"] else INCORRECT,
            answer=None if f1 is None else f"{f1:.4f}",
            explanation=f"TEST F1 {f1:.4f} {'>=' if outcome['passed'] else '<'} tau {state.metadata['tau']} ({outcome['termination_reason']})" if f1 is not None else outcome["termination_reason"],
            metadata=outcome,
        )

    return score


@task
def imbalance_task(split: str = "lite", version: str | None = None, overrides: list[str] | None = None) -> Task:
    """Task-set rows as samples; `overrides` as for python -m imbalance.run (model=logreg, reward=normalized)."""
    overrides = list(overrides or [])
    rows = load_taskset(split, version)
    samples = [
        Sample(
            id=row["task_id"],
            input=[ChatMessageSystem(content=messages[0]["content"]), ChatMessageUser(content=messages[1]["content"])],
            target=str(row["tau"]),
            metadata=row,
        )
        for row, messages in zip(rows, row_prompts(rows, overrides))
    ]
    return Task(dataset=MemoryDataset(samples, name=f"imbalance-{rows[0]['version']}-{split}"), solver=play_episode(overrides), scorer=task_passed())
