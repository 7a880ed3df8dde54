"""Task calibration: strategies, the ladder of reference policies, tau for a target pass rate, the command."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from imbalance.experiment.calibration import NO_PAID, action_sets, format_report, pass_rate, summarise, tau_for_pass_rate


def test_action_sets_respect_the_budget():
    assert len(action_sets(0)) == 1 and action_sets(0)[0] == ()
    assert len(action_sets(1)) == 7  # none, or one of 2 settings of 3 tools
    assert len(action_sets(3)) == 27
    assert all(len(s) <= 2 for s in action_sets(2)) and len(action_sets(2)) == 1 + 6 + 12
    assert len(action_sets(3, "quick")) == 8 and len(action_sets(1, "quick")) == 4


def test_tau_for_a_target_pass_rate():
    f1s = list(np.linspace(0.5, 0.6, 101))
    tau = tau_for_pass_rate(f1s, 0.25)
    assert pass_rate(f1s, tau) == pytest.approx(0.25, abs=0.011)
    assert tau_for_pass_rate(f1s, 0.4) < tau < tau_for_pass_rate(f1s, 0.1)


def _strategy(seed, actions, val, test):
    return {"kind": "strategy", "seed": seed, "actions": actions, "val_f1": val, "test_f1": test}


def test_the_ladder_and_strategies_come_from_the_same_episodes():
    weights = "set_class_weights(beta=0.9999)"
    results = [
        # seed 0: weights win on validation and on TEST; seed 1: a tie on validation goes to the shorter set
        _strategy(0, NO_PAID, 0.50, 0.40), _strategy(0, weights, 0.60, 0.55),
        _strategy(1, NO_PAID, 0.70, 0.60), _strategy(1, weights, 0.70, 0.62),
        {"kind": "heuristic", "seed": 0, "trial": 0, "val_f1": 0.6, "test_f1": 0.55},
        {"kind": "heuristic", "seed": 1, "trial": 0, "val_f1": 0.7, "test_f1": 0.60},
        {"kind": "naive", "seed": 0, "trial": 0, "val_f1": 0.2, "test_f1": 0.10},
        {"kind": "random", "seed": 0, "trial": 0, "val_f1": 0.1, "test_f1": 0.05},
    ]
    summary = summarise(results, tau=0.58, target=0.5, test_positives=[12, 14])
    ladder = {row["policy"]: row for row in summary["ladder"]}
    assert list(ladder) == ["random", "naive", "no_paid", "heuristic", "ceiling", "oracle"]
    assert ladder["no_paid"]["values"] == [0.40, 0.60] and ladder["ceiling"]["values"] == [0.55, 0.60]
    assert ladder["oracle"]["values"] == [0.55, 0.62] and ladder["ceiling"]["pass_rate"] == 0.5
    assert summary["skill_gap"] == pytest.approx(0.575 - 0.50) and summary["test_positives"] == 13
    strategies = {s["actions"]: s for s in summary["strategies"]}
    assert strategies[weights]["mean_val_f1"] == pytest.approx(0.65) and strategies[weights]["sd_test_f1"] == pytest.approx(0.035)
    assert summary["strategies"][0]["actions"] == weights  # best validation F1 first
    pays = summary["what_pays"]
    assert pays["best"] == weights and pays["gain"] == pytest.approx(0.085) and pays["pays"] is False  # within twice its standard error
    report = format_report(summary, "t")
    assert "skill gap (ceiling - no_paid): +0.0750" in report and "fewer than 20" in report and "what pays: no paid action beats" in report


@pytest.mark.slow
def test_calibrate_command(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "imbalance.calibrate", "source.n_train=1500", "source.n_val=600", "source.n_test=600",
         "budget.max_steps=1", "budget.retrain_epochs=2", "budget.retrain_min_rows=0", "--grid", "quick",
         "--seeds", "2", "--trials", "1", "--jobs", "1", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "out" / "calibration.json").read_text())
    episodes = data["episodes"]
    assert sum(e["kind"] == "strategy" for e in episodes) == 2 * 4  # none, SMOTE, weights, focal: one action each
    assert {e["kind"] for e in episodes} == {"strategy", "heuristic", "naive", "random"}
    ladder = {row["policy"]: row for row in data["ladder"]}
    for seed in (0, 1):
        mine = [e for e in episodes if e["kind"] == "strategy" and e["seed"] == seed]
        assert ladder["oracle"]["values"][seed] == max(e["test_f1"] for e in mine)
        assert ladder["no_paid"]["values"][seed] == next(e["test_f1"] for e in mine if e["actions"] == NO_PAID)
    assert ladder["oracle"]["mean_test_f1"] >= ladder["ceiling"]["mean_test_f1"]
    assert data["skill_gap"] == pytest.approx(ladder["ceiling"]["mean_test_f1"] - ladder["no_paid"]["mean_test_f1"])
    assert data["test_positives"] == 18 and data["tau"] == 0.585
    assert {s["actions"] for s in data["strategies"]} >= {NO_PAID, "smote(ratio=0.3, k=5)"}
    assert all(set(s) >= {"actions", "mean_val_f1", "mean_test_f1", "sd_test_f1", "pass_rate"} for s in data["strategies"])
    assert data["suggested_tau"] == pytest.approx(float(np.quantile(ladder["heuristic"]["values"], 0.75)))
    for text in ("tau for a 25% pass rate of the heuristic", "Bayes-optimal F1", "skill gap", "what pays:", "fewer than 20"):
        assert text in proc.stdout
    png = (tmp_path / "out" / "calibration.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


@pytest.mark.slow
def test_calibrate_bad_input(tmp_path):
    (tmp_path / "a-file").write_text("")
    for args, message in [(["tau=2"], "tau must be in"), (["--target", "1.5"], "--target"), (["source=nope"], "source/nope"),
                          (["--out", "a-file"], "cannot write to a-file"), (["--out", "/proc/no/such"], "pass --out with a writable folder")]:
        proc = subprocess.run([sys.executable, "-m", "imbalance.calibrate", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
