"""The Hydra entry point: `python -m imbalance.run [overrides]` runs one episode.

Only hydra and omegaconf are imported here, so `--help` and a bad override answer fast;
the episode's heavy machinery is imported once the configuration has composed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from imbalance.config import register_schemas
from imbalance.errors import UsageError, exit_with

register_schemas()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, Any]:
    from imbalance.runner import run_episode

    try:
        return run_episode(cfg)
    except UsageError as exc:
        exit_with(exc)


CONF = Path(__file__).resolve().parents[1] / "conf"


def print_help(overrides: list[str]) -> None:
    """`--help`, composed once. Hydra's own help lists every group by deep-copying its whole
    config store about a hundred times (over a second with the launcher plugins installed),
    and shows our schema/* groups as if they were choices."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict

    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    except HydraException as exc:
        print(f"{exc}\nSet the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.", file=sys.stderr)
        sys.exit(1)
    groups = [f"{group.name}: {', '.join(sorted(p.stem for p in group.glob('*.yaml')))}" for group in sorted(CONF.iterdir()) if group.is_dir() and group.name != "hydra"]
    launchers = sorted(p.stem for p in (CONF / "hydra" / "launcher").glob("*.yaml"))
    groups.append(f"hydra/launcher: joblib, {', '.join(launchers)} (with -m)")
    hydra_cfg = cfg.hydra
    with open_dict(cfg):
        del cfg["hydra"]
    print(hydra_cfg.help.header)
    print("== Configuration groups ==\nCompose your configuration from those groups (group=option)\n")
    print("\n".join(groups))
    print("\n== Config ==\nOverride anything in the config (foo.bar=value)\n")
    print(OmegaConf.to_yaml(cfg))
    print(hydra_cfg.help.footer)


def cli() -> None:
    """`python -m imbalance.run` and the `imbalance-run` script."""
    args = sys.argv[1:]
    if ("--help" in args or "-h" in args) and not any(a.startswith("--hydra-help") or a in ("-m", "--multirun") for a in args):
        try:
            print_help([a for a in args if a not in ("--help", "-h")])
        except BrokenPipeError:  # `--help | head`: the reader left; nothing more to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    main()


if __name__ == "__main__":
    cli()
