"""The one module that uses Hydra's private API (hydra._internal), so a Hydra upgrade breaks
here, loudly, and nowhere else. tests/test_hydra_private.py exercises every function.

Why it is needed: a sweep checks each swept value before its first job. Only Hydra's basic
sweeper knows its job list up front, and it exposes no public way to ask for it.
"""

from __future__ import annotations

from typing import Any

from hydra.core.override_parser.types import Override


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
