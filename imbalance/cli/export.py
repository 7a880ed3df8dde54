"""`python -m imbalance.export`: episode runs as a JSONL file of training trajectories.

    python -m imbalance.export --sweep PARENT_RUN_ID --out episodes.jsonl [--filter passed]
    python -m imbalance.export --run RUN_ID --out episode.jsonl
    python -m imbalance.export --experiment NAME --out episodes.jsonl

One line per graded episode (imbalance/analysis/trajectories.py says what a line holds);
episodes that ended in an infrastructure error are not graded and are skipped. The file is
written whole at the end (a temporary file renamed), and --out is checked before any run is
read. Loads with `datasets.load_dataset("json", data_files="episodes.jsonl")`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import imbalance.tracking  # noqa: F401  (light: sets MLflow's environment defaults before MLflow loads)
from imbalance.analysis.episodes import DEFAULT_EXPERIMENT
from imbalance.cli.errors import ArgumentParser, command, first_line, require_writable_dir
from imbalance.errors import UsageError

FILTERS = ("passed",)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m imbalance.export",
        description="Write episode runs as JSONL training trajectories: OpenAI-style messages with tool calls and results, "
        "the tool schemas, reward, TEST F1, pass, token usage, task id and versions.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sweep", metavar="PARENT_RUN_ID", help="the episodes of this sweep (the children of its parent run)")
    which.add_argument("--run", metavar="RUN_ID", help="one episode run")
    which.add_argument("--experiment", metavar="NAME", help=f"every finished episode of this experiment (default: {DEFAULT_EXPERIMENT})")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="the JSONL file to write (replaced if it exists)")
    parser.add_argument("--filter", choices=FILTERS, help="passed: keep only the episodes that passed (an SFT set)")
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow store (default: sqlite:///mlruns/mlflow.db under the current folder)")
    return parser.parse_args(argv)


def check_out(path: Path) -> None:
    """Before reading any run: --out must be a file we can create or replace."""
    if path.is_dir():
        raise UsageError(f"--out {path} is a folder; pass a file, e.g. --out episodes.jsonl")
    try:
        require_writable_dir(path.parent, "--out")
    except UsageError as exc:
        raise UsageError(f"{str(exc).split('; pass')[0]}; pass --out with a file in a writable folder") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"cannot write to {path}: permission denied; pass --out with a writable file")


def export(args: argparse.Namespace) -> int:
    from imbalance.tracking.store import masked, require_store, resolve_tracking_uri

    check_out(args.out)
    uri = resolve_tracking_uri(args.tracking_uri)
    require_store(uri, "pass --tracking-uri sqlite:///path/to/mlflow.db")

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from imbalance.analysis.trajectories import episode_line

    client = MlflowClient(uri)
    try:
        runs, where = _runs(client, uri, args)
        lines, errors = [], 0
        for run in runs:
            if run.data.tags.get("termination_reason") == "error" or "test_f1" not in run.data.metrics:
                errors += 1
                continue
            line = episode_line(run, _artifact_json(client, run.info.run_id, "tool_calls.json", required=True), _artifact_json(client, run.info.run_id, "transcript.json"))
            if args.filter != "passed" or line["passed"]:
                lines.append(line)
    except MlflowException as exc:
        raise UsageError(f"MLflow could not read {masked(uri)}: {first_line(exc)}") from None
    if not runs:
        raise UsageError(f"no finished episode runs in {where}; run some first (python -m imbalance.run)")
    _write(args.out, lines)
    passed = sum(line["passed"] for line in lines)
    kept = " (--filter passed)" if args.filter else ""
    skipped = f"; skipped {errors} error episode(s), which are not graded" if errors else ""
    print(f"Wrote {len(lines)} episode(s){kept} from {where} to {args.out}: {passed} passed{skipped}")
    return 0


def _runs(client, uri: str, args: argparse.Namespace) -> tuple[list, str]:
    from mlflow.exceptions import MlflowException

    from imbalance.analysis.episodes import resolve_source
    from imbalance.tracking.runs import search_all
    from imbalance.tracking.store import masked

    if args.run:
        try:
            run = client.get_run(args.run)
        except MlflowException:
            raise UsageError(f"no run {args.run} in {masked(uri)}; check the id (mlflow ui) or pass --tracking-uri") from None
        if "termination_reason" not in run.data.tags:
            raise UsageError(f"run {args.run} is not an episode (a sweep's parent run?); for a sweep pass --sweep {args.run}")
        if run.info.status != "FINISHED":
            raise UsageError(f"run {args.run} is {run.info.status}, not FINISHED: it holds no complete episode")
        return [run], f"run {args.run}"
    source = resolve_source(client, uri, args.experiment, args.sweep)
    query = "attributes.status = 'FINISHED'"
    if source.sweep_run_id:
        query += f" AND tags.`mlflow.parentRunId` = '{source.sweep_run_id}'"
    runs = [r for r in search_all(client, source.experiment_id, query) if "termination_reason" in r.data.tags]
    runs.sort(key=lambda r: (r.info.start_time or 0, r.info.run_id))
    return runs, source.describe()


def _artifact_json(client, run_id: str, name: str, required: bool = False):
    from mlflow.exceptions import MlflowException

    names = {a.path for a in client.list_artifacts(run_id)}
    if name not in names:
        if required:
            raise UsageError(f"run {run_id} has no {name} artifact; it is not a complete episode run")
        return None
    with tempfile.TemporaryDirectory(prefix="imbalance-export-") as folder:
        try:
            return json.loads(Path(client.download_artifacts(run_id, name, folder)).read_text())
        except (MlflowException, OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"run {run_id}: {name} cannot be read ({first_line(exc)})") from None


def _write(path: Path, lines: list[dict]) -> None:
    """All lines or nothing: a temporary file beside --out, renamed over it at the end."""
    try:
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as out:
            for line in lines:
                out.write(json.dumps(line, allow_nan=False) + "\n")
        os.replace(out.name, path)
    except OSError as exc:
        raise UsageError(f"cannot write to {path}: {exc.strerror or exc}; pass --out with a writable file") from None


@command
def main(argv: Sequence[str] | None = None) -> int:
    return export(parse_args(argv))
