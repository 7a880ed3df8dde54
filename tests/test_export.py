"""python -m imbalance.export: JSONL trajectories that validate against the line schema, load
with `datasets`, and hold what the episodes did (scripted agents and both LLM APIs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imbalance.analysis.trajectories import EPISODE_SCHEMA
from imbalance.env.tools import openai_tools
from tests.fake_llm import FakeLLM, reply
from tests.helpers import SMALL, cli_env, local_uri, run_artifact, run_cli, run_snippet, runs_of, snippet_using


def export(*args: str, cwd) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, module="imbalance.export")


def lines_of(path) -> list[dict]:
    import jsonschema

    lines = [json.loads(text) for text in path.read_text().splitlines()]
    validator = jsonschema.Draft202012Validator(EPISODE_SCHEMA)
    for line in lines:
        validator.validate(line)
        calls = [c["id"] for m in line["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or []]
        answered = [m["tool_call_id"] for m in line["messages"] if m["role"] == "tool"]
        assert sorted(calls) == sorted(answered)  # every tool call has its result
        assert line["tools"] == openai_tools()
    return lines


def called(line: dict) -> list[tuple[str, object]]:
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for m in line["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or []]


@pytest.mark.slow
def test_a_heuristic_sweep_exports_an_sft_set_that_loads_with_datasets(tmp_path, monkeypatch):
    sweep = run_cli("-m", "seed=range(0,5)", *SMALL, "tau=0.5", cwd=tmp_path, timeout=900)
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    _, (parent,), episodes = runs_of(local_uri(tmp_path))
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "imbalance.export", "--sweep", parent.info.run_id, "--out", "episodes.jsonl"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"torch", "pytorch_lightning", "transformers"}  # reading runs needs no training stack
    lines = lines_of(tmp_path / "episodes.jsonl")
    passed = sum(int(e.data.metrics["passed"]) for e in episodes)
    assert 0 < passed < 5, "the bar should split these episodes, so the filter is tested"
    assert out.stdout.strip() == f"Wrote 5 episode(s) from sweep {parent.info.run_id} (children of that run) in experiment 'imbalance' to episodes.jsonl: {passed} passed"

    by_run = {e.info.run_id: e for e in episodes}
    for line in lines:
        run = by_run[line["run_id"]]
        records = run_artifact(tmp_path, run, "tool_calls.json")
        assert called(line) == [(r["tool"], r["arguments"] or {}) for r in records]  # the calls, in order
        assert (line["test_f1"], line["passed"], line["reward"]) == (run.data.metrics["test_f1"], bool(run.data.metrics["passed"]), run.data.metrics["passed"])
        assert line["agent"] == "heuristic" and line["reward_mode"] == "pass" and line["termination_reason"] == "submitted"
        assert line["usage"] == {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "llm_calls": 0}
        assert line["versions"] == {"imbalance": run.data.tags["imbalance.version"], "grader": "1", "task_set": None}
        user = line["messages"][1]["content"]
        assert user.startswith("Problem: detect the minority (positive) class in synthetic Gaussian blobs") and "F1 on a hidden TEST split >= 0.5" in user
        assert line["messages"][4]["content"].startswith("You may use up to 3 paid actions")  # the reminder after each call

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # datasets' cache, out of the home folder
    from datasets import load_dataset

    loaded = load_dataset("json", data_files=str(tmp_path / "episodes.jsonl"), split="train")
    assert loaded.num_rows == 5 and sorted(loaded["run_id"]) == sorted(by_run)
    assert loaded[0]["messages"][0]["role"] == "system"
    documented = run_snippet(snippet_using("load_dataset("), tmp_path, cli_env(HF_HOME=str(tmp_path / "hf")))  # docs/trainers.md
    assert documented.returncode == 0 and documented.stdout.startswith("5 Problem: detect the minority"), documented.stderr[-2000:]

    out = export("--sweep", parent.info.run_id, "--out", "passed.jsonl", "--filter", "passed", cwd=tmp_path)
    assert out.returncode == 0 and "(--filter passed)" in out.stdout
    kept = lines_of(tmp_path / "passed.jsonl")
    assert len(kept) == passed and all(line["passed"] for line in kept)

    one = episodes[0].info.run_id
    assert export("--run", one, "--out", "one.jsonl", cwd=tmp_path).returncode == 0
    assert [line["run_id"] for line in lines_of(tmp_path / "one.jsonl")] == [one]
    everything = export("--experiment", "imbalance", "--out", "all.jsonl", cwd=tmp_path)
    assert everything.returncode == 0 and len(lines_of(tmp_path / "all.jsonl")) == 5

    for args, message in [
        (["--run", "0123456789abcdef", "--out", "x.jsonl"], "Error: no run 0123456789abcdef in sqlite:///"),
        (["--run", parent.info.run_id, "--out", "x.jsonl"], f"is not an episode (a sweep's parent run?); for a sweep pass --sweep {parent.info.run_id}"),
        (["--sweep", "0123456789abcdef", "--out", "x.jsonl"], "Error: no run 0123456789abcdef"),
        (["--experiment", "nope", "--out", "x.jsonl"], "Error: no experiment 'nope'"),
    ]:
        proc = export(*args, cwd=tmp_path)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert not (tmp_path / "x.jsonl").exists()

    # Runs damaged by hand or by another tool: an optional metric that is NaN is null in the
    # line; a missing param is one error line naming the run, and no partial file.
    import sqlite3

    from mlflow.tracking import MlflowClient

    MlflowClient(local_uri(tmp_path)).log_metric(one, "baseline_test_f1", float("nan"))
    assert export("--run", one, "--out", "nan.jsonl", cwd=tmp_path).returncode == 0
    assert lines_of(tmp_path / "nan.jsonl")[0]["baseline_test_f1"] is None
    with sqlite3.connect(tmp_path / "mlruns" / "mlflow.db") as db:
        db.execute("DELETE FROM params WHERE run_uuid = ? AND key = 'tau'", (one,))
    proc = export("--sweep", parent.info.run_id, "--out", "x.jsonl", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"Error: run {one} has no usable param 'tau' (it has none), so it is not a complete episode run" in proc.stderr
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.slow
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_llm_episodes_export_their_conversation_in_the_openai_format(tmp_path, api):
    script = [reply(("imbalance_start", {})), reply(("train", {"epochs": 2}), ("smote", {"ratio": 0.1, "k": 5})),
              reply(("sweep_thresholds", {}), ("submit_answer", {}), ("train", {"epochs": 1}))]
    with FakeLLM(script) as server:
        url = server.openai_url if api == "openai" else server.url
        env = cli_env(**{"OPENAI_API_KEY" if api == "openai" else "ANTHROPIC_API_KEY": "sk-test"})
        proc = run_cli(*SMALL, f"agent={api}", f"agent.base_url={url}", cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
    out = export("--out", "llm.jsonl", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (line,) = lines_of(tmp_path / "llm.jsonl")
    _, _, (run,) = runs_of(local_uri(tmp_path))
    assert line["agent"] == api and line["usage"]["llm_calls"] == 3 and line["usage"]["output_tokens"] == 60
    # The model's turns as it made them (the call after submit_answer too, answered as not executed).
    assert called(line) == [("imbalance_start", {}), ("train", {"epochs": 2}), ("smote", {"ratio": 0.1, "k": 5}),
                            ("sweep_thresholds", {}), ("submit_answer", {}), ("train", {"epochs": 1})]
    records = run_artifact(tmp_path, run, "tool_calls.json")
    results = [m["content"] for m in line["messages"] if m["role"] == "tool"]
    assert results[:-1] == [json.dumps(r["result"]) for r in records]
    assert results[-1] == "not executed: the episode is over (the answer was submitted)"
    assert [m["role"] for m in line["messages"][:2]] == ["system", "user"] and "Problem: detect the minority" in line["messages"][1]["content"]
    assert sum(m["role"] == "user" for m in line["messages"]) == 3  # the task, then a reminder after each of the first two turns


@pytest.mark.parametrize(("args", "message"), [
    (["--out", "episodes.jsonl"], "Error: no MLflow store at"),
    (["--out", "."], "Error: --out . is a folder; pass a file, e.g. --out episodes.jsonl"),
    (["--out", "/proc/episodes.jsonl"], "Error: cannot write to /proc"),
    (["--out", "e.jsonl", "--filter", "failed"], "Error: argument --filter: invalid choice: 'failed' (choose from 'passed')"),
    (["--out", "e.jsonl", "--run", "a", "--sweep", "b"], "Error: argument --sweep: not allowed with argument --run"),
    (["--sweep", "abc"], "Error: the following arguments are required: --out"),
])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "imbalance.export", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 2 and errors == [errors[0]] and errors[0].startswith(message), proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"torch", "datasets", "verifiers", "trl", "transformers", "inspect_ai"}
