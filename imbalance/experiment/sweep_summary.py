"""What a sweep prints and logs: the report's numbers for the sweep's children, as one group."""

from __future__ import annotations

import statistics
from typing import Any

from imbalance.analysis.episodes import Episode, Source, load_episodes
from imbalance.analysis.summary import GroupSummary, summarise


def load_children(client: Any, tracking_uri: str, experiment_id: str, parent_run_id: str) -> list[Episode]:
    return load_episodes(client, Source(tracking_uri, "", experiment_id, parent_run_id))


def summary_of(episodes: list[Episode]) -> GroupSummary | None:
    groups = summarise(episodes, group_by=())
    return groups[0] if groups else None


def sweep_metrics(s: GroupSummary) -> dict[str, float]:
    """The summary as the parent run's metrics."""
    out = {
        "episodes": len(s.episodes), "passed": s.passed, "failed": s.n - s.passed, "errors": s.errors,
        "pass_rate": s.pass_rate or 0.0, "pass_rate_ci_low": s.interval[0], "pass_rate_ci_high": s.interval[1],
    }
    if s.graded:
        out.update(mean_test_f1=s.mean_test_f1, median_test_f1=statistics.median(e.test_f1 for e in s.graded))
    for k, (at_k, hat_k, _) in s.pass_k.items():
        out[f"pass_at_{k}"] = at_k
        out[f"pass_hat_{k}"] = hat_k
    return out


def format_summary(s: GroupSummary | None, parent_run_id: str, *, partial: bool = False) -> str:
    title = "==== Sweep summary (interrupted: finished episodes only) ====" if partial else "==== Sweep summary ===="
    if s is None:
        return f"\n{title}\nno episode finished"
    m = sweep_metrics(s)
    lines = [
        "",
        title,
        f"Passed: {s.passed}/{s.n}",
        f"Failed: {s.n - s.passed}",
        f"Pass Rate: {100 * m['pass_rate']:.1f}%  (95% Wilson interval {100 * s.interval[0]:.1f}%-{100 * s.interval[1]:.1f}%)",
        f"Errors: {s.errors} (infrastructure; not counted as failed)",
    ]
    if s.graded:
        lines.append(f"TEST F1: mean {m['mean_test_f1']:.4f}, median {m['median_test_f1']:.4f}")
    for k, (at_k, hat_k, tasks) in s.pass_k.items():
        lines.append(f"pass@{k} {at_k:.3f}   pass^{k} {hat_k:.3f}   ({tasks} task configurations with >= {max(k, 2)} episodes)")
    lines.append(f"Per-group table and plots: python -m imbalance.report --sweep {parent_run_id}")
    return "\n".join(lines)


def counts_from_runs(finished: list[Episode]) -> tuple[int, int, int, int]:
    """(passed, graded, errors, done) of the sweep's finished child runs."""
    s = summary_of(finished)
    return (s.passed, s.n, s.errors, len(s.episodes)) if s else (0, 0, 0, 0)


def counts_from_summaries(episodes: list[dict]) -> tuple[int, int, int, int]:
    """The same, from the summaries `run_episode` returned in this process."""
    errors = sum(1 for e in episodes if e.get("termination_reason") == "error" or e.get("test_f1") is None)
    return sum(1 for e in episodes if e.get("passed")), len(episodes) - errors, errors, len(episodes)


def progress_line(job_num: Any, episode: dict | None, counts: tuple[int, int, int, int], total: int | None = None) -> str:
    """One line per finished job: its verdict, the running pass rate, and where the run is."""
    passed, graded, errors, finished = counts
    done = f"{finished}/{total} done, " if total else ""
    running = f"{done}running pass rate {passed}/{graded}" + (f" ({100 * passed / graded:.0f}%)" if graded else "") + f", {errors} errors"
    job = f"[job {job_num}]"
    if episode is None:
        return f"{job} crashed (see its log) | {running}"
    where = f" | {episode['url']}" if episode.get("url") else ""
    if episode.get("termination_reason") == "error":
        return f"{job} seed={episode.get('seed')} ERROR | {running}{where}"
    verdict = "PASS" if episode.get("passed") else "FAIL"
    skipped = " (resumed: already finished)" if episode.get("skipped") else ""
    test_f1 = episode.get("test_f1")
    return f"{job} seed={episode.get('seed')} {verdict} TEST F1 {float('nan') if test_f1 is None else test_f1:.4f}{skipped} | {running}{where}"
