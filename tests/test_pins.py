"""Pinned TEST F1 of a few episodes, through the command users type.

A restructuring must not change any episode. A deliberate change of behaviour (training,
a policy) updates these numbers in its own commit, which then says why they moved.
"""

from __future__ import annotations

import re

import pytest

from tests.helpers import SMALL, run_cli

# (agent, model, seed) -> TEST F1 as the episode line prints it (4 decimals: one changed
# prediction among the ~30 test positives moves F1 by about 0.01).
PINNED = {
    ("heuristic", "logreg", 0): "0.5333",
    ("heuristic", "logreg", 1): "0.4615",
    ("random", "logreg", 0): "0.5417",
    ("random", "logreg", 1): "0.0000",
    ("heuristic", "mlp", 0): "0.5116",
    ("heuristic", "mlp", 1): "0.4923",
    ("random", "mlp", 0): "0.5000",
    ("random", "mlp", 1): "0.0000",
}


@pytest.mark.slow
def test_pinned_episodes_keep_their_test_f1(tmp_path):
    result = run_cli("-m", "agent=heuristic,random", "model=logreg,mlp", "seed=0,1", *SMALL, "mlflow.enabled=false", cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    got = {}
    current = None
    for line in result.stdout.splitlines():
        if m := re.match(r"episode: agent=(\w+) source=\w+ model=(\w+) seed=(\d+)", line):
            current = (m[1], m[2], int(m[3]))
        elif (m := re.match(r"TEST F1 (\d\.\d{4})", line)) and current is not None:
            got[current] = m[1]
    assert got == PINNED
