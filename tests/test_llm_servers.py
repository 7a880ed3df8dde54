"""What real model servers accept, held against a fake that refuses what they refuse.

tests/fake_llm.py answers the OpenAI side as llama.cpp's server does (long tool-call ids,
"{ }" for calls without arguments, HTTP 500 on an assistant turn without string content) and
can refuse what OpenAI's reasoning models refuse. tests/test_llama_server.py plays whole
episodes against the real llama.cpp server.
"""

from __future__ import annotations

import json

import pytest

from imbalance.errors import UsageError
from imbalance.experiment.build import build_episode
from imbalance.experiment.episode import play
from tests.fake_llm import FakeLLM, reply
from tests.helpers import SMALL, TINY, cli_env, compose_config, run_cli

KEY = "sk-marker-servers"
SCRIPT = [
    reply(("imbalance_start", {})),
    reply(("train", {"epochs": 2}), ("eval_on_val", {})),
    reply(("sweep_thresholds", {})),
    reply(("submit_answer", {})),
]


@pytest.fixture(autouse=True)
def api_keys(monkeypatch):
    for var in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def episode(api: str, *overrides: str, refuse: dict | None = None, script=SCRIPT):
    with FakeLLM(list(script), refuse=refuse) as server:
        url = server.url if api == "anthropic" else server.openai_url
        config = compose_config([*SMALL, f"agent={api}", f"agent.base_url={url}", "agent.max_retries=0", "mlflow.enabled=false", *overrides])
        setup = build_episode(config)
        result = play(setup.env, setup.agent)
    return result, server.requests, setup.agent


def test_openai_assistant_turns_go_back_as_real_servers_take_them():
    result, requests, _ = episode("openai")
    assert result.termination_reason == "submitted"
    last = requests[-1]["body"]["messages"]
    assistant = [m for m in last if m["role"] == "assistant"]
    assert len(assistant) == 3 and all(isinstance(m["content"], str) for m in assistant)
    calls = [c for m in assistant for c in m["tool_calls"]]
    assert all(len(c["id"]) > 50 for c in calls)  # the server's own ids, answered in the tool messages
    answered = [m["tool_call_id"] for m in last if m["role"] == "tool"]
    assert answered == [c["id"] for c in calls]
    assert [c["function"]["arguments"] for c in calls][0] == "{ }"  # as the server wrote it
    assert all(r["body"]["tool_choice"] == "auto" for r in requests)  # llama.cpp ignores tools without it


def test_max_tokens_switches_once_to_max_completion_tokens_when_the_server_asks():
    result, requests, agent = episode("openai", refuse={"max_tokens": True})
    assert result.termination_reason == "submitted"
    assert "max_tokens" in requests[0]["body"]  # refused once ...
    assert all("max_completion_tokens" in r["body"] and "max_tokens" not in r["body"] for r in requests[1:])  # ... never again
    assert len(requests) == len(SCRIPT) + 1
    assert agent.artifacts()["transcript.json"]["adjustments"] == ["the server asked for max_completion_tokens instead of max_tokens; sending that"]


def test_max_tokens_param_can_be_set_outright():
    _, requests, _ = episode("openai", "agent.max_tokens_param=max_completion_tokens")
    assert all(r["body"]["max_completion_tokens"] == 1024 and "max_tokens" not in r["body"] for r in requests)


def test_a_sampling_setting_the_model_refuses_is_dropped_and_said():
    result, requests, agent = episode("openai", "agent.temperature=0.2", refuse={"temperature": True})
    assert result.termination_reason == "submitted"
    assert requests[0]["body"]["temperature"] == 0.2 and all("temperature" not in r["body"] for r in requests[1:])
    assert agent.artifacts()["transcript.json"]["adjustments"] == ["the model refused temperature; using its default"]


def test_without_adapting_a_refusal_ends_the_episode_in_error():
    result, requests, _ = episode("openai", "agent.max_tokens_param=max_tokens", refuse={"max_tokens": True})
    assert result.termination_reason == "error" and "HTTP 400" in result.error_message and len(requests) == 1


@pytest.mark.parametrize("choice, anthropic, openai", [("auto", "auto", "auto"), ("required", "any", "required"), ("none", "none", "none")])
def test_tool_choice_reaches_both_apis_in_their_own_words(choice, anthropic, openai):
    _, requests, _ = episode("anthropic", f"agent.tool_choice={choice}")
    assert {r["body"]["tool_choice"]["type"] for r in requests} == {anthropic}
    _, requests, _ = episode("openai", f"agent.tool_choice={choice}")
    assert {r["body"]["tool_choice"] for r in requests} == {openai}


def test_a_server_that_refuses_required_is_told_which_value_to_try():
    result, _, _ = episode("openai", "agent.tool_choice=required", refuse={"tool_choice": "required"})
    assert result.termination_reason == "error"
    assert result.error_message.endswith("the server may not support agent.tool_choice=required: try agent.tool_choice=auto")


def test_an_unknown_tool_choice_is_refused_before_any_work():
    with pytest.raises(UsageError, match=r"agent.tool_choice must be one of auto, required, none; got 'any', e.g. agent.tool_choice=required"):
        compose_config(["agent=anthropic", "agent.tool_choice=any"])


@pytest.mark.slow
def test_the_console_shows_a_retry_as_one_short_line_and_no_http_lines(tmp_path):
    fault = {"status": 500, "headers": {"retry-after-ms": "1"}, "json": {"error": {"type": "api_error", "message": "boom"}}}
    with FakeLLM([fault, *SCRIPT]) as server:
        proc = run_cli(*TINY, "agent=openai", f"agent.base_url={server.openai_url}", "agent.max_retries=2",
                       cwd=tmp_path, env=cli_env(OPENAI_API_KEY=KEY))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "HTTP Request:" not in proc.stdout + proc.stderr
    retries = [line for line in proc.stdout.splitlines() if "retry" in line]
    assert len(retries) == 1 and retries[0].startswith("  openai API: retry in 0.") and retries[0].endswith("(retry 1 of 2)")
    assert json.dumps(KEY) not in proc.stdout
