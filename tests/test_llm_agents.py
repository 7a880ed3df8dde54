"""The LLM conversation runner, through the real anthropic and openai clients against a local server."""

from __future__ import annotations

import json

import pytest

from imbalance.agents import AgentContext, make_agent, require_api_key
from imbalance.env.tools import TOOLS
from imbalance.errors import UsageError
from imbalance.experiment.build import build_episode
from imbalance.experiment.episode import play
from imbalance.seeding import derive_seed
from tests.fake_llm import FakeLLM, reply, text
from tests.helpers import DEFAULT_TAU, SMALL, compose_config

KEY = "sk-marker-4f1e9c2b7d"
APIS = ["anthropic", "openai"]
FAST = {"retry-after-ms": "1"}


@pytest.fixture(autouse=True)
def api_keys(monkeypatch):
    for var in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "ANTHROPIC_CUSTOM_HEADERS", "OPENAI_CUSTOM_HEADERS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def episode(api: str, script: list[dict], *overrides: str, history=None):
    with FakeLLM(script) as server:
        url = server.url if api == "anthropic" else server.openai_url
        config = compose_config([*SMALL, f"agent={api}", f"agent.base_url={url}", "agent.max_retries=2", "agent.timeout_s=5", "mlflow.enabled=false", *overrides])
        setup = build_episode(config)
        agent = setup.agent
        if history:  # as if earlier episodes had been found in the store (agent.history=true)
            agent = make_agent(config.agent, AgentContext(seed=1, tau=config.tau, max_steps=config.budget.max_steps,
                                                          conv_steps=config.budget.conv_steps, source=setup.env.splits.description, history=history))
        result = play(setup.env, agent)
    return result, server.requests, agent


def tool_results(api: str, request: dict) -> list[tuple[str, bool]]:
    """(content, is_error) of the tool results in a request's last message(s)."""
    messages = request["body"]["messages"]
    if api == "anthropic":
        return [(b["content"], b.get("is_error", False)) for b in messages[-1]["content"] if b["type"] == "tool_result"]
    out = []
    for m in reversed(messages[:-1]):
        if m["role"] != "tool":
            break
        out.append((m["content"], m["content"].startswith("ERROR: ")))
    return list(reversed(out))


def last_user_text(api: str, request: dict) -> str:
    last = request["body"]["messages"][-1]
    return last["content"][-1]["text"] if api == "anthropic" else last["content"]


GOOD = [
    reply(("imbalance_start", {})),
    reply(("train", {"epochs": 3}), ("set_class_weights", {"beta": 0.99}), ("sweep_thresholds", {})),
    reply(("submit_answer", {}), text="Submitting."),
]


@pytest.mark.parametrize("api", APIS)
def test_tool_use_turns_to_submission(api):
    result, requests, agent = episode(api, list(GOOD))
    assert result.termination_reason == "submitted" and result.grade is not None
    assert [r["tool"] for r in result.records] == ["imbalance_start", "train", "set_class_weights", "sweep_thresholds", "submit_answer"]
    assert result.steps_used == 1 and len(requests) == 3
    first = requests[0]["body"]
    # the tools come from the single catalogue
    names = [t["name"] for t in first["tools"]] if api == "anthropic" else [t["function"]["name"] for t in first["tools"]]
    assert names == [s.name for s in TOOLS]
    prompt = json.dumps(first)
    assert f"F1 on a hidden TEST split >= {DEFAULT_TAU}" in prompt and "at most 3 paid actions" in prompt and "synthetic Gaussian blobs" in prompt
    # every tool call of a turn answered in order, then the original reminder
    results = tool_results(api, requests[2])
    assert len(results) == 3 and json.loads(results[1][0].removeprefix("ERROR: "))["applied"] is True
    assert last_user_text(api, requests[2]) == (
        "You may use up to 3 paid actions; remaining: 2 (steps_used=1). Free tools: train, eval_on_val, sweep_thresholds."
    )
    metrics = agent.metrics()
    if api == "anthropic":
        assert metrics["input_tokens"] == 300 and metrics["output_tokens"] == 60 and metrics["cache_read_input_tokens"] == 150
    else:
        assert metrics["input_tokens"] == 300 and metrics["cache_read_input_tokens"] == 150 and metrics["output_tokens"] == 60
    assert metrics["llm_calls"] == 3
    transcript = agent.artifacts()["transcript.json"]
    assert len(transcript["responses"]) == 3 and transcript["messages"][-1]["role"] == "assistant"


@pytest.mark.parametrize("api", APIS)
def test_a_text_only_turn_ends_the_episode_with_auto_submission(api):
    result, requests, _ = episode(api, [reply(("train", {"epochs": 2})), text("I think this is good.")])
    assert result.termination_reason == "auto_submitted" and result.grade is not None and result.limit is None
    assert len(requests) == 2


@pytest.mark.parametrize("api", APIS)
def test_bad_arguments_and_unknown_tools_come_back_as_error_results(api):
    bad = "{\"epochs\": " if api == "openai" else "not an object"
    script = [
        reply(("train", bad), ("get_test_labels", {}), ("smote", {"ratio": 2.0, "k": 5}), ("imbalance_start", {"tau": 0.0})),
        reply(("submit_answer", {})),
    ]
    result, requests, _ = episode(api, script)
    assert result.termination_reason == "submitted" and result.invalid_tool_calls == 4 and result.steps_used == 0
    results = tool_results(api, requests[1])
    assert [is_error for _, is_error in results] == [True, True, True, True]
    errors = [json.loads(content.removeprefix("ERROR: "))["error"] for content, _ in results]
    assert errors == ["invalid_arguments", "unknown_tool", "invalid_arguments", "invalid_arguments"]
    assert result.grade.passed == (result.grade.test_f1 >= DEFAULT_TAU)


@pytest.mark.parametrize("api", APIS)
def test_running_out_of_turns_auto_submits(api):
    result, requests, _ = episode(api, [reply(("eval_on_val", {}))] * 5, "budget.conv_steps=3")
    assert result.termination_reason == "auto_submitted" and result.limit == "conv_steps"
    assert len(requests) == 3


@pytest.mark.parametrize("api", APIS)
def test_token_budget_ends_the_episode(api):
    result, requests, _ = episode(api, [reply(("eval_on_val", {}))] * 5, "agent.token_budget=250")
    assert result.termination_reason == "auto_submitted" and result.limit == "token_budget"
    assert len(requests) == 2  # 200 tokens after one call, 400 after two


@pytest.mark.parametrize("api", APIS)
def test_wall_clock_limit_ends_the_episode(api):
    # the first reply alone outlasts the limit: only a lower bound on time matters, so load cannot flip the count
    slow = {"delay": 0.8, **reply(("eval_on_val", {}))}
    result, requests, _ = episode(api, [slow] * 5, "agent.wall_clock_s=0.5")
    assert result.limit == "wall_clock" and result.termination_reason == "auto_submitted" and len(requests) == 1
    assert [r["tool"] for r in result.records] == ["eval_on_val"]  # the first turn ran; the runner then submitted


@pytest.mark.parametrize("api", APIS)
def test_submit_after_sweep_option(api):
    result, _, _ = episode(api, [reply(("sweep_thresholds", {}), ("train", {"epochs": 1}))], "agent.submit_after_sweep=true")
    assert [r["tool"] for r in result.records] == ["sweep_thresholds"]  # the train after it never ran
    assert result.termination_reason == "auto_submitted" and result.grade is not None


@pytest.mark.slow
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "headers": FAST, "json": {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}},
        {"status": 500, "headers": FAST, "json": {"type": "error", "error": {"type": "api_error", "message": "boom"}}},
        {"status": 529, "headers": FAST, "json": {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}},
        {"error_body": "overloaded_error"},
        {"drop": True},
        {"delay": 2.5},
        {"body": "{not json"},
    ],
    ids=["429", "500", "529", "overloaded-body", "dropped", "timeout", "malformed-json"],
)
def test_transient_faults_are_retried_and_the_episode_completes(api, fault):
    result, requests, agent = episode(api, [fault, *GOOD], "agent.timeout_s=1")
    assert result.termination_reason == "submitted", result.error_message
    assert len(requests) == 4


@pytest.mark.slow
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    "fault, message",
    [
        ({"status": 500, "headers": FAST, "json": {"error": {"type": "api_error", "message": "boom"}}}, "HTTP 500"),
        ({"status": 401, "json": {"error": {"type": "authentication_error", "message": "bad key"}}}, "HTTP 401"),
        ({"drop": True}, "unreachable after 2 retries"),
        ({"body": "{not json"}, "malformed JSON"),
    ],
    ids=["500", "401", "dropped", "malformed-json"],
)
def test_persistent_api_failure_ends_in_error_not_a_failed_grade(api, fault, message):
    result, requests, agent = episode(api, [reply(("train", {"epochs": 1})), *[fault] * 5])
    assert result.termination_reason == "error" and result.grade is None
    assert message in result.error_message
    assert len(requests) == (2 if "401" in message else 4)  # 401 is not retried
    assert agent.artifacts()["transcript.json"]["errors"]


def test_retry_after_is_honoured():
    wait = {"status": 429, "headers": {"retry-after": "1"}, "json": {"type": "error", "error": {"type": "rate_limit_error", "message": "wait"}}}
    result, requests, _ = episode("anthropic", [wait, *GOOD])
    assert result.termination_reason == "submitted"
    assert requests[1]["t"] - requests[0]["t"] >= 0.95


def test_anthropic_prompt_caching_marks_the_stable_prefix_and_one_moving_breakpoint():
    _, requests, _ = episode("anthropic", list(GOOD))
    body = requests[2]["body"]
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in t for t in body["tools"][:-1])
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    marks = [b for m in body["messages"] if m["role"] == "user" for b in m["content"] if "cache_control" in b]
    assert len(marks) == 1 and marks[0] is body["messages"][-1]["content"][-1]


def test_openai_sends_the_agent_seed_and_sampling_settings():
    """The sampling seed is the episode's agent stream: derived from `seed` and `trial`."""
    _, requests, _ = episode("openai", list(GOOD), "agent.temperature=0.3", "seed=5", "trial=2")
    body = requests[0]["body"]
    assert body["seed"] == derive_seed(5, "agent/2") and body["temperature"] == 0.3 and body["max_tokens"] == 1024


def test_history_lists_earlier_paid_action_sets():
    history = [[{"tool": "smote", "ratio": 0.2, "k": 5}], [{"tool": "set_class_weights", "beta": 0.99}, {"tool": "set_threshold", "threshold": 0.3}]]
    _, requests, _ = episode("anthropic", list(GOOD), "agent.history=true", history=history)
    prompt = requests[0]["body"]["messages"][0]["content"][0]["text"]
    assert "1. smote(ratio=0.2, k=5)" in prompt
    assert "2. set_class_weights(beta=0.99) + set_threshold(threshold=0.3)" in prompt
    assert "Choose a different combination" in prompt
    _, plain, _ = episode("anthropic", list(GOOD), history=history)  # history=false: not listed
    assert "Earlier episodes" not in json.dumps(plain[0]["body"])


@pytest.mark.parametrize("api, var", [("anthropic", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY")])
def test_missing_key_names_the_variable_and_the_offline_agent(api, var, monkeypatch):
    monkeypatch.delenv(var)
    with pytest.raises(UsageError) as err:
        require_api_key(compose_config([f"agent={api}"]).agent)
    assert var in str(err.value) and "agent=heuristic" in str(err.value)


@pytest.mark.parametrize("api", APIS)
def test_the_key_is_sent_only_as_a_header(api):
    result, requests, agent = episode(api, list(GOOD))
    assert requests[0]["headers"]["authorization"] == f"Bearer {KEY}" or requests[0]["headers"].get("x-api-key") == KEY
    assert all(KEY not in json.dumps(r["body"]) for r in requests)
    assert KEY not in json.dumps(agent.artifacts()) and KEY not in json.dumps(result.records)


@pytest.mark.parametrize("api", APIS)
def test_a_key_echoed_by_the_server_is_redacted(api):
    echo = {"status": 401, "json": {"type": "error", "error": {"type": "authentication_error", "message": f"Incorrect API key provided: {KEY}"}}}
    result, _, agent = episode(api, [echo])
    assert result.termination_reason == "error"
    assert KEY not in result.error_message and "[REDACTED]" in result.error_message
    assert KEY not in json.dumps(agent.artifacts())
