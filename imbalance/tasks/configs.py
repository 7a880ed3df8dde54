"""From a task-set row to the configuration `python -m imbalance.run` would play.

A row fixes what makes the task: the data (source settings and seed), the bar `tau`, the
budget (paid actions and turns) and the oracle F1. Everything else (the model, the retrain
epochs, the agent, the reward mode, tracking) comes from the configuration as usual. An
override that contradicts the row is refused rather than silently ignored, so a run tagged
`task_id` always played that task.

A row that names a `task_id` of the task set must be that task: every field the task set
generates for the id must match (a trainer's row with tau=0 or another data path is refused,
not played under the id). A row without a task id is a custom task: played as given (its values
checked like any configuration) and never tagged with a task-set id.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from imbalance.config.checks import check
from imbalance.config.constraints import short_repr
from imbalance.config.registry import GROUP_SCHEMAS
from imbalance.config.schema import Config
from imbalance.errors import UsageError
from imbalance.tasks.taskset import ROW_KEYS, task_row

# The configuration keys a row sets (`source` stands for the whole source group).
ROW_CONFIG_KEYS = ("seed", "tau", "oracle_f1", "budget.max_steps", "budget.conv_steps", "source")
CUSTOM_KEYS = tuple(key for key in ROW_KEYS if key not in ("task_id", "version"))  # what a custom row must give
CUSTOM_VERSION = "custom"  # the `version` of a row without a task id


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
    row = checked_row(row)
    name = row["task_id"] or "the custom task"
    conflicts = [key for key in _explicit_row_keys(explicit) if key in row_mismatches(config, row)]
    if conflicts:
        key = conflicts[0]
        raise UsageError(
            f"{'task_id=' + row['task_id'] if row['task_id'] else 'the custom task'} fixes {key} ({_show(row, key)}); drop the override of {key} "
            "(or drop task_id to play another task)"
        )
    settings = row["source_settings"]
    schema = GROUP_SCHEMAS["source"].get(settings.get("name")) if isinstance(settings, Mapping) and isinstance(settings.get("name"), str) else None
    if schema is None:
        shown = short_repr(settings.get("name") if isinstance(settings, Mapping) else settings)
        raise UsageError(f"{name}: source_settings.name must be one of {', '.join(GROUP_SCHEMAS['source'])}; got {shown}")
    known = {f.name for f in dataclasses.fields(schema)}
    unknown = [str(k) for k, v in settings.items() if k not in known and v is not None]
    if unknown:
        raise UsageError(f"{name}: {short_repr(unknown[0])} is not a setting of source={settings['name']}; the settings are {', '.join(sorted(known))}")
    config = dataclasses.replace(
        config,
        seed=_number(row, "seed", int),
        tau=_number(row, "tau", float),
        oracle_f1=None if row["oracle_f1"] is None else _number(row, "oracle_f1", float),
        task_id=row["task_id"],
        source=_typed_source(name, schema, {k: v for k, v in settings.items() if k in known}),
        budget=dataclasses.replace(config.budget, max_steps=_number(row, "max_steps", int), conv_steps=_number(row, "conv_steps", int)),
    )
    check(config)
    return config


def _typed_source(name: str, schema: type, settings: dict[str, Any]) -> Any:
    """The settings typed as Hydra types an override (n_train="abc" is refused, not compared
    with a range later)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), settings))
    except OmegaConfBaseException as exc:
        raise UsageError(f"{name}: source_settings do not fit source={settings.get('name')}: {str(exc).splitlines()[0]}") from None


def checked_row(columns: Mapping[str, Any]) -> dict[str, Any]:
    """The row a trainer gives, as it will be played: for a task-set id, the task set's own row
    (UsageError if a given field differs from it, or the id is not generated by any version);
    without a task id, a custom row (task_id None, version "custom")."""
    task_id = columns.get("task_id")
    if task_id is None:
        missing = [key for key in CUSTOM_KEYS if key not in columns]
        if missing:
            raise UsageError(f"a row without task_id is a custom task and needs {', '.join(CUSTOM_KEYS)}; missing {', '.join(missing)} "
                             "(task-set rows come from imbalance.tasks.load_taskset)")
        return {**{key: columns[key] for key in CUSTOM_KEYS}, "task_id": None, "version": CUSTOM_VERSION}
    generated = task_row(task_id)
    for key, wanted in generated.items():
        if key in columns and not _same(columns[key], wanted):
            raise UsageError(
                f"the row says task_id={generated['task_id']} but its {key} differs from that task's ({short_repr(columns[key])}, "
                f"not {short_repr(wanted)}); pass the row as imbalance.tasks.load_taskset returns it, or drop task_id to play a custom task"
            )
    return generated


def _same(given: Any, wanted: Any) -> bool:
    """Equal as the task set generated it. A dataset library that stores rows as columns fills
    keys other rows have with None (Arrow structs): those count as absent."""
    if isinstance(wanted, Mapping):
        return (isinstance(given, Mapping) and all(_same(given.get(k), v) for k, v in wanted.items())
                and all(v is None for k, v in given.items() if k not in wanted))
    if isinstance(wanted, (list, tuple)):
        return isinstance(given, (list, tuple)) and len(given) == len(wanted) and all(map(_same, given, wanted))
    if isinstance(wanted, bool) or isinstance(given, bool):
        return given is wanted
    if isinstance(wanted, numbers.Real) and isinstance(given, numbers.Real):  # numpy's int64 from a DataFrame too
        return given == wanted
    return type(given) is type(wanted) and given == wanted


def _number(row: Mapping[str, Any], key: str, kind: type) -> Any:
    value = row[key]
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and (kind is float or float(value).is_integer())
    if not ok:
        raise UsageError(f"{row['task_id'] or 'the custom task'}: {key} must be {'an integer' if kind is int else 'a number'}; got {short_repr(value)}")
    return kind(value)


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
    """The row's own keys out of a dataset row that may carry more (prompt, info, ...), checked
    against the task set (`checked_row`)."""
    return checked_row(columns)


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
