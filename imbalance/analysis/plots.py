"""Summaries -> PNG plots (matplotlib's Agg canvas: no pyplot, no global state, no display)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imbalance.analysis.summary import TARGET_BAND, GroupSummary

DPI = 110
PLOT_FILES = ("test_f1_by_group.png", "pass_rate_vs_tau.png", "val_test_gap.png")


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
