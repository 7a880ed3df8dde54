"""Replay: re-execute a recorded episode's tool calls, without any LLM.

The same calls against the same configuration reproduce the episode's TEST F1 exactly; under
another `model.seed` they show how much of a result was training noise.
"""

from __future__ import annotations

import json
from pathlib import Path

from imbalance.agents.base import Toolbox
from imbalance.errors import UsageError
from imbalance.tracking.store import download_artifact


def load_records(*, run_id: str | None, path: str | None, tracking_uri: str | None) -> list[dict]:
    if bool(run_id) == bool(path):
        raise UsageError("agent=replay needs exactly one of agent.run_id=<MLflow run id> or agent.path=<tool_calls.json>")
    if path:
        file = Path(path).expanduser()
        if not file.is_file():
            raise UsageError(f"agent.path={path}: no such file; point it at a tool_calls.json artifact")
    else:
        file = download_artifact(tracking_uri, run_id, "tool_calls.json")
    try:
        records = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{file} is not a tool_calls.json record: {exc}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) and isinstance(r.get("tool"), str) for r in records):
        raise UsageError(f"{file} is not a tool_calls.json record: expected a list of objects with a 'tool' name")
    return records


class ReplayAgent:
    name = "replay"

    def __init__(self, records: list[dict]):
        self.records = records

    def run(self, tools: Toolbox) -> None:
        for record in self.records:
            result = tools.call(record["tool"], record.get("arguments"))
            if record["tool"] == "submit_answer" and not result.is_error:
                return
