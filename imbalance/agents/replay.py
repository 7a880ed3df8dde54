"""Replay: re-execute a recorded episode's tool calls, without any LLM.

The same calls against the same configuration reproduce the episode's TEST F1 exactly; under
another `model.seed` they show how much of a result was training noise. The records come
from a `tool_calls.json` artifact; the episode builder fetches it (agents never read the store).
"""

from __future__ import annotations

import json

from imbalance.agents.base import ScriptedAgent, Toolbox, Tracer
from imbalance.errors import UsageError


def parse_records(text: str, origin: str) -> list[dict]:
    """The tool calls of a `tool_calls.json` record; UsageError when it is not one."""
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{origin} is not a tool_calls.json record: {exc}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) and isinstance(r.get("tool"), str) for r in records):
        raise UsageError(f"{origin} is not a tool_calls.json record: expected a list of objects with a 'tool' name")
    return records


class ReplayAgent(ScriptedAgent):
    name = "replay"

    def __init__(self, records: list[dict]):
        self.records = records

    def run(self, tools: Toolbox, tracer: Tracer | None = None) -> None:
        for record in self.records:
            result = tools.call(record["tool"], record.get("arguments"))
            if record["tool"] == "submit_answer" and not result.is_error:
                return
