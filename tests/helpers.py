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
TINY = ["source.n_train=1500", "source.n_val=600", "source.n_test=600", "budget.retrain_epochs=2", "budget.retrain_min_rows=0"]
# For task-set rows, whose data is fixed: the settings a row leaves open, chosen for speed.
FAST = ["model=logreg", "budget.retrain_epochs=2", "budget.retrain_min_rows=0"]

__all__ = ["CONF", "DEFAULT_TAU", "FAST", "ROOT", "SMALL", "TINY", "compose", "compose_config"]


def build(*overrides: str, small: bool = True):
    """An EpisodeSetup (env + agent) of the configuration `python -m imbalance.run OVERRIDES` runs,
    with mlflow off; SMALL sizes unless `small=False`."""
    from imbalance.experiment.build import build_episode

    return build_episode(compose_config([*(SMALL if small else []), "mlflow.enabled=false", *overrides]))


def make_env(*overrides: str):
    return build(*overrides).env


def hidden_test(env):
    """The TEST rows of an in-process environment, read from its grader (the only holder)."""
    from imbalance.data.splits import Split

    return Split(env._grader._X, env._grader._y)


def with_test(env, test):
    """The environment's train and validation splits with another TEST split, to build a twin."""
    from imbalance.data.splits import Splits

    v = env.splits
    return Splits(v.train, v.val, test, v.feature_names, v.description)


def reachable_arrays(root, skip: tuple[type, ...] = ()) -> list:
    """Every numpy array (tensors as arrays) reachable from `root` through instances and
    containers; classes, modules, functions and threads are not followed (they lead to the
    whole interpreter), nor instances of `skip`."""
    import gc
    import threading
    import types

    import numpy as np
    import torch

    opaque = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, threading.Thread)
    seen, todo, found = set(), [root], []
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, opaque) or (skip and isinstance(obj, skip)):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            found.append(obj)
        elif isinstance(obj, torch.Tensor):
            found.append(obj.detach().numpy())
            continue
        todo.extend(gc.get_referents(obj))
    return found


def holds(arrays: list, target) -> bool:
    """One of `arrays` is `target`'s memory or an equal copy of it."""
    import numpy as np

    return any(np.shares_memory(a, target) or (a.shape == target.shape and np.array_equal(a, target)) for a in arrays)


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


def run_task(row: dict, overrides: list[str], workdir: Path):
    """A task-set row played by imbalance.run's own runner (run_episode, MLflow under
    `workdir`); returns the finished run. The integrations' results are compared with it."""
    from mlflow.tracking import MlflowClient

    from imbalance.experiment.runner import run_episode
    from imbalance.tasks import task_config

    uri = local_uri(workdir)
    summary = run_episode(task_config(row, [*overrides, f"mlflow.tracking_uri={uri}"]))
    return MlflowClient(uri).get_run(summary["run_id"])


def replay_task(row: dict, calls: list[tuple[str, object]], overrides: list[str], workdir: Path):
    """`calls` (tool, arguments) replayed on the row through imbalance.run (agent=replay)."""
    import json

    path = workdir / f"calls-{row['task_id']}.json"
    path.write_text(json.dumps([{"tool": tool, "arguments": arguments} for tool, arguments in calls]))
    return run_task(row, [*overrides, "agent=replay", f"agent.path={path}"], workdir)


def run_artifact(workdir: Path, run, name: str):
    """A JSON artifact of a run in `workdir`'s store."""
    import json
    import tempfile

    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as folder:
        return json.loads(Path(MlflowClient(local_uri(workdir)).download_artifacts(run.info.run_id, name, folder)).read_text())


TRAINER_DOCS = (ROOT / "README.md", ROOT / "docs" / "trainers.md")


def python_snippets(*docs: Path) -> list[tuple[str, int, str]]:
    """(doc, line, code) of every ```python block: test_docs runs the shell blocks, the tests
    that exercise each integration run these."""
    out = []
    for doc in docs:
        lines = doc.read_text().splitlines()
        start = None
        for i, line in enumerate(lines):
            if line.strip() == "```python":
                start = i + 1
            elif line.strip() == "```" and start is not None:
                out.append((doc.name, start + 1, "\n".join(lines[start:i]) + "\n"))
                start = None
    return out


def snippet_using(marker: str) -> str:
    """The one trainer snippet (README, docs/trainers.md) whose code contains `marker`."""
    found = [code for _, _, code in python_snippets(*TRAINER_DOCS) if marker in code]
    assert len(found) == 1, f"expected one snippet with {marker!r}, found {len(found)}"
    return found[0]


def run_snippet(code: str, cwd: Path, env: dict[str, str] | None = None, replace: tuple[tuple[str, str], ...] = (), prelude: str = "",
                epilogue: str = "", timeout: float = 900) -> subprocess.CompletedProcess:
    """Run a documented snippet as a script in `cwd`. Each (old, new) in `replace` must occur:
    the substitutions a test needs (a local model for a hub one) cannot silently stop applying."""
    for old, new in replace:
        assert old in code, f"the snippet no longer contains {old!r}:\n{code}"
        code = code.replace(old, new)
    script = cwd / "snippet.py"
    script.write_text(prelude + code + epilogue)
    return subprocess.run([sys.executable, str(script)], cwd=cwd, env=env if env is not None else cli_env(), capture_output=True, text=True, timeout=timeout)
