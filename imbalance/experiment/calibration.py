"""Task calibration: what each paid action is worth on a task, where reference policies stand,
and which tau gives a reference policy a target pass rate.

    python -m imbalance.calibrate [task overrides] [--seeds 10] [--target 0.25] [--grid full|quick]
    (the command line: imbalance/cli/calibrate.py)

Per seed (one draw of the train/validation/TEST split):
- every *strategy* — a set of paid actions from the grid (at most budget.max_steps of them,
  the empty set included) — is applied, the model trained to convergence the heuristic's way
  and the threshold swept (`converge_and_sweep`): its validation F1 and TEST F1. The set-up a
  sequence of paid actions leaves does not depend on their order, so trying every set tries
  every sequence; a paid set_threshold never beats the free validation sweep.
- the *ladder* of reference policies: `random` (the random agent, --trials episodes per seed);
  `naive` (agent=naive: SMOTE, class weights and focal loss at textbook settings, a fixed
  threshold, no sweep); `no_paid` (the empty strategy: train to convergence, sweep, no paid
  action); `heuristic` (agent=heuristic); `ceiling` (the strategy with the best validation
  F1: what a validation-driven choice reaches); `oracle` (the strategy with the best TEST F1:
  headroom no validation-driven planner can reach).
- `skill_gap` = mean ceiling - mean no_paid: what choosing paid actions well is worth here.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imbalance.analysis.summary import TARGET_BAND as BAND  # the pass-rate band the task is designed for
from imbalance.config.schema import Config, HeuristicAgent, NaiveAgent, RandomAgent
from imbalance.env.tools import format_actions

GRIDS: dict[str, dict[str, list[dict | None]]] = {
    "full": {
        "smote": [None, {"ratio": 0.1, "k": 5}, {"ratio": 0.3, "k": 5}],
        "set_class_weights": [None, {"beta": 0.99}, {"beta": 0.9999}],
        "use_focal": [None, {"alpha": 0.25, "gamma": 2.0}, {"alpha": 0.75, "gamma": 2.0}],
    },
    # A handful of sets for a first look (and the docs' tests): none, each tool once, SMOTE with weights.
    "quick": {
        "smote": [None, {"ratio": 0.3, "k": 5}],
        "set_class_weights": [None, {"beta": 0.9999}],
        "use_focal": [None, {"alpha": 0.75, "gamma": 2.0}],
    },
}
AGENTS = {"heuristic": HeuristicAgent, "naive": NaiveAgent, "random": RandomAgent}
LADDER = ("random", "naive", "no_paid", "heuristic", "ceiling", "oracle")
NO_PAID = "(none)"  # format_actions of the empty set
FEW_TEST_POSITIVES = 20  # below this, one TEST positive moves F1 by several hundredths


def action_sets(max_steps: int, grid: str = "full") -> list[tuple[tuple[str, dict], ...]]:
    table = GRIDS[grid]
    sets = []
    for choice in itertools.product(*table.values()):
        actions = tuple((tool, args) for tool, args in zip(table, choice) if args is not None)
        if len(actions) <= max_steps:
            sets.append(actions)
    return sets


def describe(actions: tuple[tuple[str, dict], ...]) -> str:
    return format_actions([{"tool": tool, **args} for tool, args in actions])


def evaluate(config: Config, kind: str, seed: int, detail: object) -> dict:
    """One episode (in a worker process): a strategy's fixed paid actions, or an agent's episode."""
    from imbalance.agents.heuristic import converge_and_sweep
    from imbalance.experiment.build import build_episode
    from imbalance.experiment.episode import play

    if kind == "strategy":
        setup = build_episode(dataclasses.replace(config, seed=seed, agent=HeuristicAgent()))
        env = setup.env
        try:
            env.reset()
            for tool, args in detail:  # type: ignore[attr-defined]
                env.call(tool, args)
            val_f1 = converge_and_sweep(env)
            return {"kind": kind, "seed": seed, "actions": describe(detail), "val_f1": val_f1, "test_f1": env.submit().test_f1}  # type: ignore[arg-type]
        finally:
            env.close()
    setup = build_episode(dataclasses.replace(config, seed=seed, trial=int(detail), agent=AGENTS[kind]()))  # type: ignore[call-overload]
    try:
        result = play(setup.env, setup.agent)
        val_f1 = setup.env.metrics()["val_f1"]
    finally:
        setup.env.close()
    return {"kind": kind, "seed": seed, "trial": detail, "val_f1": val_f1, "test_f1": result.grade.test_f1,
            "actions": format_actions(setup.env.state.paid_actions)}


def tau_for_pass_rate(f1s: Sequence[float], rate: float) -> float:
    """The bar that a `rate` share of these TEST F1 values reaches."""
    return float(np.quantile(np.asarray(f1s), 1.0 - rate))


def pass_rate(f1s: Sequence[float], tau: float) -> float:
    return sum(f >= tau for f in f1s) / len(f1s) if f1s else 0.0


def _stats(values: Sequence[float], tau: float) -> dict:
    return {"n": len(values), "mean_test_f1": statistics.fmean(values), "sd_test_f1": statistics.pstdev(values),
            "min": min(values), "max": max(values), "pass_rate": pass_rate(values, tau), "values": list(values)}


def _best(rows: list[dict], key: str) -> dict:
    """The strategy a seed picks by `key`; ties go to the shorter (fewer paid actions) set."""
    return max(rows, key=lambda r: (r[key], -r["actions"].count("+") - (r["actions"] != NO_PAID)))


def summarise(results: list[dict], *, tau: float, target: float, reference: str = "heuristic", test_positives: Sequence[int] = ()) -> dict:
    """Strategies, the ladder, the skill gap and the suggested tau (see the module docstring)."""
    per_seed: dict[int, list[dict]] = {}
    for r in results:
        if r["kind"] == "strategy":
            per_seed.setdefault(r["seed"], []).append(r)
    seeds = sorted(per_seed)
    by_set: dict[str, list[dict]] = {}
    for seed in seeds:
        for r in per_seed[seed]:
            by_set.setdefault(r["actions"], []).append(r)
    strategies = []
    for label, rows in by_set.items():
        stats = _stats([r["test_f1"] for r in rows], tau)
        strategies.append({"actions": label, "mean_val_f1": statistics.fmean(r["val_f1"] for r in rows), **stats})
    strategies.sort(key=lambda s: -s["mean_val_f1"])

    values: dict[str, list[float]] = {kind: [r["test_f1"] for r in sorted(results, key=lambda r: (r["seed"], r.get("trial") or 0)) if r["kind"] == kind]
                                      for kind in AGENTS}
    values["no_paid"] = [r["test_f1"] for seed in seeds for r in per_seed[seed] if r["actions"] == NO_PAID]
    values["ceiling"] = [_best(per_seed[seed], "val_f1")["test_f1"] for seed in seeds]
    values["oracle"] = [_best(per_seed[seed], "test_f1")["test_f1"] for seed in seeds]
    ladder = [{"policy": policy, **_stats(values[policy], tau)} for policy in LADDER if values.get(policy)]
    means = {row["policy"]: row["mean_test_f1"] for row in ladder}

    ref = values[reference]
    suggested = tau_for_pass_rate(ref, target)
    chosen: dict[str, int] = {}
    for seed in seeds:
        label = _best(per_seed[seed], "val_f1")["actions"]
        chosen[label] = chosen.get(label, 0) + 1
    return {
        "tau": tau,
        "strategies": strategies,
        "ladder": ladder,
        "skill_gap": means["ceiling"] - means["no_paid"] if "ceiling" in means and "no_paid" in means else None,
        "test_positives": statistics.fmean(test_positives) if test_positives else None,
        "reference": reference,
        "target": target,
        "suggested_tau": suggested,
        "band": (tau_for_pass_rate(ref, BAND[1]), tau_for_pass_rate(ref, BAND[0])),
        "pass_rates_at_suggested_tau": {policy: pass_rate(v, suggested) for policy, v in values.items() if v},
        "ceiling_choices": dict(sorted(chosen.items(), key=lambda kv: -kv[1])),
        "what_pays": what_pays(strategies, per_seed),
    }


def what_pays(strategies: list[dict], per_seed: dict[int, list[dict]]) -> dict:
    """Does any paid-action set beat plain training here, by more than the seed-to-seed noise?

    The strategy with the best mean validation F1 is compared with no paid action seed by seed
    (paired: one draw of the data each); it pays when its mean TEST gain exceeds twice the
    standard error of the paired differences."""
    best = next((s for s in strategies if s["actions"] != NO_PAID), None)
    if best is None or not any(r["actions"] == NO_PAID for rows in per_seed.values() for r in rows):
        return {"best": None, "gain": None, "se": None, "pays": False}
    gains = []
    for rows in per_seed.values():
        mine = {r["actions"]: r["test_f1"] for r in rows}
        if best["actions"] in mine and NO_PAID in mine:
            gains.append(mine[best["actions"]] - mine[NO_PAID])
    gain = statistics.fmean(gains)
    se = statistics.stdev(gains) / len(gains) ** 0.5 if len(gains) > 1 else float("inf")
    return {"best": best["actions"], "gain": gain, "se": se, "pays": gain > 2 * se}


def format_report(summary: dict, title: str) -> str:
    tau = summary["tau"]
    lines = [title, "", f"ladder (TEST F1 over seeds; pass rate at the task's tau={tau:g}):",
             f"  {'policy':12}{'n':>4} {'mean':>7} {'sd':>7} {'min':>7} {'max':>7} {'pass':>6}"]
    for row in summary["ladder"]:
        lines.append(f"  {row['policy']:12}{row['n']:>4} {row['mean_test_f1']:>7.4f} {row['sd_test_f1']:>7.4f} {row['min']:>7.4f} {row['max']:>7.4f} {100 * row['pass_rate']:>5.0f}%")
    if summary["skill_gap"] is not None:
        lines.append(f"skill gap (ceiling - no_paid): {summary['skill_gap']:+.4f}")
    if summary["test_positives"] is not None:
        note = f"TEST positives per seed: {summary['test_positives']:.1f}"
        if summary["test_positives"] < FEW_TEST_POSITIVES:
            note += (f" (fewer than {FEW_TEST_POSITIVES}: one positive moves TEST F1 by about {1 / summary['test_positives']:.2f}; "
                     "one episode's grade is noisy: compare policies over many seeds)")
        lines.append(note)
    lines += ["", "paid-action sets, best validation F1 first (TEST F1 against no paid action):",
              f"  {'actions':62} {'val F1':>7} {'TEST F1':>8} {'gain':>7} {'sd':>6} {'pass':>6}"]
    plain = next((s["mean_test_f1"] for s in summary["strategies"] if s["actions"] == NO_PAID), None)
    for s in summary["strategies"]:
        gain = f"{s['mean_test_f1'] - plain:+.4f}" if plain is not None else ""
        lines.append(f"  {s['actions'][:62]:62} {s['mean_val_f1']:>7.4f} {s['mean_test_f1']:>8.4f} {gain:>7} {s['sd_test_f1']:>6.3f} {100 * s['pass_rate']:>5.0f}%")
    pays = summary["what_pays"]
    if pays["best"] is None:
        verdict = "only one strategy was tried"
    elif pays["pays"]:
        verdict = f"paid actions pay here: {pays['best']} gains {pays['gain']:+.4f} TEST F1 over no paid action (paired SE {pays['se']:.4f})"
    else:
        verdict = f"no paid action beats plain training by more than the noise here (best by validation: {pays['best']}, {pays['gain']:+.4f} +- {pays['se']:.4f})"
    lines += ["", f"what pays: {verdict}", "",
              f"tau for a {100 * summary['target']:.0f}% pass rate of the {summary['reference']}: {summary['suggested_tau']:.4f}",
              f"tau for the {100 * BAND[0]:.0f}-{100 * BAND[1]:.0f}% band: {summary['band'][0]:.4f} .. {summary['band'][1]:.4f}",
              "pass rates at that tau: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in summary["pass_rates_at_suggested_tau"].items()),
              "paid-action sets the ceiling chose: " + "; ".join(f"{k} x{v}" for k, v in summary["ceiling_choices"].items())]
    return "\n".join(lines)


def plot(summary: dict, path: Path, title: str) -> None:
    """Left: each ladder policy's TEST F1 per seed against the task's tau. Right: its pass rate as tau moves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, gridspec_kw={"width_ratios": [1.2, 1]})
    ladder = summary["ladder"]
    colors = plt.get_cmap("tab10").colors
    for i, row in enumerate(ladder):
        jitter = np.random.default_rng(i).uniform(-0.12, 0.12, len(row["values"]))
        left.scatter(np.full(len(row["values"]), i) + jitter, row["values"], s=18, alpha=0.7, color=colors[i % 10])
        left.hlines(row["mean_test_f1"], i - 0.3, i + 0.3, colors="black", linewidth=2)
    left.axhline(summary["tau"], color="tab:red", linestyle="--", label=f"task tau={summary['tau']:g}")
    left.axhspan(*summary["band"], color="tab:green", alpha=0.12, label=f"tau band for {100 * BAND[0]:.0f}-{100 * BAND[1]:.0f}% {summary['reference']} passes")
    left.set_xticks(range(len(ladder)), [row["policy"] for row in ladder])
    left.set_ylabel("TEST F1 (one point per seed)")
    left.legend(fontsize=8, loc="lower right")
    every = np.concatenate([row["values"] for row in ladder])
    grid = np.linspace(max(0.0, every.min() - 0.05), min(1.0, every.max() + 0.05), 200)
    for i, row in enumerate(ladder):
        right.plot(grid, [pass_rate(row["values"], t) for t in grid], color=colors[i % 10], label=row["policy"])
    right.axvline(summary["tau"], color="tab:red", linestyle="--")
    right.axhspan(*BAND, color="tab:green", alpha=0.12)
    right.set_xlabel("tau")
    right.set_ylabel("pass rate")
    right.legend(fontsize=8, loc="lower left")
    fig.suptitle(textwrap.fill(title, 140), fontsize=10)  # a task's overrides can be longer than the figure
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
