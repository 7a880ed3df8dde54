"""Where runs go: the embedded store (SQLite + artifacts under ./mlruns) or a tracking server."""

from __future__ import annotations

import re
from pathlib import Path

DEFAULT_DIR = "mlruns"


def resolve_tracking_uri(tracking_uri: str | None, workdir: Path | None = None) -> str:
    """`None` means the embedded store in `<workdir>/mlruns/mlflow.db`."""
    if tracking_uri:
        return tracking_uri
    root = (workdir or Path.cwd()) / DEFAULT_DIR
    return f"sqlite:///{root.resolve() / 'mlflow.db'}"


def default_artifact_location(tracking_uri: str, experiment_name: str) -> str | None:
    """Artifacts of the embedded store sit beside its database, a folder per experiment;
    a tracking server decides its own."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment_name).strip("._") or "experiment"
        return (db.parent / "artifacts" / folder).resolve().as_uri()
    return None


def masked(text: str) -> str:
    """Any password in a URI within `text` replaced by *** (what may be printed, logged or
    stored): `postgresql://user:secret@db/mlflow` -> `postgresql://user:***@db/mlflow`."""
    return re.sub(r"(://[^/@:\s]*):[^/\s]*@", r"\1:***@", text)


def ui_command(tracking_uri: str) -> str:
    tracking_uri = masked(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri}"
    uri = tracking_uri
    cwd_db = f"sqlite:///{(Path.cwd() / DEFAULT_DIR / 'mlflow.db').resolve()}"
    if uri == cwd_db:
        uri = f"sqlite:///{DEFAULT_DIR}/mlflow.db"
    return f"mlflow ui --backend-store-uri {uri}"


def prepare_store(tracking_uri: str) -> None:
    """Create the folder and the database once (a fresh SQLite store migrated by several
    processes at once races; callers run this in the parent before any job starts)."""
    fresh = False
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        db.parent.mkdir(parents=True, exist_ok=True)
        fresh = not db.exists()
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri).search_experiments(max_results=1)
    if fresh:
        # Write-ahead logging lets parallel episodes write without queueing behind readers
        # (about 3.5x faster with 4 writers); the mode is stored in the file itself.
        import sqlite3

        with sqlite3.connect(db) as connection:
            connection.execute("PRAGMA journal_mode=WAL")


def ensure_experiment(client, name: str, tracking_uri: str) -> str:
    """The experiment id for `name`, created if needed (safe when two processes race)."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=default_artifact_location(tracking_uri, name))
    except MlflowException:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def require_store(tracking_uri: str, how: str) -> None:
    """A local store must exist before reading from it: MlflowClient would silently create
    an empty one (in the wrong folder), and the user would see 'no such run' instead."""
    from imbalance.errors import UsageError

    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri[len("sqlite:///") :])
        if not path.is_file():
            raise UsageError(f"no MLflow store at {path}; run from the folder that holds mlruns/ or {how}")
    elif tracking_uri.startswith("file:") or "://" not in tracking_uri:
        path = Path(tracking_uri.removeprefix("file://").removeprefix("file:"))
        if not path.exists():
            raise UsageError(f"no MLflow store at {path}; {how}")


def download_artifact(tracking_uri: str | None, run_id: str, name: str) -> Path:
    """A run's artifact as a local file; UsageError when the store, run or artifact is missing."""
    import tempfile

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from imbalance.errors import UsageError

    uri = resolve_tracking_uri(tracking_uri)
    require_store(uri, "set mlflow.tracking_uri")
    client = MlflowClient(uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise UsageError(f"no run {run_id} in {uri}; check the id (mlflow ui) or set mlflow.tracking_uri") from None
    try:
        return Path(client.download_artifacts(run_id, name, tempfile.mkdtemp(prefix="imbalance-")))
    except (MlflowException, OSError):
        raise UsageError(f"run {run_id} has no {name} artifact") from None
