"""Task calibration: the ceiling search, tau for a target pass rate, the command."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from imbalance.experiment.calibration import action_sets, pass_rate, tau_for_pass_rate


def test_action_sets_respect_the_budget():
    assert len(action_sets(0)) == 1 and action_sets(0)[0] == ()
    assert len(action_sets(1)) == 7  # none, or one of 2 settings of 3 tools
    assert len(action_sets(3)) == 27
    assert all(len(s) <= 2 for s in action_sets(2)) and len(action_sets(2)) == 1 + 6 + 12


def test_tau_for_a_target_pass_rate():
    f1s = list(np.linspace(0.5, 0.6, 101))
    tau = tau_for_pass_rate(f1s, 0.25)
    assert pass_rate(f1s, tau) == pytest.approx(0.25, abs=0.011)
    assert tau_for_pass_rate(f1s, 0.4) < tau < tau_for_pass_rate(f1s, 0.1)


@pytest.mark.slow
def test_calibrate_command(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "imbalance.calibrate", "source.n_train=1500", "source.n_val=600", "source.n_test=600",
         "budget.max_steps=1", "budget.retrain_epochs=2", "--seeds", "2", "--trials", "1", "--jobs", "1", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "out" / "calibration.json").read_text())
    summary, episodes = data["summary"], data["episodes"]
    assert sum(e["kind"] == "ceiling" for e in episodes) == 2 * 7
    for seed in (0, 1):
        mine = [e for e in episodes if e["kind"] == "ceiling" and e["seed"] == seed]
        best = max(mine, key=lambda e: (e["val_f1"], -len(e["actions"])))
        assert summary["rows"]["ceiling"]["values"][seed] == best["test_f1"]
        assert summary["rows"]["oracle"]["values"][seed] == max(e["test_f1"] for e in mine)
    assert summary["rows"]["oracle"]["mean"] >= summary["rows"]["ceiling"]["mean"]
    heuristic = summary["rows"]["heuristic"]["values"]
    assert summary["tau"] == pytest.approx(float(np.quantile(heuristic, 0.75)))
    assert "tau for a 25% pass rate of the heuristic agent" in proc.stdout and "Bayes-optimal F1" in proc.stdout
    png = (tmp_path / "out" / "calibration.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


@pytest.mark.slow
def test_calibrate_bad_input(tmp_path):
    (tmp_path / "a-file").write_text("")
    for args, message in [(["tau=2"], "tau must be in"), (["--target", "1.5"], "--target"), (["source=nope"], "source/nope"),
                          (["--out", "a-file"], "cannot write to a-file"), (["--out", "/proc/no/such"], "pass --out with a writable folder")]:
        proc = subprocess.run([sys.executable, "-m", "imbalance.calibrate", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
