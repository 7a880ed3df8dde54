"""Inspect AI (the real package): the @task's tools are the catalogue's, and an evaluation with
Inspect's mockllm model, epochs and a pass@k reducer grades like imbalance.run."""

from __future__ import annotations

import pytest

from imbalance.env.tools import TOOLS
from imbalance.tasks import load_taskset
from tests.helpers import FAST, replay_task

pytestmark = pytest.mark.slow  # importing inspect_ai and an evaluation take 5-30 s

# Turns of the scripted model: one call each, then three in one turn (the last, after
# submit_answer, must not be played). The out-of-range smote is answered by Inspect itself.
TURNS = [
    [("imbalance_start", {})], [("train", {"epochs": 2})], [("smote", {"ratio": 0.9, "k": 5})], [("smote", {"ratio": 0.1, "k": 5})],
    [("sweep_thresholds", {}), ("submit_answer", {}), ("train", {"epochs": 1})],
]
PLAYED = [("imbalance_start", {}), ("train", {"epochs": 2}), ("smote", {"ratio": 0.1, "k": 5}), ("sweep_thresholds", {}), ("submit_answer", {})]


def scripted_model():
    """mockllm answering by turn; usage set, or Inspect would count tokens with a tiktoken file it downloads."""
    from inspect_ai.model import ChatMessageAssistant, ModelOutput, ModelUsage, get_model
    from inspect_ai.tool import ToolCall

    def answer(messages, tools, tool_choice, config):
        turn = sum(1 for m in messages if m.role == "assistant")
        if turn < len(TURNS):
            calls = [ToolCall(id=f"call_{turn}_{i}", function=name, arguments=args) for i, (name, args) in enumerate(TURNS[turn])]
            output = ModelOutput.from_message(ChatMessageAssistant(content="", tool_calls=calls, model="mockllm/model"), stop_reason="tool_calls")
        else:
            output = ModelOutput.from_content("mockllm/model", "done")
        output.usage = ModelUsage(input_tokens=10, output_tokens=5, total_tokens=15)
        return output

    return get_model("mockllm/model", custom_outputs=answer)


def test_the_tools_carry_the_catalogue_schema():
    from imbalance.integrations.inspect_task import tool_params

    for spec in TOOLS:
        params = tool_params(spec).model_dump(exclude_none=True)
        catalogue = spec.json_schema()
        assert params["required"] == catalogue["required"] and params["additionalProperties"] is False
        for p in spec.params:
            got, want = params["properties"][p.name], catalogue["properties"][p.name]
            assert got["type"] == want["type"] and got["description"] == f"{p.description}, in {p.range}"
            # Inclusive bounds are enforced by Inspect; its schema type has no exclusive ones.
            assert {k: v for k, v in got.items() if k in ("minimum", "maximum")} == {k: v for k, v in want.items() if k in ("minimum", "maximum")}


def test_an_inspect_evaluation_with_epochs_grades_like_imbalance_run(tmp_path, monkeypatch):
    from inspect_ai import Epochs, eval

    from imbalance.integrations.inspect_task import imbalance_task

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # Inspect's own traces and buffers
    task = imbalance_task(overrides=FAST)
    rows = load_taskset("lite")[:2]
    assert [s.id for s in task.dataset][:2] == [r["task_id"] for r in rows] and task.dataset[0].metadata == rows[0]
    (log,) = eval(task, model=scripted_model(), epochs=Epochs(2, ["mean", "pass_at_2"]), limit=2, log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    assert [(s.name, s.reducer) for s in log.results.scores] == [("task_passed", "mean"), ("task_passed", "pass_at_2")]
    assert list((tmp_path / "logs").glob("*.eval"))  # what `inspect view` reads
    for row in rows:
        run = replay_task(row, PLAYED, FAST, tmp_path)
        m = run.data.metrics
        samples = [s for s in log.samples if s.id == row["task_id"]]
        assert len(samples) == 2
        for sample in samples:
            score = sample.scores["task_passed"]
            outcome = score.metadata
            assert outcome["test_f1"] == m["test_f1"] and outcome["passed"] == bool(m["passed"]) and outcome["reward"] == m["reward"]
            assert score.value == ("C" if m["passed"] else "I") and score.answer == f"{m['test_f1']:.4f}"
            assert outcome["steps_used"] == m["steps_used"] == 1 and outcome["tool_calls"] == 5 and outcome["invalid_tool_calls"] == 0
            assert outcome["margin"] == pytest.approx(m["test_f1"] - row["tau"]) and outcome["termination_reason"] == "submitted"
