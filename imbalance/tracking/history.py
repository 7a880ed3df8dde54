"""Cross-run exploration: what earlier episodes of an experiment (or a sweep) tried."""

from __future__ import annotations

import json

MAX_HISTORY = 20


def paid_action_history(tracking_uri: str, experiment_name: str, parent_run_id: str | None = None) -> list[list[dict]]:
    """Distinct paid-action sets of finished episodes, oldest first (at most MAX_HISTORY)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    query = "attributes.status = 'FINISHED'"
    if parent_run_id:
        query += f" AND tags.`mlflow.parentRunId` = '{parent_run_id}'"
    runs = client.search_runs([experiment.experiment_id], query, order_by=["attributes.start_time DESC"], max_results=500)
    seen: list[list[dict]] = []
    for run in runs:
        raw = run.data.tags.get("paid_actions")
        if raw is None:
            continue
        try:
            actions = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if actions not in seen:
            seen.append(actions)
        if len(seen) == MAX_HISTORY:
            break
    return list(reversed(seen))
