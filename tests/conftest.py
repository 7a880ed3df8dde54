"""Fixtures: a small environment, a generated credit-card file, a real `mlflow server`.
Plain helpers (composing, building, the CLI runner) are in tests/helpers.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port, make_env


@pytest.fixture
def env():
    e = make_env()
    e.reset()
    return e


@pytest.fixture(scope="session")
def creditcard_csv(tmp_path_factory) -> Path:
    """A 6,000-row file in the credit-card schema, with 60 frauds and 25 duplicate rows."""
    from imbalance.data.creditcard_like import write_creditcard_like

    return write_creditcard_like(tmp_path_factory.mktemp("kaggle") / "creditcard.csv", rows=6000, frauds=60, duplicates=25, seed=1)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend and proxied artifacts."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=open(root / "server.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
        time.sleep(0.3)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def pytest_configure(config):
    """Hypothesis keeps its caches (.hypothesis/) in a temporary folder, not the checkout."""
    import shutil
    import tempfile

    from hypothesis import configuration

    home = tempfile.mkdtemp(prefix="hypothesis-")
    configuration.set_hypothesis_home_dir(home)
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))


def pytest_collection_modifyitems(items):
    """test_docs runs every documented command, a quarter of the suite on one worker: it goes
    first, so the other worker takes the rest meanwhile instead of waiting for it at the end."""
    items.sort(key=lambda item: not item.nodeid.startswith("tests/test_docs.py"))
