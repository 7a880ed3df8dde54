"""Where runs go: the embedded store (SQLite + artifacts under ./mlruns) or a tracking server."""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_DIR = "mlruns"


EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
SQL_SCHEMES = ("postgresql", "mysql", "mssql", "oracle")  # SQLAlchemy URLs, with or without +driver
STORE_FORMS = "sqlite:///path/to/mlflow.db, http(s)://host:port (a tracking server) or a SQL database URL (postgresql://...)"


def resolve_tracking_uri(tracking_uri: str | None, workdir: Path | None = None) -> str:
    """`None` (or `mlflow.tracking_uri=`) means the embedded store in `<workdir>/mlruns/mlflow.db`;
    anything else must be a store MLflow 3 can open (UsageError otherwise, before any work starts)."""
    if tracking_uri:
        check_tracking_uri(tracking_uri)
        return tracking_uri
    root = (workdir or Path.cwd()) / DEFAULT_DIR
    return f"sqlite:///{root.resolve() / 'mlflow.db'}"


def check_tracking_uri(uri: str) -> None:
    from imbalance.errors import UsageError

    scheme, sep, rest = uri.partition("://")
    base = scheme.split("+", 1)[0].lower()
    if base == "sqlite" and sep and rest.startswith("/") and rest.strip("/") and ":memory:" not in rest:
        return
    if base in ("http", "https") and sep and rest.split("/", 1)[0].rsplit("@", 1)[-1]:
        return
    if base in SQL_SCHEMES and sep and rest:
        return
    if base in ("databricks", "databricks-uc"):
        return
    why = ""
    if base == "sqlite":
        why = " (sqlite:/// needs a file path; an in-memory database would lose the run)"
    elif base == "file" or not sep:
        why = " (MLflow 3 keeps plain folders read-only: use sqlite:///path/mlflow.db; `mlflow migrate-filestore` converts an old one)"
    raise UsageError(f"the tracking URI (mlflow.tracking_uri, --tracking-uri) must be {STORE_FORMS}; got {masked(uri)!r}{why}")


def probe_store(uri: str) -> None:
    """Fail in a second, before any work, when the store cannot be reached or created
    (MLflow itself would retry a dead server for about four minutes, then raise)."""
    import urllib.error
    import urllib.request

    from imbalance.errors import UsageError

    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///") :]).absolute().parent
        existing = next(p for p in (folder, *folder.parents) if p.exists())  # nothing is created yet
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise UsageError(f"cannot create the MLflow store in {folder} ({existing} is not a writable folder); choose another mlflow.tracking_uri")
    elif uri.startswith(("http://", "https://")):
        import urllib.parse

        parts = urllib.parse.urlsplit(uri)
        host = parts.netloc.rsplit("@", 1)[-1]  # urllib cannot take user:password@; /health needs no login
        try:
            with urllib.request.urlopen(parts._replace(netloc=host).geturl().rstrip("/") + "/health", timeout=5):
                pass
        except urllib.error.HTTPError:
            pass  # it answered: a server behind a proxy or authentication may refuse /health
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UsageError(
                f"cannot reach the MLflow tracking server at {masked(uri)} ({reason}); start it "
                "(mlflow server --host 127.0.0.1 --port 5000) or leave mlflow.tracking_uri unset for the local store"
            ) from None


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


UI_ADDRESS = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def ui_base(tracking_uri: str) -> str:
    """The web address that shows this store: the tracking server itself, or `mlflow ui`'s default."""
    if tracking_uri.startswith(("http://", "https://")):
        import urllib.parse

        parts = urllib.parse.urlsplit(tracking_uri)
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl().rstrip("/")
    return UI_ADDRESS


# MLflow 3's UI starts in its GenAI mode (trace charts) whatever the experiment's kind tag says;
# this parameter opens the page in "Model training" mode, where runs, params and metrics are.
UI_MODE = "?workflowType=machine_learning"


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_base(tracking_uri)}/#/experiments/{experiment_id}/runs/{run_id}{UI_MODE}"


def ui_command(tracking_uri: str) -> str:
    tracking_uri = masked(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri}"
    uri = tracking_uri
    cwd_db = f"sqlite:///{(Path.cwd() / DEFAULT_DIR / 'mlflow.db').resolve()}"
    if uri == cwd_db:
        uri = f"sqlite:///{DEFAULT_DIR}/mlflow.db"
    return f"mlflow ui --backend-store-uri {uri}"


_PREPARED: set[str] = set()  # stores this process has opened: episodes in threads open each once


def prepare_store(tracking_uri: str) -> None:
    """Create the folder and the database once (a fresh SQLite store migrated by several
    processes at once races; callers run this in the parent before any job starts).
    Callers have run `probe_store` first, so a dead server is never retried here for minutes."""
    from imbalance.errors import UsageError

    if tracking_uri in _PREPARED:
        return
    fresh = False
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the MLflow store in {db.parent}: {exc.strerror or exc}; choose another mlflow.tracking_uri") from None
        fresh = not db.exists()
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri).search_experiments(max_results=1)
    except Exception as exc:  # a wrong database, a missing driver, a refused login: MLflow raises many types
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot open the MLflow store {masked(tracking_uri)}: {masked(reason)}") from None
    if fresh:
        # Write-ahead logging lets parallel episodes write without queueing behind readers
        # (about 3.5x faster with 4 writers); the mode is stored in the file itself.
        import sqlite3

        with sqlite3.connect(db) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
    _PREPARED.add(tracking_uri)


_EXPERIMENT_IDS: dict[tuple[str, str], str] = {}  # (store, name) -> id, for episodes in threads of one process


def ensure_experiment(client, name: str, tracking_uri: str) -> str:
    """The experiment id for `name`, created if needed (safe when two processes race)."""
    if (tracking_uri, name) in _EXPERIMENT_IDS:
        return _EXPERIMENT_IDS[(tracking_uri, name)]
    _EXPERIMENT_IDS[(tracking_uri, name)] = experiment_id = _ensure_experiment(client, name, tracking_uri)
    return experiment_id


def _ensure_experiment(client, name: str, tracking_uri: str) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        for key, value in EXPERIMENT_TAGS.items():
            if key not in experiment.tags:  # an experiment made by an earlier version, or by hand
                client.set_experiment_tag(experiment.experiment_id, key, value)
        return experiment.experiment_id
    try:
        # The kind tag makes MLflow's UI open the experiment on its runs table: with traces
        # (LLM episodes) it would otherwise guess a GenAI experiment and open an overview of
        # trace charts, one click away from the runs.
        return client.create_experiment(name, artifact_location=default_artifact_location(tracking_uri, name), tags=EXPERIMENT_TAGS)
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
    elif tracking_uri.startswith(("http://", "https://")):
        probe_store(tracking_uri)


def read_artifact(tracking_uri: str | None, run_id: str, name: str, how: str = "set mlflow.tracking_uri") -> str:
    """A run's text artifact; UsageError when the store, run or artifact is missing. The
    download goes to a temporary folder that is removed before this returns."""
    import tempfile

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from imbalance.errors import UsageError

    uri = resolve_tracking_uri(tracking_uri)
    require_store(uri, how)
    client = MlflowClient(uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise UsageError(f"no run {run_id} in {masked(uri)}; check the id (mlflow ui) or {how}") from None
    with tempfile.TemporaryDirectory(prefix="imbalance-") as folder:
        try:
            path = Path(client.download_artifacts(run_id, name, folder))
            return path.read_text()
        except (MlflowException, OSError, UnicodeDecodeError):
            raise UsageError(f"run {run_id} has no readable {name} artifact") from None
