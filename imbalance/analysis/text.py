"""Summaries -> the text report: a header line, the group table, pass@k where tasks repeat."""

from __future__ import annotations

from collections.abc import Sequence

from imbalance.analysis.episodes import Episode, Source
from imbalance.analysis.summary import GroupSummary
from imbalance.tracking.store import masked


def format_pass_rate(summary: GroupSummary) -> str:
    """`40.0% [23.1, 59.3]`: the rate and its 95% Wilson interval, in percent."""
    if summary.pass_rate is None:
        return "-"
    low, high = summary.interval
    return f"{100 * summary.pass_rate:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def format_action_sets(summary: GroupSummary) -> str:
    return "; ".join(f"{label} x{count}" for label, count in summary.top_action_sets) or "-"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """Plain aligned columns. `right[i]` right-aligns column i, as for numbers. The last
    column is not padded, so a long one does not add trailing spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).rjust(w) if r else str(c).ljust(w) for c, w, r in zip(cells, widths, right)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def format_report(summaries: Sequence[GroupSummary], group_by: Sequence[str], header: str) -> str:
    """The header line, the group table, and then pass@k / pass^k if any task ran 2+ times."""
    headers = [*group_by, "n", "passed", "pass rate [95% CI]", "errors", "mean TEST F1", "mean paid steps", "mean tokens", "top paid-action sets"]
    right = [False] * len(group_by) + [True] * 7 + [False]
    rows = [
        [
            *s.key,
            str(s.n),
            str(s.passed),
            format_pass_rate(s),
            str(s.errors),
            _fmt(s.mean_test_f1, ".4f"),
            _fmt(s.mean_steps, ".2f"),
            _fmt(s.mean_tokens, ",.0f"),
            format_action_sets(s),
        ]
        for s in summaries
    ]
    parts = [header, "", format_table(headers, rows, right)]
    k_rows = [[*s.key, str(k), str(tasks), f"{at:.3f}", f"{hat:.3f}"] for s in summaries for k, (at, hat, tasks) in sorted(s.pass_k.items())]
    if k_rows:
        parts += [
            "",
            "pass@k (some of k tries pass) and pass^k (all k pass), over tasks (task_hash) run 2+ times; errors left out:",
            format_table([*group_by, "k", "tasks", "pass@k", "pass^k"], k_rows, [False] * len(group_by) + [True] * 4),
        ]
    return "\n".join(parts) + "\n"


def header_line(source: Source, episodes: Sequence[Episode], tau_override: float | None) -> str:
    errors = sum(e.is_error for e in episodes)
    line = f"Read {len(episodes)} finished episodes ({len(episodes) - errors} graded, {errors} errors) from {source.describe()} at {masked(source.tracking_uri)}"
    if tau_override is not None:
        line += f"; pass/fail recomputed at tau={tau_override:g} (override)"
    return line


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
