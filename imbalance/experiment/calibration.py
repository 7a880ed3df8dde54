"""Task calibration: where the random floor, the heuristic and the ceiling stand on a task,
and which tau gives a reference agent a target pass rate.

    python -m imbalance.calibrate [task overrides] [--seeds 10] [--target 0.25] [--reference heuristic]
    (the command line: imbalance/cli/calibrate.py)

The *ceiling* is the best TEST F1 a validation-driven choice reaches within the budget:
for each seed every paid-action set from a grid of tool arguments (at most budget.max_steps
actions) is applied, the model trained the heuristic's way and the threshold swept; the set
with the best validation F1 is picked and its TEST F1 is the ceiling. (The set-up a sequence
of paid actions leaves does not depend on their order, so trying every set tries every
sequence; a paid set_threshold never beats the free validation sweep.) The *oracle* picks by
TEST F1 instead: the headroom no val-driven planner can reach.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from pathlib import Path

from imbalance.analysis.summary import TARGET_BAND as BAND  # the pass-rate band the task is designed for
from imbalance.config.schema import Config, HeuristicAgent, RandomAgent
from imbalance.env.tools import format_actions

GRID: dict[str, list[dict | None]] = {
    "smote": [None, {"ratio": 0.1, "k": 5}, {"ratio": 0.3, "k": 5}],
    "set_class_weights": [None, {"beta": 0.99}, {"beta": 0.9999}],
    "use_focal": [None, {"alpha": 0.25, "gamma": 2.0}, {"alpha": 0.75, "gamma": 2.0}],
}


def action_sets(max_steps: int) -> list[tuple[tuple[str, dict], ...]]:
    sets = []
    for choice in itertools.product(*GRID.values()):
        actions = tuple((tool, args) for tool, args in zip(GRID, choice) if args is not None)
        if len(actions) <= max_steps:
            sets.append(actions)
    return sets


def describe(actions: tuple[tuple[str, dict], ...]) -> str:
    return format_actions([{"tool": tool, **args} for tool, args in actions])


def evaluate(config: Config, kind: str, seed: int, detail: object) -> dict:
    """One episode (in a worker process): the ceiling's fixed plan of paid actions, or an agent."""
    from imbalance.agents.heuristic import converge_and_sweep
    from imbalance.experiment.build import build_episode
    from imbalance.experiment.episode import play

    if kind == "ceiling":
        setup = build_episode(dataclasses.replace(config, seed=seed, agent=HeuristicAgent()))
        env = setup.env
        env.reset()
        for tool, args in detail:  # type: ignore[attr-defined]
            env.call(tool, args)
        val_f1 = converge_and_sweep(env)
        return {"kind": kind, "seed": seed, "actions": describe(detail), "val_f1": val_f1, "test_f1": env.submit().test_f1}  # type: ignore[arg-type]
    agent = HeuristicAgent() if kind == "heuristic" else RandomAgent()
    setup = build_episode(dataclasses.replace(config, seed=seed, trial=int(detail), agent=agent))  # type: ignore[call-overload]
    result = play(setup.env, setup.agent)
    return {"kind": kind, "seed": seed, "trial": detail, "val_f1": result.records[-1]["result"].get("val_f1") if result.records else None, "test_f1": result.grade.test_f1}


def tau_for_pass_rate(f1s: list[float], rate: float) -> float:
    """The bar that a `rate` share of these TEST F1 values reaches."""
    import numpy as np

    return float(np.quantile(np.asarray(f1s), 1.0 - rate))


def pass_rate(f1s: list[float], tau: float) -> float:
    return sum(f >= tau for f in f1s) / len(f1s) if f1s else 0.0


def summarise(results: list[dict], *, target: float, reference: str) -> dict:
    per_seed: dict[int, list[dict]] = {}
    for r in results:
        if r["kind"] == "ceiling":
            per_seed.setdefault(r["seed"], []).append(r)
    ceiling = [max(rs, key=lambda r: (r["val_f1"], -len(r["actions"])))["test_f1"] for _, rs in sorted(per_seed.items())]
    oracle = [max(r["test_f1"] for r in rs) for _, rs in sorted(per_seed.items())]
    agents = {kind: [r["test_f1"] for r in results if r["kind"] == kind] for kind in ("random", "heuristic")}
    rows = {**agents, "ceiling": ceiling, "oracle": oracle}
    ref = rows[reference]
    tau = tau_for_pass_rate(ref, target)
    band = (tau_for_pass_rate(ref, BAND[1]), tau_for_pass_rate(ref, BAND[0]))
    chosen = {}
    for rs in per_seed.values():
        best = max(rs, key=lambda r: (r["val_f1"], -len(r["actions"])))
        chosen[best["actions"]] = chosen.get(best["actions"], 0) + 1
    return {
        "rows": {k: {"n": len(v), "mean": statistics.fmean(v), "sd": statistics.pstdev(v), "min": min(v), "max": max(v), "values": v} for k, v in rows.items() if v},
        "reference": reference,
        "target": target,
        "tau": tau,
        "band": band,
        "pass_rates_at_tau": {k: pass_rate(v, tau) for k, v in rows.items() if v},
        "ceiling_choices": dict(sorted(chosen.items(), key=lambda kv: -kv[1])),
    }


def format_report(summary: dict, title: str) -> str:
    lines = [title, f"{'':24}{'n':>4} {'mean TEST F1':>13} {'sd':>7} {'min':>7} {'max':>7}"]
    labels = {"random": "random agent", "heuristic": "heuristic agent", "ceiling": "ceiling (val-driven)", "oracle": "oracle (picks on TEST)"}
    for key, row in summary["rows"].items():
        lines.append(f"{labels[key]:24}{row['n']:>4} {row['mean']:>13.4f} {row['sd']:>7.4f} {row['min']:>7.4f} {row['max']:>7.4f}")
    lines += [
        "",
        f"tau for a {100 * summary['target']:.0f}% pass rate of the {summary['reference']} agent: {summary['tau']:.4f}",
        f"tau for the {100 * BAND[0]:.0f}-{100 * BAND[1]:.0f}% band: {summary['band'][0]:.4f} .. {summary['band'][1]:.4f}",
        "pass rates at that tau: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in summary["pass_rates_at_tau"].items()),
        "paid-action sets the ceiling chose: " + "; ".join(f"{k} x{v}" for k, v in summary["ceiling_choices"].items()),
    ]
    return "\n".join(lines)


def plot(summary: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    keys = list(summary["rows"])
    for i, key in enumerate(keys):
        values = summary["rows"][key]["values"]
        jitter = np.random.default_rng(i).uniform(-0.12, 0.12, len(values))
        ax.scatter(np.full(len(values), i) + jitter, values, s=18, alpha=0.7)
        ax.hlines(summary["rows"][key]["mean"], i - 0.3, i + 0.3, colors="black", linewidth=2)
    ax.axhspan(*summary["band"], color="tab:green", alpha=0.15, label=f"tau band for {100 * BAND[0]:.0f}-{100 * BAND[1]:.0f}% {summary['reference']} pass rate")
    ax.axhline(summary["tau"], color="tab:green", linestyle="--", label=f"tau={summary['tau']:.3f} ({100 * summary['target']:.0f}% target)")
    ax.set_xticks(range(len(keys)), keys)
    ax.set_ylabel("TEST F1 (one point per seed)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
