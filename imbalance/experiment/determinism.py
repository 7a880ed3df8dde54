"""A determinism check for task-set rows, in the style of Gymnasium's `check_env`.

The same row must always give the same data split, the same hidden TEST split, the same
first observation, and the same results and grade for the same tool calls. `check_task`
builds the row's episode twice, from scratch, and compares fingerprints (SHA-256 of the
arrays, the JSON of every observation); a difference raises `DeterminismError` naming it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Free calls and one paid call: enough to exercise training, SMOTE's stream and the grader.
PROBE: tuple[tuple[str, dict], ...] = (
    ("imbalance_start", {}),
    ("train", {"epochs": 2}),
    ("smote", {"ratio": 0.1, "k": 5}),
    ("sweep_thresholds", {}),
    ("eval_on_val", {}),
)


class DeterminismError(AssertionError):
    """Two builds of one task differ."""


def fingerprint(row: Mapping[str, Any], overrides: Sequence[str] = (), probe: Sequence[tuple[str, dict]] = PROBE) -> dict[str, str]:
    """Digests of one fresh build of the row's episode: data, TEST split, first observation,
    each probe call's output, and the grade after submitting."""
    from imbalance.data import load_splits
    from imbalance.experiment.build import build_episode
    from imbalance.tasks import task_config

    config = task_config(row, overrides)
    splits = load_splits(config.source, config.seed)  # the environment keeps no TEST: digest it here
    env = build_episode(config, splits=splits).env
    out = {
        "train split": _arrays(splits.train.X, splits.train.y),
        "validation split": _arrays(splits.val.X, splits.val.y),
        # Read only to prove it is the same: the grader alone uses it in an episode.
        "hidden TEST split": _arrays(splits.test.X, splits.test.y),
    }
    observation, info = env.reset()
    out["initial observation"] = _json([observation, info])
    for i, (tool, arguments) in enumerate(probe):
        out[f"call {i} {tool}"] = _json(env.call(tool, arguments).output)
    grade = env.submit()
    out["grade"] = _json([grade.test_f1, grade.passed, grade.baseline_test_f1, env.reward()])
    return out


def check_task(row: Mapping[str, Any], overrides: Sequence[str] = (), probe: Sequence[tuple[str, dict]] = PROBE) -> None:
    """Build the row's episode twice; raise DeterminismError on the first difference."""
    first, second = fingerprint(row, overrides, probe), fingerprint(row, overrides, probe)
    for key, value in first.items():
        if second.get(key) != value:
            raise DeterminismError(f"task {row.get('task_id')}: the {key} differs between two builds of the same row")


def _arrays(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(str((a.dtype, a.shape)).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def _json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
