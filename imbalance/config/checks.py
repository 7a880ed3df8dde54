"""From a composed DictConfig to checked dataclasses: ranges, combinations, unknown keys, paths.

Every value the project checks itself is checked here, before any work starts; a problem
is a UsageError whose message names the key, what it got and a value to paste instead.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from imbalance.config.constraints import Interval, short_repr
from imbalance.config.registry import GROUP_SCHEMAS
from imbalance.config.schema import Config
from imbalance.errors import UsageError

# Keys that hold a file or folder: stored absolute, so a saved config.yaml reruns from any folder.
PATH_KEYS = ("source.path", "source.cache_dir", "agent.path")


def check(obj: Any, prefix: str = "") -> None:
    """Raise UsageError for the first value outside its declared range."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check(value, f"{key}.")
            continue
        interval: Interval | None = f.metadata.get("range")
        if interval is None:
            continue
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is not None and v not in interval:
                raise UsageError(f"{key} must be in {interval}; got {short_repr(v)}. Override it, e.g. {key}={_example(interval, f)}")
    extra = getattr(obj, "check_combination", None)
    if extra is not None:
        extra(prefix)


def _example(interval: Interval, f: dataclasses.Field) -> str:
    """A value the user can paste: the default when it is valid, else an end of the range,
    written as the field's type (`model.seed=0`, not `0.0`; a list as `[64,32]`)."""
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
    if isinstance(default, list):
        return "[" + ",".join(map(str, default)) + "]"
    if isinstance(default, (int, float)) and not isinstance(default, bool) and default in interval:
        return str(default)
    value = interval.low if interval.low is not None and not interval.low_open else interval.high
    integer = "int" in str(f.type) and "float" not in str(f.type)
    return str(int(value)) if integer and value is not None else str(value)


def to_objects(cfg: Any) -> Config:
    """DictConfig -> checked dataclasses (the only place the run converts config).

    A config composed from conf/ is already typed. A saved, resolved config.yaml loaded
    with --config-path/--config-name is not: each group node is then typed by its `name`.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    schema = OmegaConf.get_type(cfg)
    if not (isinstance(schema, type) and issubclass(schema, Config)):
        try:
            cfg = _structured(cfg)
        except OmegaConfBaseException as exc:
            raise UsageError(f"the configuration does not fit the schema: {str(exc).splitlines()[0]}") from None
    config: Config = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    for group, options in GROUP_SCHEMAS.items():
        if getattr(config, group) is None:  # `~agent` or `agent=null` removed the group
            raise UsageError(f"no {group} chosen; pick one of {', '.join(options)}, e.g. {group}={next(iter(options))}")
    _reject_unknown_keys(OmegaConf.to_container(cfg, resolve=True), dataclasses.asdict(config))
    check(config)
    _make_paths_absolute(config)
    return config


def _reject_unknown_keys(given: dict, known: dict, prefix: str = "") -> None:
    """A key added with `+` (which Hydra's own error suggests for a typo) would otherwise be
    dropped silently: the episode would run without the setting the user meant."""
    import difflib

    for key, value in given.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
            hint = f"did you mean {prefix}{close[0]}? " if close else ""
            raise UsageError(f"{prefix}{key} is not a setting; {hint}`python -m imbalance.run --help` lists them")
        if isinstance(value, dict) and isinstance(known[key], dict):
            _reject_unknown_keys(value, known[key], f"{prefix}{key}.")


def _structured(cfg: Any) -> Any:
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True)
    typed = OmegaConf.structured(Config)
    for group, options in GROUP_SCHEMAS.items():
        node = plain.get(group) or {}
        option = node.get("name", "default") if isinstance(node, dict) else None
        if option not in options:
            raise UsageError(f"{group}.name must be one of {', '.join(options)}; got {option!r}")
        typed[group] = OmegaConf.merge(OmegaConf.structured(options[option]), node)
        plain.pop(group, None)
    return OmegaConf.merge(typed, plain)


def _make_paths_absolute(config: Config) -> None:
    for key in PATH_KEYS:
        group, name = key.split(".")
        node = getattr(config, group)
        value = getattr(node, name, None)
        if value:
            setattr(node, name, str(Path(value).expanduser().absolute()))
