"""LLM episodes end to end: `python -m imbalance.run agent=anthropic agent.base_url=...` against a local server."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.fake_llm import FakeLLM, reply
from tests.helpers import SMALL, cli_env, run_cli

KEY = "sk-marker-e2e-93b1c7d2a4"
SCRIPT = [
    reply(("imbalance_start", {})),
    reply(("train", {"epochs": 3}), ("smote", {"ratio": 0.2, "k": 5})),
    reply(("get_test_labels", {}), ("sweep_thresholds", {})),
    reply(("submit_answer", {})),
]


def store(workdir):
    client = MlflowClient(f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("imbalance")
    return client, experiment, client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def assert_key_nowhere(workdir, *texts: str) -> None:
    for text in texts:
        assert KEY not in text
    for path in workdir.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), f"the API key leaked into {path}"


@pytest.mark.slow
@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_llm_episode_through_the_command_line(api, tmp_path):
    with FakeLLM(list(SCRIPT)) as server:
        url = server.url if api == "anthropic" else server.openai_url
        env = cli_env(**{"ANTHROPIC_API_KEY" if api == "anthropic" else "OPENAI_API_KEY": KEY})
        proc = run_cli(*SMALL, f"agent={api}", f"agent.base_url={url}", "agent.max_retries=1", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "get_test_labels()" in proc.stdout and "invalid" in proc.stdout and "TEST F1" in proc.stdout

    client, experiment, runs = store(tmp_path)
    (run,) = runs
    m, tags = run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED" and tags["termination_reason"] == "submitted" and tags["agent"] == api
    assert m["input_tokens"] > 0 and m["output_tokens"] == 80 and m["llm_calls"] == 4
    assert m["invalid_tool_calls"] == 1 and m["steps_used"] == 1 and m["tool_calls"] == 6
    assert json.loads(tags["paid_actions"]) == [{"tool": "smote", "ratio": 0.2, "k": 5}]
    assert run.data.params["agent.model"] and "agent.api_key_env" in run.data.params

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "tool_calls.json", "transcript.json"} <= artifacts
    transcript = json.loads(open(client.download_artifacts(run.info.run_id, "transcript.json", str(tmp_path / "dl"))).read())
    assert transcript["provider"] == api and len(transcript["responses"]) == 4
    assert any("get_test_labels" in json.dumps(m) for m in transcript["messages"])

    traces = client.search_traces(locations=[experiment.experiment_id], run_id=run.info.run_id)
    assert len(traces) == 1
    spans = traces[0].data.spans
    kinds = [s.span_type for s in spans]
    assert kinds.count("AGENT") == 1 and kinds.count("CHAT_MODEL") == 4 and kinds.count("TOOL") == 6  # one per tool call
    assert {s.name for s in spans if s.span_type == "TOOL"} >= {"imbalance_start", "smote", "get_test_labels"}

    assert_key_nowhere(tmp_path, proc.stdout, proc.stderr)


@pytest.mark.slow
def test_api_failure_ends_the_episode_in_error_and_replay_reproduces_an_llm_episode(tmp_path):
    env = cli_env(ANTHROPIC_API_KEY=KEY)
    # The failing server quotes the key back, as some APIs do in their error messages.
    failing = [{"status": 500, "headers": {"retry-after-ms": "1"}, "json": {"type": "error", "error": {"type": "api_error", "message": f"down for {KEY}"}}}] * 10
    with FakeLLM(list(SCRIPT)) as good, FakeLLM(failing) as bad:
        ok = run_cli(*SMALL, "agent=anthropic", f"agent.base_url={good.url}", cwd=tmp_path, env=env)
        err = run_cli(*SMALL, "agent=anthropic", f"agent.base_url={bad.url}", "agent.max_retries=1", cwd=tmp_path, env=env)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert err.returncode == 0, err.stderr[-3000:]  # an infrastructure error is recorded, not a crash
    assert "ERROR: the episode could not finish" in err.stdout

    client, _, runs = store(tmp_path)
    good_run, bad_run = runs
    assert bad_run.info.status == "FINISHED"
    assert bad_run.data.tags["termination_reason"] == "error" and "HTTP 500" in bad_run.data.tags["error_message"]
    assert "test_f1" not in bad_run.data.metrics and "passed" not in bad_run.data.metrics

    replay = run_cli(*SMALL, "agent=replay", f"agent.run_id={good_run.info.run_id}", cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr[-3000:]
    _, _, runs = store(tmp_path)
    replayed = runs[-1]
    assert replayed.data.tags["agent"] == "replay"
    assert replayed.data.metrics["test_f1"] == good_run.data.metrics["test_f1"]  # exactly
    assert replayed.data.metrics["steps_used"] == good_run.data.metrics["steps_used"]
    assert replayed.data.tags["paid_actions"] == good_run.data.tags["paid_actions"]
    assert_key_nowhere(tmp_path, ok.stdout, ok.stderr, err.stdout, err.stderr)


@pytest.mark.slow
def test_missing_key_exits_2_naming_the_variable(tmp_path):
    proc = run_cli("agent=anthropic", cwd=tmp_path)
    assert proc.returncode == 2
    assert "ANTHROPIC_API_KEY" in proc.stderr and "agent=heuristic" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["agent=replay"], "exactly one of agent.run_id"),
        (["agent=replay", "agent.run_id=0123456789abcdef"], "no MLflow store"),
        (["agent=replay", "agent.run_id=0123456789abcdef", "+make_store=1"], "no run 0123456789abcdef"),
        (["agent=replay", "agent.path=/nonexistent/tool_calls.json"], "no such file"),
    ],
)
def test_replay_errors(tmp_path, args, message):
    if "+make_store=1" in args:
        from imbalance.tracking.store import prepare_store, resolve_tracking_uri

        prepare_store(resolve_tracking_uri(None, tmp_path))
        args = [a for a in args if a != "+make_store=1"]
    proc = run_cli(*SMALL, *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_sweep_counts_an_episode_lost_to_the_api_apart_and_goes_on(tmp_path):
    """Seed 0 plays the script, seed 1 meets a 500 with no retries left, seed 2 gets a text-only reply."""
    from tests.helpers import check_summary

    fault = {"status": 500, "headers": {"retry-after-ms": "1"}, "json": {"type": "error", "error": {"type": "api_error", "message": "boom"}}}
    with FakeLLM([*SCRIPT, fault]) as server:
        proc = run_cli("-m", *SMALL, "agent=anthropic", f"agent.base_url={server.url}", "agent.max_retries=0", "seed=0,1,2",
                       cwd=tmp_path, env=cli_env(ANTHROPIC_API_KEY=KEY))
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, _, runs = store(tmp_path)
    (parent,) = [r for r in runs if r.data.tags.get("sweep") == "true"]
    episodes = [r for r in runs if "termination_reason" in r.data.tags]
    reasons = {int(e.data.params["seed"]): e.data.tags["termination_reason"] for e in episodes}
    assert reasons == {0: "submitted", 1: "error", 2: "auto_submitted"}
    assert all(e.info.status == "FINISHED" for e in episodes)
    check_summary(client.get_run(parent.info.run_id), episodes, proc.stdout)
    m = client.get_run(parent.info.run_id).data.metrics
    assert m["errors"] == 1 and m["passed"] + m["failed"] == 2  # the error is not a fail
    assert "Errors: 1 (infrastructure; not counted as failed)" in proc.stdout and "seed=1 ERROR" in proc.stdout


@pytest.mark.slow
def test_a_limit_ends_the_episode_and_is_named_in_the_run(tmp_path):
    with FakeLLM(list(SCRIPT)) as server:
        proc = run_cli(*SMALL, "agent=anthropic", f"agent.base_url={server.url}", "budget.conv_steps=2", cwd=tmp_path, env=cli_env(ANTHROPIC_API_KEY=KEY))
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, _, (run,) = store(tmp_path)
    assert run.data.tags["termination_reason"] == "auto_submitted" and run.data.tags["limit"] == "conv_steps"
    assert run.data.metrics["llm_calls"] == 2 and "test_f1" in run.data.metrics
