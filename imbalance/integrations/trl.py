"""TRL: an environment class for `GRPOTrainer(environment_factory=ImbalanceToolEnv)`.

    from trl import GRPOConfig, GRPOTrainer
    from imbalance.integrations.trl import ImbalanceToolEnv, task_dataset

    trainer = GRPOTrainer(model=..., args=GRPOConfig(..., max_tool_calling_iterations=20),
                          train_dataset=task_dataset("train"), environment_factory=ImbalanceToolEnv)

TRL's contract, and how this class meets it:
- `reset(**row)` is called before every rollout with every dataset column; it builds the
  row's episode (TaskEpisode) and returns the task prompt, which TRL appends to the last
  user message (`task_dataset` leaves that message empty and holds the system prompt).
- Every public method other than reset and get_reward is a tool: one per ToolSpec, with a
  typed keyword-only signature and a Google-style docstring that transformers'
  `get_json_schema` turns into the tool's schema (ranges are in each parameter's text).
  So the class has no other public attribute that is a function.
- `get_reward()` submits for the model if it did not (as imbalance.run's runner does) and
  returns the reward: 1.0/0.0 for a pass, or the normalized F1 under reward=normalized.

Other settings (model=logreg, reward=normalized) go in `overrides`:
`environment_factory=functools.partial(ImbalanceToolEnv, overrides=["reward=normalized"])`;
`record=True` also makes each rollout an MLflow run (off by default). Rollouts in threads train
side by side on the process's session pool (integrations/episode.py), with the numbers each
gets alone.
TRL adds no budget reminder between turns (imbalance.run and the verifiers adapter do).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from imbalance.env.tools import TOOLS, ToolSpec
from imbalance.integrations.episode import TaskEpisode, row_prompts
from imbalance.integrations.signatures import as_tool_function
from imbalance.tasks import load_taskset

SELF = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)


class ImbalanceToolEnv:
    """One task-set episode per rollout; its tools are the catalogue's (added below)."""

    def __init__(self, overrides: Sequence[str] = (), *, record: bool = False):
        self._overrides = tuple(overrides)
        self._record = record
        self._episode: TaskEpisode | None = None

    def reset(self, **row: Any) -> str:
        """Build the episode of this dataset row; returns the task prompt."""
        self._episode = TaskEpisode(row, self._overrides, record=self._record)
        return self._episode.messages[-1]["content"]

    def get_reward(self) -> float:
        """The episode's reward (submitting first, if the model did not)."""
        return float(self._current().finish()["reward"])

    def _current(self) -> TaskEpisode:
        if self._episode is None:
            raise RuntimeError("call reset(**row) before the tools")
        return self._episode


def _method(spec: ToolSpec):
    def play(self: ImbalanceToolEnv, **arguments: Any) -> str:
        return self._current().call(spec.name, arguments)

    return as_tool_function(spec, play, leading=(SELF,))


for _spec in TOOLS:
    setattr(ImbalanceToolEnv, _spec.name, _method(_spec))


def task_dataset(split: str = "train", version: str | None = None, overrides: Sequence[str] = ()):
    """The split as a TRL dataset: `prompt` = the system prompt and an empty user message
    (reset appends the task), plus the row's columns, which TRL passes to reset."""
    from datasets import Dataset

    rows = load_taskset(split, version)
    return Dataset.from_list([{"prompt": [messages[0], {"role": "user", "content": ""}], **row} for row, messages in zip(rows, row_prompts(rows, overrides))])
