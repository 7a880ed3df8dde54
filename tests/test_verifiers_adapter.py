"""verifiers 0.3 (the real package): load_environment's shape, and an evaluation through
verifiers' own `evaluate` against the loopback OpenAI-compatible server that plays exactly
like the same script through imbalance.run."""

from __future__ import annotations

import asyncio
import json

import pytest
import verifiers as vf
from openai import AsyncOpenAI

from imbalance.env.tools import TOOLS, openai_tools
from imbalance.tasks import load_taskset
from tests.fake_llm import FakeLLM, reply
from tests.helpers import FAST, replay_task, run_artifact, run_task

# An unknown tool and arguments that are not JSON (both invalid, free), a paid call, then a
# call after submit_answer in the same turn, which must not be played.
SCRIPT = [
    reply(("imbalance_start", {})),
    reply(("train", {"epochs": 2}), ("no_such_tool", {}), ("smote", '{"ratio": 0.1, "k": ')),
    reply(("smote", {"ratio": 0.1, "k": 5})),
    reply(("sweep_thresholds", {}), ("submit_answer", {}), ("train", {"epochs": 1})),
]


@pytest.mark.slow  # importing verifiers takes 5-15 s
def test_load_environment_without_arguments_is_the_lite_split_with_the_catalogue_tools():
    from imbalance.integrations.episode import row_prompts
    from imbalance.integrations.verifiers import load_environment

    env = load_environment()
    dataset = env.get_eval_dataset()
    lite = load_taskset("lite")
    assert len(dataset) == len(lite) == 20
    assert [json.loads(json.dumps(row["info"])) for row in dataset] == lite
    assert [row["prompt"] for row in dataset] == row_prompts(lite)
    # The model's schema is the ToolSpec's own; the episode stays hidden.
    assert [(t.name, t.description, t.parameters) for t in env.tool_defs] == [(s.name, s.description, s.json_schema()) for s in TOOLS]
    assert "episode" not in json.dumps([t.parameters for t in env.tool_defs])
    assert env.skipped_args == {s.name: ["episode"] for s in TOOLS}
    ours = env.rubric.rubrics[0]  # verifiers groups it with its own monitor rubrics (turns, tool calls)
    assert [f.__name__ for f in ours.funcs] == ["task_reward", "passed", "test_f1", "margin_to_tau", "paid_steps_used", "invalid_calls"]
    assert ours.weights == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def comparable(messages: list[dict]) -> list[tuple]:
    """A request's conversation without what differs by construction (the fake's call ids)."""
    out = []
    for m in messages:
        calls = tuple((c["function"]["name"], c["function"]["arguments"]) for c in m.get("tool_calls") or [])
        out.append((m["role"], m.get("content") or None, calls))
    return out


@pytest.mark.slow
def test_a_verifiers_evaluation_plays_and_grades_like_imbalance_run(tmp_path, monkeypatch):
    from imbalance.integrations.verifiers import load_environment

    rows = load_taskset("lite")[:2]
    env = load_environment(overrides=FAST)
    with FakeLLM(plan=SCRIPT) as fake:
        client = vf.OpenAIChatCompletionsClient(AsyncOpenAI(base_url=fake.openai_url, api_key="local"))
        results = asyncio.run(env.evaluate(client=client, model="fake", num_examples=2, rollouts_per_example=2, max_concurrent=4))
        requests = list(fake.requests)
    outputs = results["outputs"]
    assert len(outputs) == 4 and all(o["stop_condition"] == "has_final_env_response" and not o.get("error") for o in outputs)
    assert requests[0]["body"]["tools"] == openai_tools()
    # Every v1 row has the same prompt; the task summary of the first call tells the rows apart.
    longest = {}  # that summary -> the longest conversation verifiers sent for the row
    for r in requests:
        messages = r["body"]["messages"]
        if len(messages) > 3 and len(messages) > len(longest.get(messages[3]["content"], [])):
            longest[messages[3]["content"]] = messages

    monkeypatch.setenv("OPENAI_API_KEY", "local")
    for example, row in enumerate(rows):
        with FakeLLM(plan=SCRIPT) as fake:
            run = run_task(row, [*FAST, "agent=openai", f"agent.base_url={fake.openai_url}"], tmp_path)
            reference_requests = list(fake.requests)
        m = run.data.metrics
        assert m["invalid_tool_calls"] == 2 and m["steps_used"] == 1 and run.data.tags["termination_reason"] == "submitted"
        for o in (o for o in outputs if o["example_id"] == example):
            assert o["metrics"]["test_f1"] == m["test_f1"]
            assert o["metrics"]["passed"] == m["passed"] == o["reward"] == m["reward"]
            assert o["metrics"]["margin_to_tau"] == pytest.approx(m["test_f1"] - row["tau"])
            assert o["metrics"]["paid_steps_used"] == m["steps_used"] and o["metrics"]["invalid_calls"] == m["invalid_tool_calls"]
        # The model saw the same conversation: prompt, tool results, reminders.
        reference = reference_requests[-1]["body"]["messages"]
        assert comparable(longest[reference[3]["content"]]) == comparable(reference)
        assert len(run_artifact(tmp_path, run, "tool_calls.json")) == 7  # the call after submit_answer was not played


@pytest.mark.slow
def test_reward_normalized_reaches_the_verifiers_rubric(tmp_path):
    from imbalance.integrations.verifiers import load_environment

    row = load_taskset("lite")[0]
    env = load_environment(overrides=[*FAST, "reward=normalized"])
    with FakeLLM(plan=SCRIPT) as fake:
        client = vf.OpenAIChatCompletionsClient(AsyncOpenAI(base_url=fake.openai_url, api_key="local"))
        (output,) = asyncio.run(env.evaluate(client=client, model="fake", num_examples=1, rollouts_per_example=1))["outputs"]
    calls = [("imbalance_start", {}), ("train", {"epochs": 2}), ("no_such_tool", {}), ("smote", '{"ratio": 0.1, "k": '),
             ("smote", {"ratio": 0.1, "k": 5}), ("sweep_thresholds", {}), ("submit_answer", {})]
    run = replay_task(row, calls, [*FAST, "reward=normalized"], tmp_path)
    assert 0.0 <= output["reward"] <= 1.0 and output["metrics"]["passed"] == run.data.metrics["passed"]
    assert output["reward"] == pytest.approx(run.data.metrics["reward"]) and output["metrics"]["test_f1"] == run.data.metrics["test_f1"]
