"""Imports point one way: a package imports only from its own layer and the layers below
(docs/architecture.md). Function-level imports count too: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "imbalance"

# Lowest first. A module may import from its own layer and any layer before it.
LAYERS: list[tuple[str, ...]] = [
    ("imbalance", "imbalance.errors", "imbalance.seeding", "imbalance.config"),
    ("imbalance.tasks",),
    ("imbalance.data",),
    ("imbalance.training",),
    ("imbalance.env",),
    ("imbalance.agents",),
    ("imbalance.tracking",),
    ("imbalance.analysis",),
    ("imbalance.experiment",),
    ("imbalance.integrations",),
    ("imbalance.cli", "imbalance.run", "imbalance.report", "imbalance.calibrate", "imbalance.serve", "imbalance.export"),
]
# Inside the lowest layer, config may use errors (UsageError), never the other way round.
NEVER = {"imbalance.errors": ("imbalance.config", "imbalance.seeding"), "imbalance.seeding": ("imbalance.config", "imbalance.errors")}
# The one import that points up on purpose: the package root is verifiers 0.4's environment id
# `imbalance` (its loader takes the classes the root's __all__ names), so the root re-exports the
# verifiers adapter's classes, loaded on first access only.
PLUGIN_EXPORTS = {"imbalance": ("imbalance.integrations.verifiers_v1", "imbalance.integrations")}


def layer_of(module: str) -> int:
    """The layer of the longest prefix that names `module` (-1: none)."""
    matches = [(len(p), i) for i, prefixes in enumerate(LAYERS) for p in prefixes if module == p or module.startswith(p + ".")]
    return max(matches)[1] if matches else -1


def wrong_imports(source: str, targets: list[str]) -> list[str]:
    upward = [t for t in targets if t.startswith("imbalance") and layer_of(t) > layer_of(source) and t not in PLUGIN_EXPORTS.get(source, ())]
    banned = [t for t in targets for b in NEVER.get(source, ()) if t == b or t.startswith(b + ".")]
    return upward + banned


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


MODULES = sorted(PACKAGE.rglob("*.py"))
PROBE = [("imbalance_start", {}), ("train", {"epochs": 2}), ("smote", {"ratio": 0.1, "k": 5}), ("sweep_thresholds", {})]


def test_every_module_belongs_to_a_layer():
    assert [module_name(p) for p in MODULES if layer_of(module_name(p)) < 0] == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_down(path):
    source = module_name(path)
    assert wrong_imports(source, all_imports(path)) == [], f"{source} imports from a higher layer"


def test_agents_never_touch_mlflow_or_the_store():
    """An agent reaches the task through its tools only; what it records, the runner stores."""
    offenders = {}
    for path in (PACKAGE / "agents").rglob("*.py"):
        found = [m for m in all_imports(path) if m.split(".")[0] == "mlflow" or m.startswith("imbalance.tracking")]
        if found:
            offenders[module_name(path)] = found
    assert offenders == {}


def test_the_checker_flags_upward_and_banned_imports():
    assert wrong_imports("imbalance.data.tabular", ["imbalance.experiment.build", "imbalance.config.schema"]) == ["imbalance.experiment.build"]
    assert wrong_imports("imbalance.errors", ["imbalance.config"]) == ["imbalance.config"]
    assert wrong_imports("imbalance.cli.run", ["imbalance.experiment.runner", "imbalance.errors"]) == []
    assert wrong_imports("imbalance", ["imbalance.integrations.verifiers_v1", "imbalance.integrations.trl"]) == ["imbalance.integrations.trl"]


def test_in_process_only_the_grader_holds_test():
    """The environment keeps train and validation; an object graph from the agent's toolbox meets
    the TEST rows only inside the grader (through the session pool, not at all: test_isolation.py)."""
    from imbalance.env.environment import _Grader
    from imbalance.experiment.episode import RecordingToolbox
    from tests.helpers import hidden_test, holds, make_env, reachable_arrays

    env = make_env("model=logreg")
    env.reset()
    toolbox = RecordingToolbox(env)
    for tool, arguments in PROBE:
        toolbox.call(tool, arguments)
    test = hidden_test(env)
    assert not hasattr(env.splits, "test")
    outside = reachable_arrays(toolbox, skip=(_Grader,))
    assert holds(outside, env.splits.train.X) and holds(outside, env.splits.val.X)  # the walk does reach the data
    assert not holds(outside, test.X) and not holds(outside, test.y)
    assert holds(reachable_arrays(toolbox), test.X)  # ... and would find TEST where it is: in the grader
