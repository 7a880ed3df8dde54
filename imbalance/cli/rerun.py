"""Rerun an episode from its saved config.yaml: `python scripts/rerun.py RUN_ID [overrides] [--replay]`.

The saved configuration becomes explicit Hydra overrides on top of conf/, so the rerun goes
through the normal command (`python -m imbalance.run`) with its checks, tracking and sweep
support; overrides given here win, and overriding a group (agent=replay) drops the saved
values of that group. The new run is tagged `rerun_of=RUN_ID`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from imbalance.cli.errors import ArgumentParser, command
from imbalance.config.registry import GROUPS

NOT_CARRIED = ("resume", "rerun_of")  # a rerun is a new run, never skipped


def hydra_value(value: Any) -> str:
    """A value in Hydra's override grammar (strings always quoted, so no character is special)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def overrides_for(saved: dict, tags: dict[str, str], user: list[str], run_id: str) -> list[str]:
    user_keys = {o.split("=", 1)[0].lstrip("+~") for o in user}
    out: list[str] = []
    for group in GROUPS:
        if group in user_keys:
            continue  # the user chose another option: the saved values of this group do not apply
        option = tags.get(group) or (saved.get(group) or {}).get("name", "default")
        out.append(f"{group}={option}")
        for key, value in (saved.get(group) or {}).items():
            if f"{group}.{key}" not in user_keys:
                out.append(f"{group}.{key}={hydra_value(value)}")
    for key, value in saved.items():
        if key in GROUPS or key in NOT_CARRIED:
            continue
        if isinstance(value, dict):
            out += [f"{key}.{k}={hydra_value(v)}" for k, v in value.items() if f"{key}.{k}" not in user_keys]
        elif key not in user_keys:
            out.append(f"{key}={hydra_value(value)}")
    return [*out, *user, f"rerun_of={run_id}"]


@command
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="scripts/rerun.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id", help="the MLflow run to rerun")
    parser.add_argument("overrides", nargs="*", default=[], metavar="override", help="Hydra overrides applied on top of the saved configuration")
    parser.add_argument("--replay", action="store_true", help="re-execute the recorded tool calls (agent=replay): reproduces the TEST F1 exactly")
    parser.add_argument("--tracking-uri", default=None, help="where the run is stored (default: ./mlruns)")
    parser.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    args = parser.parse_intermixed_args(argv)  # overrides may come before or after the flags

    import yaml

    import imbalance.tracking  # noqa: F401  (MLflow defaults)
    from imbalance.tracking.store import read_artifact, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    saved = yaml.safe_load(read_artifact(uri, args.run_id, "config.yaml", how="pass --tracking-uri"))
    from mlflow.tracking import MlflowClient

    tags = MlflowClient(uri).get_run(args.run_id).data.tags
    user = list(args.overrides)
    if args.replay:
        user = ["agent=replay", f"agent.run_id={args.run_id}", *user]
    if args.tracking_uri:
        user.append(f"mlflow.tracking_uri={hydra_value(args.tracking_uri)}")
    command = [sys.executable, "-m", "imbalance.run", *overrides_for(saved, tags, user, args.run_id)]
    if args.dry_run:
        print(" ".join(command))
        return 0
    return subprocess.call(command)
