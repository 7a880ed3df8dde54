"""The environment: every tool's effect, cost, no-op and error; budget; grading; determinism; no leakage."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

from imbalance.data.splits import Split
from imbalance.env.environment import ImbalanceEnv
from imbalance.env.tools import PAID_TOOLS, TOOLS, TOOLS_BY_NAME
from tests.helpers import hidden_test, make_env, with_test


def call(env, tool, **args):
    return env.call(tool, args)


# ------------------------------------------------------------------------- tool specs
def test_tool_specs_are_complete_json_schemas():
    assert set(PAID_TOOLS) == {"smote", "set_class_weights", "use_focal", "set_threshold"}
    for spec in TOOLS:
        schema = spec.json_schema()
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert set(schema["required"]) <= set(schema["properties"])
        assert spec.description and (spec.description.startswith("PAID") == spec.paid)
        json.dumps(schema)  # serialisable as sent to the LLM APIs
    smote = TOOLS_BY_NAME["smote"].json_schema()
    assert smote["properties"]["ratio"] == {
        "type": "number", "description": "target minority fraction of the training set", "exclusiveMinimum": 0, "maximum": 0.5,
    }
    assert smote["required"] == ["ratio", "k"]
    assert TOOLS_BY_NAME["smote"].signature() == "smote(ratio, k[, seed])"


@pytest.mark.parametrize(
    "tool, args, message",
    [
        ("smote", {"ratio": "0.2", "k": 5}, "ratio must be a number in (0, 0.5]; got '0.2' (str)"),
        ("smote", {"ratio": True, "k": 5}, "got True (bool)"),
        ("smote", {"ratio": float("nan"), "k": 5}, "got nan"),
        ("smote", {"ratio": float("inf"), "k": 5}, "got inf"),
        ("smote", {"ratio": 0.0, "k": 5}, "got 0.0"),
        ("smote", {"ratio": 0.2, "k": 2.5}, "k must be an integer in [1, 100]; got 2.5"),
        ("smote", {"ratio": 0.2}, "missing required argument 'k'"),
        ("smote", {"ratio": 0.2, "k": 5, "n_jobs": 4}, "unknown argument 'n_jobs'"),
        ("smote", [0.2, 5], "arguments must be a JSON object"),
        ("set_class_weights", {"beta": -0.5}, "beta must be a number in [0, 1]"),
        ("use_focal", {"alpha": 0.25, "gamma": 11}, "gamma must be a number in [0, 10]"),
        ("set_threshold", {"threshold": 1e300}, "threshold must be a number in [0, 1]"),
        ("train", {"epochs": 10**9}, "epochs must be an integer in [1, 100]"),
        ("train", {"epochs": 0}, "epochs must be an integer in [1, 100]"),
        ("train", {"epochs": 5, "lr": -1}, "lr must be a number in (0, 1]"),
        ("sweep_thresholds", {"num_points": 10**9}, "num_points must be an integer in [2, 10000]"),
        ("imbalance_start", {"tau": 0.0}, "unknown argument 'tau'"),
        ("get_budget", {"max_steps": 100}, "unknown argument 'max_steps'"),
    ],
)
def test_invalid_arguments_are_free_clear_errors(env, tool, args, message):
    before = (env.state.steps_used, env.state.setup.threshold, env.metrics())
    result = env.call(tool, args)
    assert result.invalid and not result.charged
    assert result.output["error"] == "invalid_arguments"
    assert message in result.output["message"]
    assert (env.state.steps_used, env.state.setup.threshold, env.metrics()) == before


def test_integral_floats_are_accepted_as_integers(env):
    result = call(env, "train", epochs=2.0)
    assert not result.is_error and result.output["trained_epochs"] == 2


def test_unknown_tools_are_free_invalid_calls(env):
    for name in ("get_test_labels", "read_file", "", 42):
        result = env.call(name, {})
        assert result.invalid and result.output["error"] == "unknown_tool"
    assert env.state.steps_used == 0 and env.state.invalid_calls == 4


def test_long_arguments_are_cut_in_messages_and_records(env):
    huge = "x" * 1_000_000
    result = env.call("smote", {"ratio": huge, "k": 5})
    assert len(result.output["message"]) < 300
    assert len(json.dumps(result.arguments)) < 20_000


# ------------------------------------------------------------------------- free tools
def test_imbalance_start_summarises_without_test_information(env):
    out = call(env, "imbalance_start").output
    assert out["train"] == {"rows": 3000, "positives": 90} and out["val"] == {"rows": 1000, "positives": 30}
    assert out["tau"] == env.tau and out["max_steps"] == env.budget.max_steps
    assert "test" not in json.dumps(out).lower().replace("hidden test", "")
    assert 0.0 <= out["baseline_val_f1"] <= 1.0


def test_eval_on_val_reports_validation_metrics_at_the_threshold(env):
    out = call(env, "eval_on_val").output
    proba = env._val_proba
    expected = f1_score(env.splits.val.y, proba >= env.state.setup.threshold)
    assert out["val_f1"] == pytest.approx(expected, abs=1e-6)
    assert 0 < out["pr_auc"] <= 1 and env.state.steps_used == 0


def test_train_is_free_and_changes_the_model(env):
    before = env._val_proba.copy()
    result = call(env, "train", epochs=3, lr=0.01)
    assert not result.charged and result.output["trained_epochs"] == 3 and result.output["lr"] == 0.01
    assert not np.array_equal(before, env._val_proba)


def test_train_continues_the_optimizer_until_a_paid_action_reinitialises_the_model(env):
    per_epoch = -(-len(env._train_y) // env.model_cfg.batch_size)
    after_reset = env._model.optimizer_steps
    assert after_reset == env.retrain_epochs * per_epoch
    optimizer = env._model._optimizer
    call(env, "train", epochs=2, lr=0.001)
    assert env._model._optimizer is optimizer and optimizer.param_groups[0]["lr"] == 0.001
    call(env, "train", epochs=1)
    assert optimizer.param_groups[0]["lr"] == env.model_cfg.lr  # a call's lr is for that call only
    assert env._model.optimizer_steps == after_reset + 3 * per_epoch  # moments and step count carried on
    call(env, "use_focal", alpha=0.75, gamma=2.0)
    assert env._model._optimizer is not optimizer  # a new model, a new optimizer
    assert env._model.optimizer_steps == env.retrain_epochs * per_epoch
    call(env, "set_threshold", threshold=0.3)  # no re-initialisation: training continues
    call(env, "train", epochs=1)
    assert env._model.optimizer_steps == (env.retrain_epochs + 1) * per_epoch


def test_train_epochs_are_capped_on_large_data():
    env = make_env("budget.max_train_rows_per_call=7000")  # 3000 train rows -> at most 2 epochs
    env.reset()
    out = call(env, "train", epochs=50).output
    assert out["trained_epochs"] == 2 and "capped at 2 epochs" in out["note"]


def test_sweep_thresholds_sets_the_best_validation_threshold_for_free(env):
    call(env, "train", epochs=5)
    grid = call(env, "sweep_thresholds", num_points=11).output
    points = np.linspace(0, 1, 11)
    grid_f1 = [f1_score(env.splits.val.y, env._val_proba >= t, zero_division=0) for t in points]
    assert grid["threshold"] == pytest.approx(points[np.flatnonzero(np.isclose(grid_f1, max(grid_f1)))[-1]])  # the best grid point (ties: the highest)
    assert grid["val_f1"] == pytest.approx(max(grid_f1), abs=1e-6)
    exact = call(env, "sweep_thresholds").output
    assert exact["val_f1"] >= grid["val_f1"]
    assert env.state.setup.threshold == exact["threshold"] and env.state.steps_used == 0
    # no threshold does better on validation than the exact sweep's
    proba, y = env._val_proba, env.splits.val.y
    assert max(f1_score(y, proba >= t) for t in np.unique(proba)) == pytest.approx(exact["val_f1"], abs=1e-6)


def test_get_budget_lists_paid_actions(env):
    call(env, "set_threshold", threshold=0.3)
    out = call(env, "get_budget").output
    assert out == {"max_steps": 3, "steps_used": 1, "remaining": 2, "paid_actions": [{"tool": "set_threshold", "threshold": 0.3}]}


# ------------------------------------------------------------------------- paid tools
def test_smote_oversamples_to_the_ratio_retrains_and_costs_one_step(env):
    before = env._val_proba.copy()
    result = call(env, "smote", ratio=0.2, k=5)
    assert result.charged and env.state.steps_used == 1
    out = result.output
    assert out["applied"] and out["minority_frac"] == pytest.approx(0.2, abs=1e-3)
    assert out["train_rows"] == pytest.approx(2910 / 0.8, abs=2) and out["retrained_epochs"] == env.retrain_epochs
    assert not np.array_equal(before, env._val_proba)
    # a higher ratio resamples the original training rows, not the synthetic ones
    higher = call(env, "smote", ratio=0.4, k=5)
    assert higher.charged and higher.output["train_rows"] == pytest.approx(2910 / 0.6, abs=2)


def test_a_lower_smote_ratio_resamples_down_and_one_below_the_original_fraction_undoes_it(env):
    original = len(env._train_y)  # 3000 rows, 90 positives: fraction 0.03
    call(env, "smote", ratio=0.3, k=5)
    lower = call(env, "smote", ratio=0.1, k=5)
    assert lower.charged and lower.output["train_rows"] == pytest.approx(2910 / 0.9, abs=2)
    undo = call(env, "smote", ratio=0.01, k=5)
    assert undo.charged and undo.output["train_rows"] == original and undo.output["train_positives"] == 90 and "original training rows" in undo.output["note"]
    assert env.state.setup.smote is None and env.state.steps_used == 3
    again = call(env, "smote", ratio=0.01, k=5)  # nothing left to undo: free
    assert not again.charged and again.output["applied"] is False and env.state.steps_used == 3


def test_smote_repeated_or_asking_for_no_new_row_is_a_free_no_op(env):
    # 90 positives in 3000 rows: a ratio a hair above 0.03 asks for no new row (imbalanced-learn would raise)
    tiny = call(env, "smote", ratio=0.03 + 1e-7, k=5)
    assert not tiny.charged and not tiny.invalid and tiny.output["applied"] is False and env.state.steps_used == 0
    # 0.3 is not reached exactly (0.29989...); the identical call must still be recognised as done
    first = call(env, "smote", ratio=0.3, k=5)
    assert first.charged and first.output["minority_frac"] < 0.3
    rows = len(env._train_y)
    for _ in range(3):
        again = call(env, "smote", ratio=0.3, k=5)
        assert not again.charged and again.output["applied"] is False and "no cost" in again.output["message"]
    assert env.state.steps_used == 1 and len(env._train_y) == rows


def test_smote_k_must_fit_the_positive_rows(env):
    result = call(env, "smote", ratio=0.2, k=90)
    assert result.invalid and "k must be below the number of positive training rows (90)" in result.output["message"]
    assert env.state.steps_used == 0


def test_smote_seed_argument_makes_it_reproducible_and_differs_by_seed():
    outs = []
    for seed in (7, 7, 8):
        env = make_env()
        env.reset()
        call(env, "smote", ratio=0.3, k=5, seed=seed)
        outs.append(env._train_X.copy())
    assert np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[0], outs[2])


@pytest.mark.parametrize("tool, args", [("set_class_weights", {"beta": 0.999}), ("use_focal", {"alpha": 0.75, "gamma": 2.0})])
def test_loss_actions_retrain_cost_one_step_and_repeat_free(env, tool, args):
    before = env._val_proba.copy()
    first = env.call(tool, args)
    assert first.charged and first.output["applied"] and first.output["remaining"] == 2
    assert not np.array_equal(before, env._val_proba)
    spec = env._loss_spec()
    assert (spec.class_weights is not None) == (tool == "set_class_weights")
    assert (spec.focal_gamma is not None) == (tool == "use_focal")
    repeat = env.call(tool, args)
    assert not repeat.charged and repeat.output["applied"] is False and env.state.steps_used == 1


def test_class_weights_follow_the_effective_number_formula(env):
    out = call(env, "set_class_weights", beta=0.999).output
    w_neg, w_pos = out["class_weights"]
    def e(n):
        return (1 - 0.999**n) / (1 - 0.999)
    assert w_pos / w_neg == pytest.approx(e(2910) / e(90), rel=1e-9)


def test_set_threshold_changes_only_the_threshold(env):
    proba = env._val_proba.copy()
    result = call(env, "set_threshold", threshold=0.25)
    assert result.charged and env.state.setup.threshold == 0.25
    assert np.array_equal(proba, env._val_proba)  # no retraining
    assert result.output["val"]["val_f1"] == pytest.approx(f1_score(env.splits.val.y, proba >= 0.25), abs=1e-6)
    assert not call(env, "set_threshold", threshold=0.25).charged


def test_paid_actions_beyond_the_budget_change_nothing():
    env = make_env("budget.max_steps=1")
    env.reset()
    assert call(env, "set_threshold", threshold=0.3).charged
    before = (env.state.setup.threshold, env._val_proba.copy(), env.state.steps_used, env._loss_spec())
    for tool, args in [("smote", {"ratio": 0.3, "k": 5}), ("set_class_weights", {"beta": 0.9}), ("use_focal", {"alpha": 0.5, "gamma": 1.0}), ("set_threshold", {"threshold": 0.6})]:
        result = env.call(tool, args)
        assert result.output["error"] == "step_budget_exceeded" and not result.charged and not result.invalid
    assert env.state.setup.threshold == before[0] and np.array_equal(env._val_proba, before[1])
    assert env.state.steps_used == 1 and env._loss_spec() == before[3]
    assert len(env._train_y) == 3000
    assert env.submit().passed == (env.state.grade.test_f1 >= env.tau)


def test_zero_budget_allows_free_tools_only():
    env = make_env("budget.max_steps=0")
    env.reset()
    assert call(env, "smote", ratio=0.3, k=5).output["error"] == "step_budget_exceeded"
    assert not call(env, "train", epochs=1).is_error


# ------------------------------------------------------------------------- grading
def test_submit_grades_once_and_ends_the_episode(env):
    call(env, "train", epochs=3)
    call(env, "sweep_thresholds")
    result = call(env, "submit_answer")
    assert result.output["submitted"] and env.done
    grade = env.state.grade
    test_proba = env._grader._proba(env._model)
    assert grade.test_f1 == pytest.approx(f1_score(hidden_test(env).y, test_proba >= grade.threshold), abs=1e-12)
    assert grade.passed == (grade.test_f1 >= env.tau)
    for tool, args in [("submit_answer", {}), ("train", {"epochs": 1}), ("set_threshold", {"threshold": 0.01})]:
        refused = env.call(tool, args)
        assert refused.output["error"] == "episode_over" and refused.invalid
    assert env.state.grade is grade
    assert "test_f1" not in result.output  # the grade goes to the runner, not the agent


def test_passing_requires_the_bar():
    for tau, expected in [(0.0, True), (1.0, False)]:
        env = make_env(f"tau={tau}")
        env.reset()
        assert env.submit().passed is expected


def test_step_is_gymnasium_like(env):
    obs, reward, terminated, truncated, info = env.step({"tool": "train", "arguments": {"epochs": 1}})
    assert obs["trained_epochs"] == 1 and reward == 0.0 and not terminated and not truncated
    obs, reward, terminated, truncated, info = env.step({"tool": "submit_answer"})
    assert terminated and reward == float(info["grade"].passed)


def test_max_tool_calls_truncates():
    env = make_env("budget.max_tool_calls=3")
    env.reset()
    for _ in range(3):
        assert not env.truncated
        env.call("get_budget")
    assert env.truncated
    env.submit(auto=True)
    assert env.done and env.state.auto_submitted and not env.truncated


# ------------------------------------------------------------------------- determinism, leakage
SCRIPT = [
    ("imbalance_start", {}), ("train", {"epochs": 3}), ("smote", {"ratio": 0.15, "k": 5}), ("sweep_thresholds", {}),
    ("set_class_weights", {"beta": 0.99}), ("use_focal", {"alpha": 0.5, "gamma": 1.0}), ("eval_on_val", {}),
    ("sweep_thresholds", {"num_points": 50}), ("submit_answer", {}),
]


def play_script(env):
    env.reset()
    return [env.call(t, a).output for t, a in SCRIPT], env.state.grade


def test_same_seed_same_results_to_the_last_digit():
    outputs_a, grade_a = play_script(make_env("seed=5"))
    outputs_b, grade_b = play_script(make_env("seed=5"))
    assert json.dumps(outputs_a) == json.dumps(outputs_b)
    assert grade_a == grade_b
    outputs_c, grade_c = play_script(make_env("seed=6"))
    assert json.dumps(outputs_a) != json.dumps(outputs_c)


def test_reset_twice_with_one_seed_reproduces_the_episode():
    env = make_env("seed=5")
    first = play_script(env)
    second = play_script(env)
    assert json.dumps(first[0]) == json.dumps(second[0]) and first[1] == second[1]


def test_model_seed_changes_training_but_not_the_data():
    a, b = make_env("model.seed=1"), make_env("model.seed=2")
    a.reset(), b.reset()
    assert np.array_equal(a.splits.val.X, b.splits.val.X)
    assert not np.array_equal(a._val_proba, b._val_proba)


def test_no_tool_result_depends_on_the_test_split():
    """Same train/val with a different TEST: every result before submission is identical."""
    env_a = make_env("seed=3")
    rng = np.random.default_rng(0)
    t = hidden_test(env_a)
    other_test = Split(rng.normal(size=t.X.shape).astype(np.float32), rng.permutation(t.y))
    env_b = ImbalanceEnv(with_test(env_a, other_test), model=env_a.model_cfg, budget=env_a.budget, tau=env_a.tau, seed=3)
    outs_a, grade_a = play_script(env_a)
    outs_b, grade_b = play_script(env_b)
    assert json.dumps(outs_a) == json.dumps(outs_b)
    assert grade_a.test_f1 != grade_b.test_f1  # the grade alone sees the test split


def test_calls_before_reset_are_a_programming_error():
    env = make_env()
    with pytest.raises(RuntimeError, match="reset"):
        env.call("get_budget")


def test_a_finished_episode_is_freed_without_the_cyclic_garbage_collector():
    """No reference cycles: 50 episodes in one process must not pile up their arrays."""
    import gc
    import weakref

    from imbalance.agents.heuristic import HeuristicAgent
    from imbalance.experiment.episode import play

    env = make_env("budget.max_steps=2")
    gc.collect()
    gc.disable()
    try:
        result = play(env, HeuristicAgent())
        assert result.grade is not None
        env_ref, data_ref = weakref.ref(env), weakref.ref(env._Xt)
        del env, result
        assert env_ref() is None and data_ref() is None
    finally:
        gc.enable()
