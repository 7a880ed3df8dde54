"""OpenEnv's task API over the task set (imbalance.tasks), for the served environment.

openenv 0.10 exposes these methods of an `Environment` as HTTP routes (`GET /imbalance/splits`,
`POST /imbalance/tasks`, `/num_tasks`, `/task`, `/task_range`: the Open Reward Standard's
shape) and passes `reset`'s keyword arguments through, so a client picks a row:

    reset(split="eval", index=3)        the row v1-eval-0003 (the current version)
    reset(task_id="v1-eval-0003")       the same row
    reset(seed=S)                       the server's own configuration, as before

A task spec is the row itself (task_id, seed, tau, budget, source settings). The methods are
metadata only: openenv calls them on a fresh environment that never plays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imbalance.config.schema import Config
from imbalance.errors import UsageError
from imbalance.tasks import SPLITS, apply_row, load_taskset, task_row

# OpenEnv's split types are train, validation and test; `lite` is the first rows of `eval`.
SPLIT_TYPES = {"train": "train", "eval": "test", "lite": "test"}


class TaskAPI:
    """The task-discovery methods of OpenEnv's `TaskProvider` protocol (structural: no base)."""

    def list_splits(self) -> list[dict[str, Any]]:
        return [{"name": split, "type": SPLIT_TYPES[split], "num_tasks": len(load_taskset(split))} for split in SPLITS]

    def list_tasks(self, split: str) -> list[dict[str, Any]]:
        return load_taskset(split)

    def num_tasks(self, split: str) -> int:
        return len(load_taskset(split))

    def get_task(self, split: str, index: int) -> dict[str, Any]:
        rows = load_taskset(split)
        if not 0 <= index < len(rows):
            raise IndexError(f"split {split} has {len(rows)} tasks (indices 0 to {len(rows) - 1}); got {index}")
        return rows[index]

    def get_task_range(self, split: str, start: int | None = None, stop: int | None = None) -> list[dict[str, Any]]:
        return load_taskset(split)[start:stop]


def selected_row(split: str | None, index: int | None, task_id: str | None) -> Mapping[str, Any] | None:
    """The row a reset names (None: it names none). UsageError when it names one wrongly."""
    if task_id is not None:
        if split is not None or index is not None:
            raise UsageError("reset takes a task either by task_id or by split and index, not both")
        return task_row(task_id)
    if split is None and index is None:
        return None
    if split is None or index is None:
        raise UsageError(f"reset by split and index needs both; got split={split!r}, index={index!r}")
    if split not in SPLITS:
        raise UsageError(f"unknown task-set split {split!r}; the splits are {', '.join(SPLITS)}")
    try:
        return TaskAPI().get_task(split, int(index))
    except IndexError as exc:
        raise UsageError(str(exc)) from None


def row_config(config: Config, row: Mapping[str, Any]) -> Config:
    """The server's configuration playing `row`: the row fixes data, seed, tau and budget; the
    rest (model, retrain epochs, reward mode, MLflow) stays the server's."""
    return apply_row(config, row)
