"""Shared fixtures: composed configs, small tasks, a generated credit-card file, CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from imbalance.config import register_schemas, to_objects

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# Small enough for seconds per episode, large enough for a few positives in every split.
SMALL = ["source.n_train=3000", "source.n_val=1000", "source.n_test=1000"]

register_schemas()
DEFAULT_TAU = 0.585  # conf/config.yaml; test_config checks the two agree


def compose_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def make_env(*overrides: str):
    from imbalance.data import load_splits
    from imbalance.env.environment import ImbalanceEnv

    config = to_objects(compose_cfg(*SMALL, *overrides))
    splits = load_splits(config.source, config.seed)
    return ImbalanceEnv(splits, model=config.model, budget=config.budget, tau=config.tau, seed=config.seed)


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


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "KAGGLE"))}
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m imbalance.run ARGS` exactly as a user types it, in `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", "imbalance.run", *args],
        cwd=cwd,
        env=env if env is not None else cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 with a SQLite backend and proxied artifacts."""
    import time
    import urllib.request

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
    import os
    import signal

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
