"""Episode rows -> one GroupSummary per group: counts, the pass rate with its interval, pass@k."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imbalance.analysis.episodes import Episode, _float, episode_passed, group_value

DEFAULT_GROUP_BY = ("agent", "model", "source", "budget", "tau")
TOP_ACTION_SETS = 2
PASS_KS = (1, 2, 3, 5, 10)
TARGET_BAND = (0.10, 0.40)  # the pass rates a well-calibrated tau should produce


@dataclass
class GroupSummary:
    """One table row. `episodes` holds every episode of the group and `graded` the
    non-error ones, so each plot draws from the same data as the table."""

    key: tuple[str, ...]
    episodes: list[Episode]
    graded: list[Episode]
    n: int
    passed: int
    errors: int
    pass_rate: float | None  # None when the group has only errors
    interval: tuple[float, float]  # 95% Wilson interval of the pass rate
    mean_test_f1: float | None
    mean_steps: float | None
    mean_tokens: float | None  # over every episode that recorded tokens; an error costs too
    top_action_sets: list[tuple[str, int]]
    pass_k: dict[int, tuple[float, float, int]]  # {k: (pass@k, pass^k, tasks)}
    taus: tuple[float, ...]  # the bars the verdicts used: the override, or the configured taus


def summarise(rows: Sequence[Episode], tau_override: float | None = None, group_by: Sequence[str] = DEFAULT_GROUP_BY) -> list[GroupSummary]:
    """Group the episodes by the `group_by` values and summarise each group. Groups come
    out in a stable order: numeric values sort as numbers."""
    groups: dict[tuple[str, ...], list[Episode]] = {}
    for episode in rows:
        key = tuple(group_value(episode, name) or "-" for name in group_by)
        groups.setdefault(key, []).append(episode)
    return [_summarise_group(key, groups[key], tau_override) for key in sorted(groups, key=_natural_key)]


def _summarise_group(key: tuple[str, ...], episodes: list[Episode], tau_override: float | None) -> GroupSummary:
    from imbalance.analysis.stats import grouped_pass_k, wilson_interval

    graded = [e for e in episodes if not e.is_error]
    verdicts = [episode_passed(e, tau_override) for e in graded]
    n, c = len(graded), sum(verdicts)
    by_task: dict[str, list[bool]] = {}
    for episode, verdict in zip(graded, verdicts):
        if episode.task_hash:
            by_task.setdefault(episode.task_hash, []).append(verdict)
    action_counts = Counter(e.action_set for e in graded)
    taus = (tau_override,) if tau_override is not None else tuple(sorted({e.tau for e in episodes if e.tau is not None}))
    return GroupSummary(
        key=key,
        episodes=episodes,
        graded=graded,
        n=n,
        passed=c,
        errors=len(episodes) - n,
        pass_rate=c / n if n else None,
        interval=wilson_interval(c, n),
        mean_test_f1=_mean(e.test_f1 for e in graded),
        mean_steps=_mean(e.steps_used for e in graded),
        mean_tokens=_mean(e.tokens for e in episodes),
        top_action_sets=sorted(action_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ACTION_SETS],
        pass_k=grouped_pass_k([(len(v), sum(v)) for v in by_task.values()], PASS_KS),
        taus=taus,
    )


def _mean(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _natural_key(key: tuple[str, ...]) -> tuple:
    """Numbers before text, numbers by value: '10' after '9'."""
    out = []
    for part in key:
        number = _float(part)
        out.append((0, number, "") if number is not None else (1, 0.0, part))
    return tuple(out)
