"""Episode runs as training trajectories: one JSON object per episode (the export's lines).

Every line has OpenAI-style `messages` (system, user, assistant turns with `tool_calls`,
`tool` results, the budget reminders), the `tools` schemas, the outcome (`reward`,
`test_f1`, `passed`, `termination_reason`), token usage, `task_id` and versions.

- LLM episodes: the conversation as recorded in `transcript.json` (Anthropic's format is
  converted), completed with the results of the last turn's calls, which the conversation
  ended before sending (`tool_calls.json` has them).
- Scripted episodes (heuristic, random, replay): the recorded tool calls, one per assistant
  turn, under the prompt an LLM agent would have had and with the same reminders and result
  format, so a heuristic sweep is an SFT warm-start set in the format the model will play in.

`EPISODE_SCHEMA` (JSON Schema) describes a line; the tests validate every exported line.
"""

from __future__ import annotations

import json
import math
from typing import Any

from imbalance.agents.llm.conversation import NOT_EXECUTED, result_content
from imbalance.agents.llm.openai_api import tool_message
from imbalance.agents.llm.prompt import SYSTEM_PROMPT, TaskBrief, budget_reminder, task_prompt
from imbalance.env.tools import TOOLS, openai_tools
from imbalance.errors import UsageError

USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "llm_calls")

_TOOL_CALL = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
        },
    },
}
_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["system", "user", "assistant", "tool"]},
        "content": {"type": ["string", "null"]},
        "tool_calls": {"type": "array", "items": _TOOL_CALL},
        "tool_call_id": {"type": "string"},
    },
    "allOf": [
        {"if": {"properties": {"role": {"const": "tool"}}}, "then": {"required": ["tool_call_id"], "properties": {"content": {"type": "string"}}}},
        {"if": {"properties": {"role": {"enum": ["system", "user"]}}}, "then": {"properties": {"content": {"type": "string"}}}},
    ],
}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
EPISODE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "imbalance episode trajectory",
    "type": "object",
    "required": [
        "run_id", "agent", "task_id", "seed", "tau", "messages", "tools", "reward", "reward_mode", "test_f1", "passed",
        "termination_reason", "steps_used", "tool_calls", "invalid_tool_calls", "usage", "versions",
    ],
    "properties": {
        "run_id": {"type": "string"},
        "agent": {"type": "string"},
        "task_id": {"type": ["string", "null"]},
        "seed": {"type": "integer"},
        "tau": {"type": "number"},
        "messages": {"type": "array", "minItems": 2, "items": _MESSAGE},
        "tools": {"type": "array", "items": {"type": "object", "required": ["type", "function"]}},
        "reward": {"type": "number"},
        "reward_mode": {"enum": ["pass", "normalized"]},
        "test_f1": {"type": "number"},
        "baseline_test_f1": _NUMBER_OR_NULL,
        "passed": {"type": "boolean"},
        "termination_reason": {"enum": ["submitted", "auto_submitted"]},
        "steps_used": {"type": "integer"},
        "tool_calls": {"type": "integer"},
        "invalid_tool_calls": {"type": "integer"},
        "usage": {"type": "object", "required": list(USAGE_KEYS), "properties": {k: {"type": "integer"} for k in USAGE_KEYS}},
        "versions": {
            "type": "object",
            "required": ["imbalance", "grader", "task_set"],
            "properties": {k: {"type": ["string", "null"]} for k in ("imbalance", "grader", "task_set")},
        },
    },
}


def episode_line(run: Any, records: list[dict], transcript: dict | None) -> dict[str, Any]:
    """One graded episode run (tags, params, metrics) with its tool calls and transcript."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    passed = bool(metrics.get("passed", 0.0) >= 0.5)
    mode = params.get("reward", "pass")
    task_id = tags.get("task_id")
    if transcript is None:
        messages = scripted_messages(records, _brief(params, tags, records, run.info.run_id))
    else:
        messages = transcript_messages(transcript, records)
    run_id = run.info.run_id
    return {
        "run_id": run_id,
        "agent": tags.get("agent", params.get("agent.name", "?")),
        "task_id": task_id,
        "seed": _required(params, "seed", int, run_id, "param"),
        "tau": _required(params, "tau", float, run_id, "param"),
        "messages": messages,
        "tools": openai_tools(TOOLS),
        # Runs from before the reward metric existed were all reward=pass.
        "reward": float(metrics["reward"]) if "reward" in metrics else float(passed),
        "reward_mode": mode,
        "test_f1": _required(metrics, "test_f1", float, run_id, "metric"),
        "baseline_test_f1": _finite_or_none(metrics.get("baseline_test_f1")),
        "passed": passed,
        "termination_reason": tags["termination_reason"],
        "steps_used": int(metrics.get("steps_used", 0)),
        "tool_calls": int(metrics.get("tool_calls", len(records))),
        "invalid_tool_calls": int(metrics.get("invalid_tool_calls", 0)),
        "usage": {k: int(metrics.get(k, 0)) for k in USAGE_KEYS},
        "versions": {"imbalance": tags.get("imbalance.version"), "grader": tags.get("grader_version"), "task_set": task_id.split("-", 1)[0] if task_id else None},
    }


def _required(values: dict, key: str, convert: Any, run_id: str, kind: str) -> Any:
    """A value every graded episode run has: a clear error naming the run, not a KeyError or a
    NaN the JSON file cannot hold."""
    try:
        value = convert(values[key])
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        found = f"it is {values[key]!r}" if key in values else "it has none"
        raise UsageError(
            f"run {run_id} has no usable {kind} {key!r} ({found}), so it is not a complete episode run; "
            f"export the others with --run or --sweep, or rerun it: python scripts/rerun.py {run_id}"
        ) from None
    return value


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def scripted_messages(records: list[dict], brief: TaskBrief) -> list[dict]:
    """The tool calls as a conversation: one call per assistant turn, each result, then the
    budget reminder, exactly as imbalance.run's conversation would have put them."""
    messages: list[dict] = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": task_prompt(brief, TOOLS)}]
    steps_used = 0
    for i, record in enumerate(records):
        call_id = f"call_{i}"
        arguments = record.get("arguments")
        messages.append({"role": "assistant", "content": None, "tool_calls": [_call(call_id, record["tool"], {} if arguments is None else arguments)]})
        messages.append({"role": "tool", "tool_call_id": call_id, "content": _result_text(record)})
        steps_used += int(bool(record.get("charged")))
        if i < len(records) - 1:
            messages.append({"role": "user", "content": budget_reminder(brief.max_steps, steps_used)})
    return messages


def transcript_messages(transcript: dict, records: list[dict]) -> list[dict]:
    """An LLM episode's conversation in the OpenAI format, every tool call answered."""
    if transcript.get("provider") == "anthropic":
        messages = _from_anthropic(transcript)
    else:
        messages = [{k: v for k, v in m.items() if k in ("role", "content", "tool_calls", "tool_call_id")} for m in transcript.get("messages", [])]
        for m in messages:
            m.setdefault("content", None)
    answered = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
    # The conversation stops at submit_answer (or a limit) before sending the last turn's
    # results: those calls are the records after the ones already answered.
    pending = iter(records[len(answered):])
    last_calls = next((m.get("tool_calls") or [] for m in reversed(messages) if m["role"] == "assistant"), [])
    for call in last_calls:
        if call["id"] in answered:
            continue
        record = next(pending, None)
        content = NOT_EXECUTED if record is None else _result_text(record)
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
    return messages


def _from_anthropic(transcript: dict) -> list[dict]:
    system = "\n".join(b.get("text", "") for b in transcript.get("request", {}).get("system", []) if isinstance(b, dict))
    out: list[dict] = [{"role": "system", "content": system}]
    for message in transcript.get("messages", []):
        content = message.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": str(content)}]
        texts = [b.get("text", "") for b in blocks if b.get("type") == "text"]
        if message.get("role") == "assistant":
            calls = [_call(b["id"], b["name"], b.get("input")) for b in blocks if b.get("type") == "tool_use"]
            out.append({"role": "assistant", "content": "\n".join(texts) or None, **({"tool_calls": calls} if calls else {})})
            continue
        for b in blocks:
            if b.get("type") == "tool_result":
                out.append({"role": "tool", "tool_call_id": b["tool_use_id"], "content": tool_message(_text(b.get("content")), bool(b.get("is_error")))})
        if texts:
            out.append({"role": "user", "content": "\n".join(texts)})
    return out


def _call(call_id: str, name: str, arguments: Any) -> dict:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}


def _result_text(record: dict) -> str:
    is_error = "error" in record
    return tool_message(result_content(record["error"] if is_error else record.get("result", {})), is_error)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict))
    return "" if content is None else str(content)


def _brief(params: dict, tags: dict, records: list[dict], run_id: str) -> TaskBrief:
    """The brief imbalance.run's LLM agents get, from the run's params and its data clause."""
    description = tags.get("source_description")
    if description is None:  # runs from before the tag: the task summary the first call returned
        description = next((r["result"]["task"] for r in records if r.get("tool") == "imbalance_start" and isinstance(r.get("result"), dict) and "task" in r["result"]), None)
    if description is None:
        raise UsageError(f"run {run_id} records no task description (it predates the source_description tag); rerun it: python scripts/rerun.py {run_id} --replay")
    return TaskBrief(
        tau=_required(params, "tau", float, run_id, "param"),
        max_steps=_required(params, "budget.max_steps", int, run_id, "param"),
        conv_steps=_required(params, "budget.conv_steps", int, run_id, "param"),
        source=description,
    )
