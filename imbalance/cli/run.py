"""The Hydra entry point: `python -m imbalance.run [overrides]` runs one episode.

Only hydra and omegaconf are imported here, so `--help` and a bad override answer fast;
the episode's heavy machinery is imported once the configuration has composed.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from imbalance.cli.errors import exit_with
from imbalance.config import register_schemas
from imbalance.config.compose import CONF_DIR as CONF
from imbalance.errors import UsageError

register_schemas()


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
def main(cfg: DictConfig) -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    from imbalance.config.checks import to_objects
    from imbalance.experiment.runner import episode_config, run_episode
    from imbalance.experiment.sweep import current_parent_run_id

    try:
        # task_id=v1-eval-0003 plays that task-set row: its seed, data, tau and budget.
        config, choices = episode_config(to_objects(cfg), HydraConfig.get().overrides.task, HydraConfig.get().runtime.choices)
        return run_episode(config, choices, parent_run_id=current_parent_run_id())
    except UsageError as exc:
        exit_with(exc)


def print_help(overrides: list[str]) -> None:
    """`--help`, composed once. Hydra's own help lists every group by deep-copying its whole
    config store about a hundred times (over a second with the launcher plugins installed),
    and shows our schema/* groups as if they were choices."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict

    from imbalance.config.compose import compose

    try:
        cfg = compose(overrides, hydra=True)
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


INTERRUPTED_EXIT = 130  # the shell's code for a process ended by SIGINT
# Hydra's mutually exclusive modes; Hydra itself reports two of them with a traceback.
MODES = (("-r", "--run"), ("-m", "--multirun"), ("-c", "--cfg"), ("-i", "--info"), ("-sc", "--shell-completion"))


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM (a scheduler, `kill`) ends an episode as Ctrl-C does: its run KILLED, not RUNNING.
    raise KeyboardInterrupt


def cli() -> None:
    """`python -m imbalance.run` and the `imbalance-run` script."""
    from imbalance.experiment.sweep import SweepAborted, active_sweep

    args = sys.argv[1:]
    if ("--help" in args or "-h" in args) and not any(a.startswith("--hydra-help") or a in ("-m", "--multirun") for a in args):
        try:
            print_help([a for a in args if a not in ("--help", "-h")])
        except BrokenPipeError:  # `--help | head`: the reader left; nothing more to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    if sum(any(a == flag or a.startswith(flag + "=") for a in args for flag in mode) for mode in MODES) > 1:
        print("Only one of --run, --multirun, --cfg, --info and --shell_completion can be specified", file=sys.stderr)
        sys.exit(1)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
    except SweepAborted as exc:
        exit_with(exc.error)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the bookkeeping short
        sweep = active_sweep()
        if sweep is not None:
            sweep.interrupted()
        else:
            print("\nInterrupted: the episode's run is marked KILLED", file=sys.stderr, flush=True)
        sys.exit(INTERRUPTED_EXIT)


if __name__ == "__main__":
    cli()
