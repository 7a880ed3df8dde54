"""The numbers a sweep reports: read from the finished child runs in MLflow."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from imbalance.stats import grouped_pass_k, wilson_interval


@dataclass(frozen=True)
class Episode:
    run_id: str
    termination_reason: str
    test_f1: float | None
    passed: bool | None
    seed: str
    task_hash: str


def load_children(client: Any, experiment_id: str, parent_run_id: str) -> list[Episode]:
    from imbalance.tracking.runs import search_all

    runs = search_all(client, experiment_id, f"attributes.status = 'FINISHED' AND tags.`mlflow.parentRunId` = '{parent_run_id}'")
    episodes = []
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        if "termination_reason" not in tags:
            continue
        episodes.append(Episode(
            run_id=run.info.run_id,
            termination_reason=tags["termination_reason"],
            test_f1=metrics.get("test_f1"),
            passed=bool(metrics["passed"]) if "passed" in metrics else None,
            seed=run.data.params.get("seed", "?"),
            task_hash=tags.get("task_hash", run.info.run_id),
        ))
    return episodes


@dataclass
class Summary:
    graded: int
    passed: int
    errors: int
    interval: tuple[float, float]
    mean_f1: float | None
    median_f1: float | None
    pass_k: dict[int, tuple[float, float, int]] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.graded - self.passed

    @property
    def pass_rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0

    def metrics(self) -> dict[str, float]:
        out = {
            "episodes": self.graded + self.errors, "passed": self.passed, "failed": self.failed, "errors": self.errors,
            "pass_rate": self.pass_rate, "pass_rate_ci_low": self.interval[0], "pass_rate_ci_high": self.interval[1],
        }
        if self.mean_f1 is not None:
            out.update(mean_test_f1=self.mean_f1, median_test_f1=self.median_f1)
        for k, (at_k, hat_k, _) in self.pass_k.items():
            out[f"pass_at_{k}"] = at_k
            out[f"pass_hat_{k}"] = hat_k
        return out


def summarise(episodes: list[Episode]) -> Summary:
    graded = [e for e in episodes if e.termination_reason != "error" and e.test_f1 is not None]
    passed = sum(bool(e.passed) for e in graded)
    f1s = [e.test_f1 for e in graded]
    groups: dict[str, list[bool]] = {}
    for e in graded:
        groups.setdefault(e.task_hash, []).append(bool(e.passed))
    return Summary(
        graded=len(graded),
        passed=passed,
        errors=len(episodes) - len(graded),
        interval=wilson_interval(passed, len(graded)),
        mean_f1=statistics.fmean(f1s) if f1s else None,
        median_f1=statistics.median(f1s) if f1s else None,
        pass_k=grouped_pass_k([(len(v), sum(v)) for v in groups.values()]),
    )


def format_summary(s: Summary) -> str:
    lines = [
        "",
        "==== Sweep summary ====",
        f"Passed: {s.passed}/{s.graded}",
        f"Failed: {s.failed}",
        f"Pass Rate: {100 * s.pass_rate:.1f}%  (95% Wilson interval {100 * s.interval[0]:.1f}%-{100 * s.interval[1]:.1f}%)",
        f"Errors: {s.errors} (infrastructure; not counted as failed)",
    ]
    if s.mean_f1 is not None:
        lines.append(f"TEST F1: mean {s.mean_f1:.4f}, median {s.median_f1:.4f}")
    for k, (at_k, hat_k, groups) in s.pass_k.items():
        lines.append(f"pass@{k} {at_k:.3f}   pass^{k} {hat_k:.3f}   ({groups} task configurations with >= {max(k, 2)} episodes)")
    return "\n".join(lines)


def progress_line(job_num: Any, episode: dict | None, finished: list[Episode]) -> str:
    s = summarise(finished)
    running = f"running pass rate {s.passed}/{s.graded}" + (f" ({100 * s.pass_rate:.0f}%)" if s.graded else "") + f", {s.errors} errors"
    if episode is None:
        return f"[job {job_num}] crashed (see its log) | {running}"
    if episode.get("termination_reason") == "error":
        return f"[job {job_num}] seed={episode.get('seed')} ERROR | {running}"
    verdict = "PASS" if episode.get("passed") else "FAIL"
    skipped = " (resumed: already finished)" if episode.get("skipped") else ""
    return f"[job {job_num}] seed={episode.get('seed')} {verdict} TEST F1 {episode.get('test_f1', float('nan')):.4f}{skipped} | {running}"
