"""Reward modes: a function of the grade that never changes it, and a baseline that never leaks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imbalance.config.schema import SyntheticSource
from imbalance.data.splits import Split
from imbalance.data.synthetic import bayes_optimal_f1
from imbalance.env.environment import ImbalanceEnv
from imbalance.env.metrics import prf
from imbalance.env.reward import episode_reward, normalized_f1
from imbalance.errors import UsageError
from tests.helpers import build, compose_config, hidden_test, with_test

SCRIPT = [("imbalance_start", {}), ("train", {"epochs": 3}), ("use_focal", {"alpha": 0.75, "gamma": 2.0}), ("sweep_thresholds", {}), ("submit_answer", {})]


def test_normalized_f1_maps_baseline_to_0_and_oracle_to_1_clipped():
    assert normalized_f1(0.4, 0.4, 0.6) == 0.0
    assert normalized_f1(0.6, 0.4, 0.6) == 1.0
    assert normalized_f1(0.5, 0.4, 0.6) == pytest.approx(0.5)
    assert normalized_f1(0.1, 0.4, 0.6) == 0.0 and normalized_f1(0.9, 0.4, 0.6) == 1.0
    # An oracle at or below the baseline: anything above the baseline counts as the oracle's.
    assert normalized_f1(0.51, 0.5, 0.5) == 1.0 and normalized_f1(0.49, 0.5, 0.45) == 0.0
    assert episode_reward("pass", passed=True, test_f1=0.1, baseline_f1=0.5, oracle_f1=None) == 1.0
    with pytest.raises(ValueError):
        episode_reward("normalized", passed=True, test_f1=0.5, baseline_f1=0.4, oracle_f1=None)


def play(*overrides):
    env = build(*overrides).env
    env.reset()
    steps = [env.step({"tool": t, "arguments": a}) for t, a in SCRIPT]
    return env, steps


def test_the_reward_mode_never_changes_the_grade_or_the_episode():
    pass_env, pass_steps = play("seed=2", "tau=0.3")
    norm_env, norm_steps = play("seed=2", "tau=0.3", "reward=normalized")
    assert pass_env.state.grade == norm_env.state.grade
    assert json.dumps([s[0] for s in pass_steps]) == json.dumps([s[0] for s in norm_steps])
    grade = norm_env.state.grade
    assert grade.passed and pass_steps[-1][1] == 1.0 and pass_env.reward() == 1.0
    oracle = bayes_optimal_f1(build("seed=2").config.source)
    expected = normalized_f1(grade.test_f1, grade.baseline_test_f1, oracle)
    assert norm_steps[-1][1] == pytest.approx(expected) and norm_env.reward() == pytest.approx(expected)
    assert all(s[1] == 0.0 for s in norm_steps[:-1])  # only the submitting step is paid


def test_the_baseline_is_the_reset_model_at_the_starting_threshold():
    """The TEST counterpart of baseline_val_f1: the model reset trains, at threshold 0.5."""
    env = build("seed=4").env
    observation, _ = env.reset()
    expected = prf(hidden_test(env).y, env._grader._proba(env._model), 0.5)["f1"]
    assert observation["baseline_val_f1"] == round(prf(env.splits.val.y, env._val_proba, 0.5)["f1"], 6)
    env.call("train", {"epochs": 5})  # later training does not move the baseline
    assert env.submit().baseline_test_f1 == pytest.approx(expected)


def test_the_baseline_reads_test_but_nothing_before_submission_shows_it():
    """The grader computes the baseline from TEST at reset; with another TEST split every
    observation is the same and only the grade (baseline included) differs."""
    setup = build("seed=3", "reward=normalized", "budget.retrain_epochs=30")  # a baseline that predicts positives
    env_a = setup.env
    rng = np.random.default_rng(0)
    t = hidden_test(env_a)
    other = Split(rng.normal(size=t.X.shape).astype(np.float32), rng.permutation(t.y))
    env_b = ImbalanceEnv(with_test(env_a, other), model=env_a.model_cfg, budget=env_a.budget, tau=env_a.tau,
                         seed=3, reward="normalized", oracle_f1=env_a.oracle_f1)
    seen = []
    for env in (env_a, env_b):
        observation, info = env.reset()
        seen.append(json.dumps([observation, info, [env.step({"tool": tl, "arguments": a})[:2] for tl, a in SCRIPT[:-1]]], default=str))
    assert seen[0] == seen[1]
    assert env_a.submit().baseline_test_f1 != env_b.submit().baseline_test_f1


def test_reward_settings_are_checked_before_any_work(tmp_path):
    with pytest.raises(UsageError, match="reward must be one of pass, normalized"):
        compose_config(["reward=dense"])
    with pytest.raises(UsageError, match="oracle_f1"):
        compose_config(["reward=normalized", "source=csv", f"source.path={tmp_path / 'x.csv'}"])
    config = compose_config(["reward=normalized", "source=csv", f"source.path={tmp_path / 'x.csv'}", "oracle_f1=0.8"])
    assert config.oracle_f1 == 0.8
    with pytest.raises(UsageError, match=r"oracle_f1 must be in \(0, 1\]"):
        compose_config(["oracle_f1=0"])


def test_the_synthetic_oracle_is_the_bayes_optimum():
    assert build("reward=normalized").env.oracle_f1 == pytest.approx(bayes_optimal_f1(SyntheticSource()))
    assert build().env.oracle_f1 is None  # reward=pass never needs it
