"""`python -m imbalance.report`: pass rates per agent and setting, read back from MLflow.

One episode is one noisy sample. Whether an agent works shows only as a pass rate over many
episodes, with an honest interval, next to the other agents and settings. This command
reads the runs the episode runner wrote (see `imbalance/runner.py`) for an experiment or for
one sweep. It prints one table row per group (default: agent, model, source, budget, tau)
and writes three plots.

The pipeline has one small function per stage, and tests can call each stage on its own:

    load_episodes      MLflow runs -> Episode rows (plain data; nothing later touches MLflow)
    summarise          Episode rows -> one GroupSummary per group (counts, interval, pass@k)
    format_report      summaries -> the text report (printed and saved as report.txt)
    plot_*             summaries -> one PNG each
    main               the command line; any bad input ends as one `Error:` line, exit 2

Terms used throughout:
- an *error* episode (`termination_reason=error`, or no TEST F1) is counted apart. It is
  neither a pass nor a fail, so an API outage cannot lower an agent's pass rate;
- a *graded* episode is every other one: `n`, the pass rate, the means and the plots use these;
- *budget* is `budget.max_steps`, the number of paid actions allowed. The budget group has one
  option, so its size is what varies between runs.

Only the standard library and two light project modules load at import. MLflow, numpy and
matplotlib load inside the functions that use them, so `--help` and argument errors answer at
once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import imbalance.tracking  # noqa: F401  (light: sets MLflow's environment defaults before MLflow loads)
from imbalance.errors import UsageError, require_writable_dir
from imbalance.tracking.store import masked

DEFAULT_EXPERIMENT = "imbalance"
DEFAULT_GROUP_BY = ("agent", "model", "source", "budget", "tau")
# Group-by names that stand for a param under another name.
ALIASES = {"budget": "budget.max_steps"}
TOP_ACTION_SETS = 2
PASS_KS = (1, 2, 3, 5, 10)
TARGET_BAND = (0.10, 0.40)  # the pass rates a well-calibrated tau should produce
DPI = 110
PLOT_FILES = ("test_f1_by_group.png", "pass_rate_vs_tau.png", "val_test_gap.png")
REPORT_FILE = "report.txt"
ARTIFACT_DIR = "report"


# ---------------------------------------------------------------------------------------------
# Rows: one Episode per finished MLflow run


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
    if not actions:
        return "(none)"
    labels = []
    for action in actions:
        if isinstance(action, dict):
            args = ", ".join(f"{k}={v}" for k, v in action.items() if k != "tool")
            labels.append(f"{action.get('tool', '?')}({args})")
        else:
            labels.append(str(action))
    return " + ".join(labels)


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


# ---------------------------------------------------------------------------------------------
# Reading MLflow


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


# ---------------------------------------------------------------------------------------------
# Summaries


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
    from imbalance.stats import grouped_pass_k, wilson_interval

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


# ---------------------------------------------------------------------------------------------
# Text


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


# ---------------------------------------------------------------------------------------------
# Plots


def group_labels(summaries: Sequence[GroupSummary], group_by: Sequence[str]) -> tuple[list[str], str]:
    """Short labels for the groups and a subtitle for what they share. A label names only
    the keys that vary, e.g. `agent=random, tau=0.7`. Shared values such as
    `model=mlp, source=synthetic` go in the subtitle once."""
    varying = [i for i in range(len(group_by)) if len({s.key[i] for s in summaries}) > 1]
    shared = ", ".join(f"{group_by[i]}={summaries[0].key[i]}" for i in range(len(group_by)) if i not in varying) if summaries else ""
    labels = [", ".join(f"{group_by[i]}={s.key[i]}" for i in varying) or "all episodes" for s in summaries]
    return labels, shared


def _figure(width: float, height: float):
    """A figure on the Agg canvas. It does not use pyplot, so no global state and no display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _colors(count: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def _title(ax: Any, title: str, shared: str) -> None:
    ax.set_title(f"{title}\n{shared}" if shared else title, fontsize=11)


def plot_test_f1_by_group(summaries: Sequence[GroupSummary], labels: Sequence[str], shared: str, path: Path, tau_override: float | None) -> Path:
    """A box per group with each episode's TEST F1 jittered on top, and each group's pass
    bar as a dashed segment across its box. A group with only errors keeps its place."""
    import numpy as np

    fig = _figure(max(6.5, 1.4 * len(summaries) + 2.5), 5.2)
    ax = fig.add_subplot()
    colors = _colors(len(summaries))
    rng = np.random.default_rng(0)
    positions = np.arange(1, len(summaries) + 1)
    filled = [(p, [e.test_f1 for e in s.graded]) for p, s in zip(positions, summaries) if s.graded]
    if filled:
        box = ax.boxplot([v for _, v in filled], positions=[p for p, _ in filled], widths=0.55, showfliers=False, patch_artist=True, medianprops={"color": "black"})
        for patch in box["boxes"]:
            patch.set_facecolor((0.85, 0.85, 0.85, 0.6))
    tau_label = f"tau override {tau_override:g}" if tau_override is not None else "tau (pass bar)"
    for pos, summary, color in zip(positions, summaries, colors):
        values = [e.test_f1 for e in summary.graded]
        ax.scatter(pos + rng.uniform(-0.17, 0.17, len(values)), values, s=22, color=color, alpha=0.8, edgecolors="white", linewidths=0.5, zorder=3)
        for tau in summary.taus:
            ax.hlines(tau, pos - 0.38, pos + 0.38, colors="crimson", linestyles="--", linewidth=1.6, zorder=4, label=tau_label)
            tau_label = "_nolegend_"
            ax.annotate(f"tau {tau:g}", (pos + 0.38, tau), xytext=(2, 2), textcoords="offset points", fontsize=7, color="crimson")
        if not summary.graded:
            ax.text(pos, 0.5, "errors only", ha="center", fontsize=8, color="grey", transform=ax.get_xaxis_transform())
    ticks = [f"{label.replace(', ', chr(10))}\nn={s.n}" + (f", {s.errors} err" if s.errors else "") for label, s in zip(labels, summaries)]
    ax.set_xticks(positions, ticks, fontsize=8)
    ax.set_xlim(0.4, len(summaries) + 0.8)
    values = [e.test_f1 for s in summaries for e in s.graded] + [t for s in summaries for t in s.taus]
    ax.set_ylim(max(0.0, min(values) - 0.05), min(1.0, max(values) + 0.05))
    ax.set_ylabel("TEST F1 (hidden test split)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    _title(ax, "TEST F1 per group (box: quartiles; dots: episodes)", shared)
    return _save(fig, path)


def plot_pass_rate_vs_tau(summaries: Sequence[GroupSummary], labels: Sequence[str], shared: str, path: Path, tau_override: float | None) -> Path:
    """The share of graded episodes with TEST F1 >= tau, for every tau in [0, 1], per
    group: the survival curve of TEST F1. A tau is well chosen when the curves cross it in
    the 10-40% band: hard enough to separate agents, easy enough to pass sometimes.
    The curve looks at TEST F1 only. The budget condition in `episode_passed` cannot fail for runs
    the runner wrote, because it refuses paid actions past the budget."""
    import numpy as np
    from matplotlib.ticker import PercentFormatter

    fig = _figure(11.0, 5.2)
    ax = fig.add_subplot()
    grid = np.linspace(0.0, 1.0, 1001)
    low, high = TARGET_BAND
    ax.axhspan(low, high, color="tab:green", alpha=0.12, label=f"target band {low:.0%}-{high:.0%} pass rate")
    for summary, label, color in zip(summaries, labels, _colors(len(summaries))):
        if not summary.graded:
            continue
        f1 = np.array([e.test_f1 for e in summary.graded])
        ax.plot(grid, (f1[:, None] >= grid).mean(axis=0), drawstyle="steps-post", color=color, linewidth=1.8, label=f"{label} (n={summary.n})")
    tau_label = f"tau override {tau_override:g}" if tau_override is not None else "configured tau"
    for i, tau in enumerate(sorted({t for s in summaries for t in s.taus})):
        ax.axvline(tau, color="black", linestyle="--", linewidth=1.0, label=tau_label if i == 0 else "_nolegend_")
        ax.text(tau, 0.04, f"tau {tau:g}", rotation=90, ha="right", va="bottom", fontsize=8, transform=ax.get_xaxis_transform(),
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.03)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("tau (TEST F1 needed to pass)")
    ax.set_ylabel("pass rate (graded episodes with TEST F1 >= tau)")
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    _title(ax, "Pass rate as a function of tau (errors left out)", shared)
    return _save(fig, path)


def plot_val_test_gap(summaries: Sequence[GroupSummary], labels: Sequence[str], shared: str, path: Path) -> Path:
    """Validation F1 at submission against TEST F1, per group. Points below y = x mean the
    agent fitted the threshold to validation noise. The legend gives each group's mean gap."""
    fig = _figure(10.0, 6.0)
    ax = fig.add_subplot()
    points = []
    for summary, label, color in zip(summaries, labels, _colors(len(summaries))):
        pairs = [(e.val_f1, e.test_f1) for e in summary.graded if e.val_f1 is not None]
        if not pairs:
            continue
        val, test = zip(*pairs)
        gap = sum(v - t for v, t in pairs) / len(pairs)
        ax.scatter(val, test, s=26, color=color, alpha=0.8, edgecolors="white", linewidths=0.5, label=f"{label}: mean gap val-test {gap:+.3f} (n={len(pairs)})")
        points += [*val, *test]
    low = max(0.0, min(points, default=0.0) - 0.05)
    high = min(1.0, max(points, default=1.0) + 0.05)
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1.0, label="y = x (no gap)")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel("validation F1 at submission (metric val_f1)")
    ax.set_ylabel("TEST F1")
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    _title(ax, "Validation vs TEST F1 per episode", shared)
    return _save(fig, path)


def _legend_outside(ax: Any) -> None:
    """To the right of the axes, so the legend never hides a curve or a point."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, borderaxespad=0.0)


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")  # never clip a legend outside the axes
    return path


def write_plots(summaries: Sequence[GroupSummary], group_by: Sequence[str], out: Path, tau_override: float | None) -> list[Path]:
    labels, shared = group_labels(summaries, group_by)
    names = dict(zip(("f1", "tau", "gap"), PLOT_FILES))
    return [
        plot_test_f1_by_group(summaries, labels, shared, out / names["f1"], tau_override),
        plot_pass_rate_vs_tau(summaries, labels, shared, out / names["tau"], tau_override),
        plot_val_test_gap(summaries, labels, shared, out / names["gap"]),
    ]


# ---------------------------------------------------------------------------------------------
# Command line


class _Parser(argparse.ArgumentParser):
    """An argument error becomes the same single `Error:` line as any other bad input,
    instead of argparse's usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}; see python -m imbalance.report --help")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m imbalance.report",
        description="Pass rates, TEST F1 and cost per agent and setting, read from MLflow; writes report.txt and PNG plots.",
    )
    parser.add_argument("--experiment", metavar="NAME", help=f"experiment to read (default: {DEFAULT_EXPERIMENT})")
    parser.add_argument("--sweep", metavar="PARENT_RUN_ID", help="read only the child runs of this sweep parent run; also logs the report to it under report/")
    parser.add_argument("--tracking-uri", metavar="URI", help="MLflow store (default: sqlite:///mlruns/mlflow.db under the current folder)")
    parser.add_argument("--tau", type=float, metavar="X", help="recompute pass/fail at this bar in [0, 1]: TEST F1 >= X within the budget")
    parser.add_argument("--out", type=Path, metavar="DIR", help="folder for report.txt and the PNGs (default: reports/<experiment or sweep id>)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--group-by", default=",".join(DEFAULT_GROUP_BY), metavar="KEYS", help=f"comma-separated tags or params (default: {','.join(DEFAULT_GROUP_BY)}; budget = budget.max_steps)")
    args = parser.parse_args(argv)
    if args.tau is not None and not 0.0 <= args.tau <= 1.0:  # also rejects nan
        raise UsageError(f"--tau must be in [0, 1]; got {args.tau:g}. Pass e.g. --tau 0.55")
    keys = [k.strip() for k in args.group_by.split(",")]
    if not all(keys) or len(set(keys)) != len(keys):
        raise UsageError(f"--group-by needs distinct comma-separated names; got {args.group_by!r}. E.g. --group-by agent,tau")
    args.group_by = tuple(keys)
    return args


def check_group_by(episodes: Sequence[Episode], group_by: Sequence[str]) -> None:
    """A misspelt key would put every run in one '-' column without saying so."""
    for name in group_by:
        if all(group_value(e, name) is None for e in episodes):
            raise UsageError(f"no run has a tag or param named '{name}'; fix --group-by (e.g. agent,model,source,budget,tau,seed)")


def report(args: argparse.Namespace) -> int:
    """Read the runs, print and save the report, write the plots. With --sweep, also log
    them to the sweep's parent run. Problems MLflow reports become UsageError."""
    from imbalance.tracking.store import require_store, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    require_store(uri, "pass --tracking-uri sqlite:///path/to/mlflow.db")

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(uri)
        source = resolve_source(client, uri, args.experiment, args.sweep)
        episodes = load_episodes(client, source)
    except MlflowException as exc:
        raise UsageError(f"MLflow could not read {uri}: {_first_line(exc)}") from None
    if not episodes:
        hint = "the sweep has no finished child episodes; pass a sweep's parent run id" if source.sweep_run_id else "run some episodes first (python -m imbalance.run)"
        raise UsageError(f"no finished episode runs in {source.describe()}; {hint}")
    check_group_by(episodes, args.group_by)

    summaries = summarise(episodes, tau_override=args.tau, group_by=args.group_by)
    text = format_report(summaries, args.group_by, header_line(source, episodes, args.tau))
    print(text, end="")

    out: Path = args.out or source.default_out()
    require_writable_dir(out, "--out")
    try:
        report_path = out / REPORT_FILE
        report_path.write_text(text)
        plots = [] if args.no_plots else write_plots(summaries, args.group_by, out, args.tau)
    except OSError as exc:
        raise UsageError(f"cannot write to {out}: {exc.strerror or exc}; pass --out with a writable folder") from None

    print(f"\nReport: {report_path}")
    for path in plots:
        print(f"Plot:   {path}")
    if source.sweep_run_id:
        try:
            for path in [report_path, *plots]:
                client.log_artifact(source.sweep_run_id, str(path), ARTIFACT_DIR)
        except (MlflowException, OSError) as exc:
            raise UsageError(f"could not log the report to run {source.sweep_run_id}: {_first_line(exc)}") from None
        print(f"Logged to run {source.sweep_run_id} under {ARTIFACT_DIR}/")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return report(parse_args(argv))
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------------------------
# Small helpers


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _mean(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _natural_key(key: tuple[str, ...]) -> tuple:
    """Numbers before text, numbers by value: '10' after '9'."""
    out = []
    for part in key:
        number = _float(part)
        out.append((0, number, "") if number is not None else (1, 0.0, part))
    return tuple(out)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
