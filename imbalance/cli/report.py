"""`python -m imbalance.report`: pass rates per agent and setting, read back from MLflow.

One episode is one noisy sample. Whether an agent works shows only as a pass rate over many
episodes, with an honest interval, next to the other agents and settings. This reads the
runs the episode runner wrote, for an experiment or for one sweep, prints one table row per
group (default: agent, model, source, budget, tau) and writes three plots. The stages live
in imbalance/analysis/ (episodes -> summary -> text, plots); this module is the command line.

Only the standard library and light project modules load at import. MLflow, numpy and
matplotlib load inside the functions that use them, so `--help` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import imbalance.tracking  # noqa: F401  (light: sets MLflow's environment defaults before MLflow loads)
from imbalance.analysis.episodes import DEFAULT_EXPERIMENT, Episode, group_value, load_episodes, resolve_source
from imbalance.analysis.plots import write_plots
from imbalance.analysis.summary import DEFAULT_GROUP_BY, summarise
from imbalance.analysis.text import format_report, header_line
from imbalance.cli.errors import ArgumentParser, command, first_line, require_writable_dir
from imbalance.errors import UsageError

REPORT_FILE = "report.txt"
ARTIFACT_DIR = "report"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m imbalance.report",
        description="Pass rates, TEST F1 and cost per agent and setting, read from MLflow; writes report.txt and PNG plots.",
    )
    parser.add_argument("--experiment", metavar="NAME", help=f"experiment to read (default: {DEFAULT_EXPERIMENT})")
    parser.add_argument("--sweep", metavar="PARENT_RUN_ID", help="read only the child runs of this sweep parent run; also logs the report to it under report/")
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow store (default: sqlite:///mlruns/mlflow.db under the current folder)")
    parser.add_argument("--tau", type=float, metavar="X", help="recompute pass/fail at this bar in [0, 1]: TEST F1 >= X within the budget")
    parser.add_argument("--out", type=Path, metavar="DIR", help="folder for report.txt and the PNGs (default: reports/<experiment or sweep id>)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--group-by", default=",".join(DEFAULT_GROUP_BY), metavar="KEYS", help=f"comma-separated tags or params (default: {','.join(DEFAULT_GROUP_BY)}; budget = budget.max_steps)")
    args = parser.parse_args(argv)
    if args.tau is not None and not 0.0 <= args.tau <= 1.0:  # also rejects nan
        raise UsageError(f"--tau must be in [0, 1]; got {args.tau:g}. Pass e.g. --tau 0.55")
    keys = [k.strip() for k in args.group_by.split(",")]
    if not all(keys) or len(set(keys)) != len(keys):
        raise UsageError(f"--group-by needs distinct comma-separated names; got {args.group_by!r}. E.g. --group-by agent,tau")
    args.group_by = tuple(keys)
    return args


def check_group_by(episodes: Sequence[Episode], group_by: Sequence[str]) -> None:
    """A misspelt key would put every run in one '-' column without saying so."""
    for name in group_by:
        if all(group_value(e, name) is None for e in episodes):
            raise UsageError(f"no run has a tag or param named '{name}'; fix --group-by (e.g. agent,model,source,budget,tau,seed)")


def report(args: argparse.Namespace) -> int:
    """Read the runs, print and save the report, write the plots. With --sweep, also log
    them to the sweep's parent run. Problems MLflow reports become UsageError."""
    from imbalance.tracking.store import require_store, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    require_store(uri, "pass --tracking-uri sqlite:///path/to/mlflow.db")

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(uri)
        source = resolve_source(client, uri, args.experiment, args.sweep)
        episodes = load_episodes(client, source)
    except MlflowException as exc:
        raise UsageError(f"MLflow could not read {uri}: {first_line(exc)}") from None
    if not episodes:
        hint = "the sweep has no finished child episodes; pass a sweep's parent run id" if source.sweep_run_id else "run some episodes first (python -m imbalance.run)"
        raise UsageError(f"no finished episode runs in {source.describe()}; {hint}")
    check_group_by(episodes, args.group_by)

    summaries = summarise(episodes, tau_override=args.tau, group_by=args.group_by)
    text = format_report(summaries, args.group_by, header_line(source, episodes, args.tau))
    print(text, end="")

    out: Path = args.out or source.default_out()
    require_writable_dir(out, "--out")
    try:
        report_path = out / REPORT_FILE
        report_path.write_text(text)
        plots = [] if args.no_plots else write_plots(summaries, args.group_by, out, args.tau)
    except OSError as exc:
        raise UsageError(f"cannot write to {out}: {exc.strerror or exc}; pass --out with a writable folder") from None

    print(f"\nReport: {report_path}")
    for path in plots:
        print(f"Plot:   {path}")
    if source.sweep_run_id:
        try:
            for path in [report_path, *plots]:
                client.log_artifact(source.sweep_run_id, str(path), ARTIFACT_DIR)
        except (MlflowException, OSError) as exc:
            raise UsageError(f"could not log the report to run {source.sweep_run_id}: {first_line(exc)}") from None
        print(f"Logged to run {source.sweep_run_id} under {ARTIFACT_DIR}/")
    return 0


@command
def main(argv: Sequence[str] | None = None) -> int:
    return report(parse_args(argv))
