"""Robust under bad input and abuse, and a grade that cannot be gamed."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imbalance.config import Budget, MlpModel
from imbalance.data.splits import Split, split_and_scale
from imbalance.env.environment import ImbalanceEnv
from imbalance.env.tools import TOOLS
from tests.helpers import DEFAULT_TAU, hidden_test, make_env, with_test

# ----------------------------------------------------------------------------- fuzzing
REAL_NAMES = [s.name for s in TOOLS]
PARAM_NAMES = sorted({p.name for s in TOOLS for p in s.params})
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),  # past float range: overflow must not escape
    st.sampled_from([10**400, -(10**400), 10**4000]),  # 4,000 digits: about the most a JSON parser here accepts
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, 5, 0.0, 0.1, 0.5, 0.999999, 1.0, 10**9, -1, float("nan"), float("inf"), -float("inf"), 1e308]),
    st.text(max_size=30),
    st.just("x" * 100_000),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)), max_leaves=6)
arguments = st.one_of(
    st.dictionaries(st.sampled_from(PARAM_NAMES + ["tau", "seed", "max_steps", "source", "", "__class__"]), values, max_size=4),
    values,
)
anything = st.tuples(st.one_of(st.sampled_from(REAL_NAMES), st.sampled_from(["get_test_labels", "read_file", "exec", ""]), st.text(max_size=20)), arguments)
# a real tool with exactly its own argument names: every value reaches that parameter's check
well_formed = st.sampled_from(TOOLS).flatmap(lambda spec: st.tuples(st.just(spec.name), st.fixed_dictionaries({p.name: scalars for p in spec.params})))
calls = st.one_of(anything, well_formed)


@pytest.fixture(scope="module")
def fuzz_env():
    return make_env("source.n_train=600", "source.n_val=300", "source.n_test=300", "budget.retrain_epochs=1", "budget.retrain_min_rows=0", "budget.max_train_rows_per_call=6000")


def check_consistent(env: ImbalanceEnv) -> None:
    s = env.state
    assert 0 <= s.steps_used <= env.budget.max_steps
    assert env.budget_remaining == env.budget.max_steps - s.steps_used >= 0
    assert len(s.paid_actions) == s.steps_used
    assert all(math.isfinite(v) for v in env.metrics().values())
    assert 0.0 <= env.state.setup.threshold <= 1.0
    assert env.tau == DEFAULT_TAU and env.seed == 0 and env.budget.max_steps == 3
    assert len(hidden_test(env)) == 300 and not hasattr(env.splits, "test")


@pytest.mark.slow
def test_fuzzed_tool_calls_never_escape_and_keep_the_state_consistent(fuzz_env):
    env = fuzz_env
    seen = {"calls": 0, "invalid": 0, "seconds": 0.0, "slowest": 0.0}

    # database=None: nothing written to .hypothesis/; derandomize: the same 5,400 calls every run
    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    @given(st.lists(calls, min_size=45, max_size=45))
    def play(batch):
        if not env._ready or env.done:
            env.reset()
        for name, args in batch:
            steps_before = env.state.steps_used
            started = time.perf_counter()
            result = env.call(name, args)
            elapsed = time.perf_counter() - started
            seen["calls"] += 1
            seen["seconds"] += elapsed
            seen["slowest"] = max(seen["slowest"], elapsed)
            assert isinstance(result.output, dict) and json.dumps(result.output)  # always an answer, JSON-safe
            if result.is_error:
                assert set(result.output) == {"error", "message"} and result.output["message"] and len(result.output["message"]) < 1000
            if result.invalid:
                seen["invalid"] += 1
                assert env.state.steps_used == steps_before  # invalid calls are free
            json.dumps(result.arguments)
            check_consistent(env)
            if env.done:
                env.reset()

    play()
    assert seen["calls"] >= 5000 and 0 < seen["invalid"] < seen["calls"], seen  # both valid and invalid calls were exercised
    print(f"\nfuzzing: {seen['calls']} calls, {seen['invalid']} invalid, {1000 * seen['seconds'] / seen['calls']:.1f} ms mean, slowest {seen['slowest']:.2f} s")


# ------------------------------------------------------------------------------ abuse
@pytest.fixture(scope="module")
def creditcard_env():
    """The credit-card shape (284,807 x 30, 492 positives), generated in memory."""
    rng = np.random.default_rng(0)
    y = np.zeros(284_807, dtype=np.int64)
    y[rng.choice(284_807, 492, replace=False)] = 1
    X = rng.standard_normal((284_807, 30)).astype(np.float32) + 1.5 * y[:, None]
    splits = split_and_scale(X, y, val_size=0.2, test_size=0.2, seed=0, feature_names=tuple(f"f{i}" for i in range(30)), description="credit-card shape")
    env = ImbalanceEnv(splits, model=MlpModel(), budget=Budget(retrain_epochs=1, retrain_min_rows=0), tau=0.75, seed=0)
    env.reset()
    return env


@pytest.mark.parametrize(
    "tool, args, message",
    [
        ("train", {"epochs": 10**9}, "epochs must be an integer in [1, 100]"),
        ("smote", {"ratio": 0.999999, "k": 5}, "ratio must be a number in (0, 0.5]"),
        ("sweep_thresholds", {"num_points": 10**9}, "num_points must be an integer in [2, 10000]"),
        ("set_class_weights", {"beta": "x" * 1_000_000}, "beta must be a number"),
        ("x" * 1_000_000, {}, "unknown tool"),
    ],
    ids=["epochs", "smote-ratio", "num-points", "1MB-argument", "1MB-tool-name"],
)
def test_resource_abuse_is_refused_before_any_work_with_a_clear_message(creditcard_env, monkeypatch, tool, args, message):
    def no_work(*_args, **_kwargs):
        raise AssertionError("an abusive call reached training or resampling")

    monkeypatch.setattr("imbalance.env.environment.fit", no_work)
    monkeypatch.setattr("imblearn.over_sampling.SMOTE.fit_resample", no_work)
    setup, steps = dataclasses.replace(creditcard_env.state.setup), creditcard_env.state.steps_used
    result = creditcard_env.call(tool, args)
    assert result.invalid and message in result.output["message"]
    assert len(result.output["message"]) < 500 and len(json.dumps(result.arguments)) < 25_000
    assert creditcard_env.state.setup == setup and creditcard_env.state.steps_used == steps


@pytest.mark.slow
def test_the_largest_allowed_calls_are_bounded(creditcard_env):
    env = creditcard_env
    rows = len(env._train_y)
    out = env.call("train", {"epochs": 100}).output
    assert out["trained_epochs"] == max(1, env.budget.max_train_rows_per_call // rows) < 100 and "capped" in out["note"]
    out = env.call("smote", {"ratio": 0.5, "k": 100}).output
    assert out["train_rows"] <= 2 * rows  # at most a balanced training set: memory bounded
    out = env.call("sweep_thresholds", {"num_points": 10000}).output
    assert 0 <= out["threshold"] <= 1


# --------------------------------------------------------------------------- integrity
LEGIT = [("imbalance_start", {}), ("train", {"epochs": 3}), ("set_class_weights", {"beta": 0.999}), ("smote", {"ratio": 0.2, "k": 5}),
         ("sweep_thresholds", {}), ("submit_answer", {})]
ADVERSARIAL = [
    ("imbalance_start", {"tau": 0.0}), ("imbalance_start", {"max_steps": 100, "seed": 1, "source": "kaggle"}),
    ("get_test_labels", {}), ("read_file", {"path": "/etc/passwd"}),
    ("imbalance_start", {}), ("train", {"epochs": 3}), ("set_class_weights", {"beta": 0.999}),
    ("set_threshold", {"threshold": float("nan")}), ("smote", {"ratio": 0.2, "k": 5}), ("sweep_thresholds", {}),
    ("use_focal", {"alpha": 0.5, "gamma": 2.0}), ("set_threshold", {"threshold": 0.01}),  # beyond the budget of 2
    ("submit_answer", {}), ("submit_answer", {}), ("set_threshold", {"threshold": 0.99}), ("train", {"epochs": 5}),
]


def test_an_adversarial_agent_gets_the_grade_of_its_legitimate_actions_alone():
    legit_env = make_env("budget.max_steps=2")
    legit_env.reset()
    for name, args in LEGIT:
        legit_env.call(name, args)
    adversary_env = make_env("budget.max_steps=2")
    adversary_env.reset()
    outputs = [adversary_env.call(name, args) for name, args in ADVERSARIAL]
    assert adversary_env.state.grade == legit_env.state.grade
    assert (adversary_env.tau, adversary_env.budget.max_steps, adversary_env.seed) == (DEFAULT_TAU, 2, 0)
    errors = [o.output.get("error") for o in outputs]
    assert errors[:4] == ["invalid_arguments", "invalid_arguments", "unknown_tool", "unknown_tool"]
    assert errors[10:12] == ["step_budget_exceeded", "step_budget_exceeded"]
    assert errors[13:] == ["episode_over"] * 3


def test_nothing_an_adversary_sees_comes_from_the_test_split():
    def outputs(env):
        env.reset()
        return [env.call(name, args).output for name, args in ADVERSARIAL[:12]]  # everything before submission

    env_a = make_env("budget.max_steps=2")
    rng = np.random.default_rng(1)
    t = hidden_test(env_a)
    env_b = ImbalanceEnv(
        with_test(env_a, Split(rng.normal(size=t.X.shape).astype(np.float32), np.ones_like(t.y))),
        model=env_a.model_cfg, budget=env_a.budget, tau=env_a.tau, seed=0,
    )
    assert json.dumps(outputs(env_a)) == json.dumps(outputs(env_b))
