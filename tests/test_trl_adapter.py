"""TRL (the real package): every generated tool method through transformers' get_json_schema,
the conversion TRL applies to an environment_factory class, and a scripted rollout through
the class graded like the same calls through imbalance.run."""

from __future__ import annotations

import inspect

import pytest

from imbalance.env.reward import normalized_f1
from imbalance.env.tools import TOOLS
from imbalance.tasks import load_taskset
from tests.helpers import FAST, replay_task, run_artifact

pytestmark = pytest.mark.slow  # importing transformers and TRL takes 5-15 s

# A free call, a paid one, an out-of-range argument (free, invalid), an optional argument sent
# as null (the schema marks it nullable: it means "not given"), an unknown argument (invalid).
CALLS = [
    ("imbalance_start", {}), ("train", {"epochs": 2}), ("smote", {"ratio": 0.9, "k": 5}), ("smote", {"ratio": 0.1, "k": 5, "seed": None}),
    ("sweep_thresholds", {"num_points": None}), ("eval_on_val", {"verbose": True}), ("submit_answer", {}),
]
# What reaches the environment (and imbalance.run's replay) once nulls are dropped.
SENT = [(tool, {k: v for k, v in args.items() if v is not None}) for tool, args in CALLS]


def trl_tools(env) -> list:
    """The methods GRPOTrainer makes tools of (trl/trainer/grpo_trainer.py, 1.16): the class's
    functions except reset, get_reward and private names."""
    return [getattr(env, name) for name, _ in inspect.getmembers(type(env), predicate=inspect.isfunction)
            if name not in ("reset", "get_reward") and not name.startswith("_")]


def test_trl_turns_every_tool_method_into_the_catalogue_schema():
    from transformers.utils import get_json_schema

    from imbalance.integrations.trl import ImbalanceToolEnv

    env = ImbalanceToolEnv()
    methods = trl_tools(env)
    assert sorted(m.__name__ for m in methods) == sorted(s.name for s in TOOLS)
    for spec in TOOLS:
        schema = get_json_schema(getattr(env, spec.name))["function"]
        catalogue = spec.json_schema()
        assert (schema["name"], schema["description"]) == (spec.name, spec.description)
        properties = schema["parameters"]["properties"]
        assert list(properties) == list(catalogue["properties"])
        assert schema["parameters"].get("required", []) == catalogue["required"]
        for p in spec.params:
            assert properties[p.name]["type"] == catalogue["properties"][p.name]["type"]
            assert properties[p.name]["description"] == f"{p.description}, in {p.range}"  # the range, which types cannot hold
            assert properties[p.name].get("nullable", False) is (not p.required)


@pytest.mark.parametrize("reward", ["pass", "normalized"])
def test_a_scripted_rollout_through_the_class_grades_like_imbalance_run(tmp_path, reward):
    from imbalance.integrations.episode import row_prompts
    from imbalance.integrations.trl import ImbalanceToolEnv, task_dataset

    overrides = [*FAST, f"reward={reward}"]
    row = load_taskset("lite")[3]
    dataset_row = task_dataset("lite")[3]
    assert dataset_row["prompt"] == [row_prompts([row])[0][0], {"role": "user", "content": ""}]
    env = ImbalanceToolEnv(overrides=overrides)
    assert env.reset(**dataset_row) == row_prompts([row], overrides)[0][1]["content"]
    for tool, arguments in CALLS:
        getattr(env, tool)(**arguments)
    got = env.get_reward()
    run = replay_task(row, SENT, overrides, tmp_path)
    m = run.data.metrics
    assert got == m["reward"] and env._episode.outcome["test_f1"] == m["test_f1"] and env._episode.outcome["passed"] == bool(m["passed"])
    assert m["invalid_tool_calls"] == 2 == env._episode.outcome["invalid_tool_calls"]
    assert env._episode.records == run_artifact(tmp_path, run, "tool_calls.json")
    if reward == "normalized":
        assert got == pytest.approx(normalized_f1(m["test_f1"], m["baseline_test_f1"], row["oracle_f1"]))
    else:
        assert got == m["passed"]


def test_get_reward_submits_for_a_model_that_did_not(tmp_path):
    from imbalance.integrations.trl import ImbalanceToolEnv

    row = load_taskset("lite")[4]
    env = ImbalanceToolEnv(overrides=FAST)
    env.reset(**row)
    env.train(epochs=2)
    reward = env.get_reward()
    assert env._episode.outcome["termination_reason"] == "auto_submitted"
    assert reward == replay_task(row, [("train", {"epochs": 2})], FAST, tmp_path).data.metrics["reward"]


@pytest.mark.parametrize("reward", ["pass", "normalized"])
def test_a_group_of_8_rollouts_of_one_row_gets_one_reward(reward):
    """GRPO's premise: GRPOTrainer makes one instance per rollout; the same calls on a row give one reward."""
    from imbalance.integrations.trl import ImbalanceToolEnv

    row = load_taskset("lite")[5]
    rewards = set()
    for _ in range(8):
        env = ImbalanceToolEnv(overrides=[*FAST, f"reward={reward}"])
        env.reset(**row)
        for tool, arguments in CALLS:
            getattr(env, tool)(**arguments)
        rewards.add((env.get_reward(), env._episode.outcome["test_f1"]))
    assert len(rewards) == 1
