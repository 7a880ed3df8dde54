"""Plain helpers shared by the test files (fixtures live in conftest.py; the scripted LLM
server in fake_llm.py). Test files import from here, never from each other."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from imbalance.config.compose import compose, compose_config
from imbalance.config.schema import Config

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
DEFAULT_TAU = Config().tau  # the schema's default, the one place it is written
# Small enough for seconds per episode, large enough for a few positives in every split.
SMALL = ["source.n_train=3000", "source.n_val=1000", "source.n_test=1000"]
TINY = ["source.n_train=1500", "source.n_val=600", "source.n_test=600", "budget.retrain_epochs=2"]

__all__ = ["CONF", "DEFAULT_TAU", "ROOT", "SMALL", "TINY", "compose", "compose_config"]


def build(*overrides: str, small: bool = True):
    """An EpisodeSetup (env + agent) of the configuration `python -m imbalance.run OVERRIDES` runs,
    with mlflow off; SMALL sizes unless `small=False`."""
    from imbalance.experiment.build import build_episode

    return build_episode(compose_config([*(SMALL if small else []), "mlflow.enabled=false", *overrides]))


def make_env(*overrides: str):
    return build(*overrides).env


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "KAGGLE"))}
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300, module: str = "imbalance.run") -> subprocess.CompletedProcess:
    """`python -m imbalance.run ARGS` exactly as a user types it, in `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env if env is not None else cli_env(),
        capture_output=True, text=True, timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_uri(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}"


def runs_of(uri: str, experiment: str = "imbalance"):
    """(client, sweep parent runs, episode runs) of an experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("sweep") == "true"]
    episodes = [r for r in runs if "termination_reason" in r.data.tags]
    return client, parents, episodes


def check_summary(parent, children, output: str) -> None:
    """The parent's metrics and the printed block agree with the children."""
    from imbalance.analysis.stats import wilson_interval

    graded = [c for c in children if c.data.tags["termination_reason"] != "error"]
    passed = sum(int(c.data.metrics["passed"]) for c in graded)
    m = parent.data.metrics
    assert (m["episodes"], m["passed"], m["failed"]) == (len(children), passed, len(graded) - passed)
    low, high = wilson_interval(passed, len(graded))
    assert m["pass_rate"] == pytest.approx(passed / len(graded)) and m["pass_rate_ci_low"] == pytest.approx(low)
    assert m["pass_rate_ci_high"] == pytest.approx(high)
    f1s = sorted(c.data.metrics["test_f1"] for c in graded)
    assert m["mean_test_f1"] == pytest.approx(sum(f1s) / len(f1s))
    assert f"Passed: {passed}/{len(graded)}" in output and f"Failed: {len(graded) - passed}" in output and "Pass Rate:" in output
    assert parent.info.status == "FINISHED"


def seed_kagglehub_cache(root: Path, csv: Path) -> None:
    """The layout kagglehub 1.0 checks for a versioned dataset handle: files plus a marker."""
    folder = root / "datasets" / "mlg-ulb" / "creditcardfraud"
    (folder / "versions" / "3").mkdir(parents=True)
    (folder / "versions" / "3" / "creditcard.csv").write_bytes(csv.read_bytes())
    (folder / "3.complete").touch()
