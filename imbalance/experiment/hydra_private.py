"""The one module that uses Hydra's private API (hydra._internal), so a Hydra upgrade breaks
here, loudly, and nowhere else. tests/test_hydra_private.py exercises every function.

Why it is needed: a sweep checks each swept value before its first job. Only Hydra's basic
sweeper knows its job list up front, and it exposes no public way to ask for it. And a sweep
of many jobs composes each in about 0.2 s; `SweepComposer` derives the jobs that differ only
in plain values from one composed job instead.
"""

from __future__ import annotations

import copy
from typing import Any

from hydra.core.override_parser.types import Override, OverrideType, ValueType
from omegaconf import DictConfig, OmegaConf, open_dict


def parse_overrides(overrides: list[str]) -> list[Override]:
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    loader = GlobalHydra.instance().config_loader()
    return OverridesParser.create(config_loader=loader).parse_overrides(overrides)


def basic_sweep_jobs(parsed: list[Override]) -> list[list[str]]:
    """Every job's overrides, in the order the basic sweeper launches them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    batches = BasicSweeper.split_arguments(parsed, None)
    return [list(job) for batch in batches for job in batch]


def compose_job(config: Any, overrides: list[str]) -> Any:
    """The configuration Hydra would give the job with these overrides (without `hydra`)."""
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    job = GlobalHydra.instance().config_loader().load_sweep_config(config, overrides)
    with open_dict(job):
        del job["hydra"]
    return job


def convert_value(value: Any) -> Any:
    """A parsed sweep element as the plain value OmegaConf takes."""
    return Override._convert_value(value)


class SweepComposer:
    """Hydra's `load_sweep_config`, cheaper for sweeps over values.

    Hydra composes every job from scratch: it reads the defaults list and the config files and
    merges them, about 0.2 s a job, 13 s before a 64-seed sweep starts. Two jobs whose
    overrides differ only in values of plain keys (`seed=3` against `seed=4`: no config group,
    no `+`/`~`, no `hydra.` key, not a dict or a list) have the same defaults list and the same
    merge; they differ in those keys, in `hydra.overrides.task` and in
    `hydra.job.override_dirname`. Such a job is the first one composed, copied, with its
    values applied by Hydra's own override code; anything else is composed by Hydra.
    tests/test_hydra_private.py checks the derived jobs equal Hydra's, node for node."""

    def __init__(self, loader: Any):
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self._loader = loader
        self._parser = OverridesParser.create()
        self._template: tuple[Any, list[Override], DictConfig] | None = None  # (master, parsed, job)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        parsed = self._parser.parse_overrides(list(sweep_overrides))
        job = self._derive(master_config, parsed)
        if job is None:
            job = self._loader.load_sweep_config(master_config, list(sweep_overrides))
            if self._template is None:
                self._template = (master_config, parsed, copy.deepcopy(job))
        return job

    def _derive(self, master_config: DictConfig, parsed: list[Override]) -> DictConfig | None:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname

        if self._template is None or self._template[0] is not master_config or len(parsed) != len(self._template[1]):
            return None
        if not hasattr(self._loader, "repository"):  # a loader that is not Hydra's: it composes
            return None
        changed = []
        for mine, theirs in zip(parsed, self._template[1]):
            if mine.input_line == theirs.input_line:
                continue
            if not (self._plain_value(mine) and self._plain_value(theirs) and mine.key_or_group == theirs.key_or_group):
                return None
            changed.append(mine)
        job = copy.deepcopy(self._template[2])
        ConfigLoaderImpl._apply_overrides_to_config(changed, job)
        task = [o for o in parsed if not o.is_hydra_override()]
        with open_dict(job.hydra):
            job.hydra.overrides.task = [o.input_line for o in task]
            naming = job.hydra.job.config.override_dirname
            job.hydra.job.override_dirname = get_overrides_dirname(
                overrides=task, kv_sep=naming.kv_sep, item_sep=naming.item_sep, exclude_keys=naming.exclude_keys
            )
        OmegaConf.copy_cache(from_config=master_config, to_config=job)
        return job

    def _plain_value(self, override: Override) -> bool:
        """An override that sets the value of an existing key and touches nothing else."""
        return (
            override.type == OverrideType.CHANGE
            and override.value_type == ValueType.ELEMENT
            and override.package is None
            and not override.is_hydra_override()
            and not isinstance(override.value(), (dict, list))
            and not self._loader.repository.group_exists(override.key_or_group)
        )
