"""Composing a configuration from conf/ outside `python -m imbalance.run`.

Calibration, the task set, the trainer integrations, the benchmarks and the tests build
episodes from the same YAML options the command line uses, through `compose_config`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imbalance.config.registry import register_schemas
from imbalance.config.schema import Config

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
# Hydra's composer is a process-wide singleton that `initialize_config_dir` sets and clears;
# trainers build episodes in threads (Inspect's epochs, verifiers' rollouts), so one
# composition at a time or two initialisations collide.
_HYDRA_LOCK = threading.RLock()


def compose(overrides: Sequence[str] = (), *, hydra: bool = False) -> Any:
    """The DictConfig `python -m imbalance.run OVERRIDES` would run (Hydra's errors propagate)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with _HYDRA_LOCK:
        register_schemas()  # rewrites ConfigStore entries another composition may be reading
        if GlobalHydra.instance().is_initialized():  # inside a Hydra app (a launcher, a callback): compose beside it
            return hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=list(overrides), return_hydra_config=hydra)


def compose_config(overrides: Sequence[str] = ()) -> Config:
    """Checked dataclasses for OVERRIDES: UsageError for a value out of range, HydraException
    for an override Hydra cannot compose."""
    from imbalance.config.checks import to_objects

    return to_objects(compose(overrides))
