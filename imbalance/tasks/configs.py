"""From a task-set row to the configuration `python -m imbalance.run` would play.

A row fixes what makes the task: the data (source settings and seed), the bar `tau`, the
budget (paid actions and turns) and the oracle F1. Everything else (the model, the retrain
epochs, the agent, the reward mode, tracking) comes from the configuration as usual. An
override that contradicts the row is refused rather than silently ignored, so a run tagged
`task_id` always played that task.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from imbalance.config.checks import check
from imbalance.config.registry import GROUP_SCHEMAS
from imbalance.config.schema import Config
from imbalance.errors import UsageError
from imbalance.tasks.taskset import ROW_KEYS, task_row

# The configuration keys a row sets (`source` stands for the whole source group).
ROW_CONFIG_KEYS = ("seed", "tau", "oracle_f1", "budget.max_steps", "budget.conv_steps", "source")


def task_config(row: Mapping[str, Any], overrides: Sequence[str] = ()) -> Config:
    """The checked Config of `row`: conf/ composed with `overrides` (Hydra syntax, e.g.
    `model=logreg`, `reward=normalized`, `agent=openai`), then the row's settings."""
    from imbalance.config.compose import compose_config

    return apply_row(compose_config(list(overrides)), row, explicit=overrides)


def apply_task(config: Config, explicit: Sequence[str] = ()) -> Config:
    """`config` with its `task_id`'s row applied (unchanged when task_id is null). `explicit`
    holds the overrides the user typed: one that contradicts the row is a UsageError."""
    if config.task_id is None:
        return config
    return apply_row(config, task_row(config.task_id), explicit=explicit)


def apply_row(config: Config, row: Mapping[str, Any], *, explicit: Sequence[str] = ()) -> Config:
    row = task_fields(row)
    conflicts = [key for key in _explicit_row_keys(explicit) if key in row_mismatches(config, row)]
    if conflicts:
        key = conflicts[0]
        raise UsageError(
            f"task_id={row['task_id']} fixes {key} ({_show(row, key)}); drop the override of {key} "
            "(or drop task_id to play another task)"
        )
    settings = dict(row["source_settings"])
    schema = GROUP_SCHEMAS["source"].get(settings.get("name"))
    if schema is None:
        raise UsageError(f"task {row['task_id']}: unknown source schema {settings.get('name')!r}")
    config = dataclasses.replace(
        config,
        seed=int(row["seed"]),
        tau=float(row["tau"]),
        oracle_f1=None if row["oracle_f1"] is None else float(row["oracle_f1"]),
        task_id=str(row["task_id"]),
        source=schema(**settings),
        budget=dataclasses.replace(config.budget, max_steps=int(row["max_steps"]), conv_steps=int(row["conv_steps"])),
    )
    check(config)
    return config


def row_mismatches(config: Config, row: Mapping[str, Any]) -> list[str]:
    """The row's keys on which `config` differs from it (empty: the config plays the row)."""
    wanted, have = _row_values(task_fields(row)), _config_values(config)
    return [key for key in ROW_CONFIG_KEYS if wanted[key] != have[key]]


def check_plays_its_task(config: Config) -> None:
    """A run about to be tagged task_id=X must play X's row; UsageError otherwise."""
    if config.task_id is None:
        return
    mismatches = row_mismatches(config, task_row(config.task_id))
    if mismatches:
        raise UsageError(
            f"the configuration says task_id={config.task_id} but differs from that task in {', '.join(mismatches)}; "
            "build it with imbalance.tasks.task_config(row) or apply_task(config)"
        )


def task_fields(columns: Mapping[str, Any]) -> dict[str, Any]:
    """The row's own keys out of a dataset row that may carry more (prompt, info, ...)."""
    missing = [key for key in ROW_KEYS if key not in columns]
    if missing:
        raise UsageError(f"not a task-set row: missing {', '.join(missing)} (rows come from imbalance.tasks.load_taskset)")
    return {key: columns[key] for key in ROW_KEYS}


def _row_values(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "seed": row["seed"], "tau": row["tau"], "oracle_f1": row["oracle_f1"],
        "budget.max_steps": row["max_steps"], "budget.conv_steps": row["conv_steps"], "source": dict(row["source_settings"]),
    }


def _config_values(config: Config) -> dict[str, Any]:
    return {
        "seed": config.seed, "tau": config.tau, "oracle_f1": config.oracle_f1,
        "budget.max_steps": config.budget.max_steps, "budget.conv_steps": config.budget.conv_steps,
        "source": dataclasses.asdict(config.source),
    }


def _explicit_row_keys(overrides: Sequence[str]) -> list[str]:
    """Which row keys the typed overrides touch: `seed=5` -> seed, `source.n_train=9` and
    `source=kaggle` -> source, `budget=default` -> both budget keys."""
    keys: list[str] = []
    for override in overrides:
        key = override.split("=", 1)[0].strip().lstrip("+~")
        if key == "source" or key.startswith("source."):
            keys.append("source")
        elif key == "budget":
            keys += ["budget.max_steps", "budget.conv_steps"]
        elif key in ROW_CONFIG_KEYS:
            keys.append(key)
    return list(dict.fromkeys(keys))


def _show(row: Mapping[str, Any], key: str) -> str:
    if key == "source":
        settings = ", ".join(f"{k}={v}" for k, v in row["source_settings"].items() if k != "name")
        return f"{row['source']}: {settings}"
    return f"{key}={_row_values(row)[key]}"
