"""Finished episode runs read back from MLflow as plain rows.

`load_episodes` is the only reader of MLflow in the analysis: everything after it (summaries,
text, plots) works on `Episode` rows, so tests and notebooks can build rows by hand.

Terms used throughout the analysis:
- an *error* episode (`termination_reason=error`, or no TEST F1) is counted apart. It is
  neither a pass nor a fail, so an API outage cannot lower an agent's pass rate;
- a *graded* episode is every other one: `n`, the pass rate, the means and the plots use these;
- *budget* is `budget.max_steps`, the number of paid actions allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imbalance.env.tools import format_actions
from imbalance.errors import UsageError
from imbalance.tracking.store import masked

DEFAULT_EXPERIMENT = "imbalance"
# Group-by names that stand for a param under another name.
ALIASES = {"budget": "budget.max_steps"}


@dataclass(frozen=True)
class Episode:
    """What the report needs from one episode run. Raw params and tags stay available for
    `--group-by` on any key (e.g. `seed`, `model.lr`)."""

    run_id: str
    termination_reason: str
    test_f1: float | None
    recorded_passed: bool | None  # the grader's verdict at the configured tau
    tau: float | None
    max_steps: float | None
    steps_used: float | None
    val_f1: float | None  # the latest per-call value: validation F1 at submission
    tokens: float | None  # input + output; None for agents that do not call an LLM
    action_set: str  # the paid actions in the order taken, e.g. "smote(ratio=0.2, k=5) + ..."
    task_hash: str | None
    params: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    tags: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_error(self) -> bool:
        return self.termination_reason == "error" or self.test_f1 is None


def episode_from_run(run: Any) -> Episode | None:
    """An MLflow run -> Episode. Returns None for runs that are not episodes, such as a
    sweep's parent run: it has no `termination_reason` tag."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    reason = tags.get("termination_reason")
    if reason is None:
        return None
    verdict = metrics.get("passed")
    token_parts = [metrics[k] for k in ("input_tokens", "output_tokens") if k in metrics]
    return Episode(
        run_id=run.info.run_id,
        termination_reason=reason,
        test_f1=metrics.get("test_f1"),
        recorded_passed=None if verdict is None else verdict >= 0.5,
        tau=_float(params.get("tau")),
        max_steps=_float(params.get("budget.max_steps")),
        steps_used=metrics.get("steps_used"),
        val_f1=metrics.get("val_f1"),
        tokens=sum(token_parts) if token_parts else None,
        action_set=format_action_set(tags.get("paid_actions")),
        task_hash=tags.get("task_hash"),
        params=dict(params),
        tags=dict(tags),
    )
def format_action_set(raw: str | None) -> str:
    """The `paid_actions` tag (a JSON list) as one readable label, e.g.
    `smote(ratio=0.2, k=5) + set_class_weights(beta=0.99)`. An empty list gives `(none)`.
    Order is kept as taken, because the same actions in another order are another strategy."""
    if raw is None:
        return "(not recorded)"
    try:
        actions = json.loads(raw)
    except json.JSONDecodeError:
        return "(unreadable)"
    return format_actions(actions) if isinstance(actions, list) else "(unreadable)"


def group_value(episode: Episode, name: str) -> str | None:
    """The episode's value for one group-by name. Tags come first: `agent`, `model` and
    `source` tags hold the Hydra option names. Then the param, then `<name>.name`."""
    name = ALIASES.get(name, name)
    for value in (episode.tags.get(name), episode.params.get(name), episode.params.get(f"{name}.name")):
        if value is not None:
            return value
    return None


def episode_passed(episode: Episode, tau_override: float | None = None) -> bool:
    """The verdict for a graded episode. By default this is the grader's recorded verdict.
    With an override, it is recomputed the same way the grader decides: TEST F1 >= tau and
    the paid steps within the budget."""
    if tau_override is None and episode.recorded_passed is not None:
        return episode.recorded_passed
    tau = episode.tau if tau_override is None else tau_override
    if tau is None or episode.test_f1 is None:
        return False
    within_budget = episode.steps_used is None or episode.max_steps is None or episode.steps_used <= episode.max_steps
    return episode.test_f1 >= tau and within_budget


@dataclass
class Source:
    """Which runs were read. The header line and the default output folder use it."""

    tracking_uri: str
    experiment_name: str
    experiment_id: str
    sweep_run_id: str | None = None

    def describe(self) -> str:
        where = f"experiment '{self.experiment_name}'"
        if self.sweep_run_id:
            where = f"sweep {self.sweep_run_id} (children of that run) in {where}"
        return where

    def default_out(self) -> Path:
        name = self.sweep_run_id or self.experiment_name
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        return Path("reports") / safe


def resolve_source(client: Any, tracking_uri: str, experiment: str | None, sweep: str | None) -> Source:
    """Find the experiment, or the sweep's parent run and its experiment. The error for an
    unknown name lists the names that do exist."""
    from mlflow.exceptions import MlflowException

    if sweep:
        try:
            parent = client.get_run(sweep)
        except MlflowException:
            raise UsageError(f"no run {sweep} in {masked(tracking_uri)}; pass the run id of a sweep's parent run (tag sweep=true; see mlflow ui)") from None
        exp = client.get_experiment(parent.info.experiment_id)
        if experiment is not None and experiment != exp.name:
            raise UsageError(f"run {sweep} belongs to experiment '{exp.name}', not '{experiment}'; drop --experiment or fix it")
        return Source(tracking_uri, exp.name, exp.experiment_id, sweep)
    name = experiment or DEFAULT_EXPERIMENT
    exp = client.get_experiment_by_name(name)
    if exp is None or exp.lifecycle_stage == "deleted":
        names = sorted(e.name for e in client.search_experiments())
        known = ", ".join(f"'{n}'" for n in names) or "none"
        raise UsageError(f"no experiment '{name}' in {masked(tracking_uri)} (experiments there: {known}); pass --experiment NAME")
    return Source(tracking_uri, exp.name, exp.experiment_id)


def load_episodes(client: Any, source: Source) -> list[Episode]:
    """Every FINISHED episode run of the experiment, or only the sweep's children. Runs
    still RUNNING, or FAILED or KILLED, are incomplete and left out. `search_all` reads
    page by page, so more than 1,000 runs work."""
    from imbalance.tracking.runs import search_all

    query = "attributes.status = 'FINISHED'"
    if source.sweep_run_id:
        query += f" AND tags.`mlflow.parentRunId` = '{source.sweep_run_id}'"
    episodes = (episode_from_run(run) for run in search_all(client, source.experiment_id, query))
    return [e for e in episodes if e is not None]


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
