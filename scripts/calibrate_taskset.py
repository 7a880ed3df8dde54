"""Calibrate task set v2's candidates and decide which are admitted, with what tau.

    python scripts/calibrate_taskset.py [--seeds 8] [--trials 2] [--parallel 2] [--out reports/taskset_v2] [--only NAME ...]

For each candidate of scripts/taskset_candidates.py it runs `python -m imbalance.calibrate
<overrides> --grid quick` (skipped when its calibration.json exists: delete it to redo), then:
- tau = the heuristic's TEST F1 that at least 70% of seeds reach (never above the oracle mean);
- the ladder's pass rates at that tau;
- admitted when random passes at most 5% and, in the strategy tier, no_paid at most 30%;
- the best fixed paid-action set per task (by mean TEST F1), to check that no one set is best on
  more than half of the admitted tasks.
It prints the markdown tables of docs/calibration.md and writes summary.json beside the calibrations.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from taskset_candidates import CANDIDATES  # noqa: E402

from imbalance.experiment.calibration import NO_PAID  # noqa: E402

HEURISTIC_PASS = 0.70
RANDOM_MAX, NO_PAID_MAX = 0.05, 0.30


def calibrate(candidate, args) -> Path:
    out = Path(args.out) / candidate.dataset
    result = out / "calibration.json"
    if not result.exists():
        cmd = [sys.executable, "-m", "imbalance.calibrate", *candidate.overrides, "--seeds", str(args.seeds), "--trials", str(args.trials),
               "--grid", "quick", "--jobs", "1", "--out", str(out)]
        log = out.with_suffix(".log")
        out.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as fh:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
        print(f"  {candidate.dataset}: exit {proc.returncode} ({log})", flush=True)
    return result


def bar(values: list[float], oracle: float) -> float:
    """The highest tau that at least HEURISTIC_PASS of `values` reach, capped at the oracle mean."""
    ranked = sorted(values)
    allowed_failures = math.floor((1 - HEURISTIC_PASS) * len(ranked) + 1e-9)
    # Rounded down: a bar rounded up past a seed's F1 would fail that seed.
    return math.floor(min(ranked[allowed_failures], oracle) * 10_000) / 10_000


def judge(candidate, data: dict) -> dict:
    ladder = {row["policy"]: row for row in data["ladder"]}
    oracle = ladder["oracle"]["mean_test_f1"]
    tau = bar(ladder["heuristic"]["values"], oracle)
    rates = {policy: sum(v >= tau for v in row["values"]) / len(row["values"]) for policy, row in ladder.items()}
    best = max(data["strategies"], key=lambda s: s["mean_test_f1"])["actions"]
    reasons = []
    if rates["random"] > RANDOM_MAX:
        reasons.append(f"random passes {rates['random']:.0%}")
    if candidate.tier == "strategy" and rates["no_paid"] > NO_PAID_MAX:
        reasons.append(f"no_paid passes {rates['no_paid']:.0%}")
    plain = next(s["mean_test_f1"] for s in data["strategies"] if s["actions"] == NO_PAID)
    worth = {s["actions"].split("(")[0]: round(s["mean_test_f1"] - plain, 4) for s in data["strategies"] if s["actions"] != NO_PAID and "+" not in s["actions"]}
    return {"dataset": candidate.dataset, "tier": candidate.tier, "split": candidate.split, "overrides": list(candidate.overrides), "worth": worth,
            "tau": tau, "oracle_f1": round(oracle, 4), "test_positives": data["test_positives"], "skill_gap": round(data["skill_gap"], 4),
            "means": {p: round(r["mean_test_f1"], 4) for p, r in ladder.items()}, "pass_rates": rates, "best_fixed": best,
            "admitted": not reasons, "why_not": "; ".join(reasons)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=2, help="calibrations at once (each on one worker)")
    parser.add_argument("--out", default="reports/taskset_v2")
    parser.add_argument("--only", nargs="*", help="candidate data sets to (re)calibrate")
    args = parser.parse_args()
    chosen = [c for c in CANDIDATES if not args.only or c.dataset in args.only]
    print(f"calibrating {len(chosen)} candidates, {args.seeds} seeds each, {args.parallel} at once", flush=True)
    with ThreadPoolExecutor(args.parallel) as pool:
        paths = list(pool.map(lambda c: calibrate(c, args), chosen))
    verdicts = []
    for candidate, path in zip(chosen, paths):
        if not path.exists():
            print(f"  {candidate.dataset}: no calibration (see its log)")
            continue
        verdicts.append(judge(candidate, json.loads(path.read_text())))
    admitted = [v for v in verdicts if v["admitted"]]
    best = Counter(v["best_fixed"] for v in admitted)
    policies = ("random", "naive", "no_paid", "heuristic", "ceiling", "oracle")
    print("\n| task | split | tier | TEST positives | tau | " + " | ".join(policies) + " | skill gap | best fixed set | admitted |")
    print("|---|---|---|---|---|" + "---|" * len(policies) + "---|---|---|")
    for v in verdicts:
        cells = " | ".join(f"{v['means'][p]:.3f} ({v['pass_rates'][p]:.0%})" for p in policies)
        print(f"| `{v['dataset']}` | {v['split']} | {v['tier']} | {v['test_positives']:.0f} | {v['tau']:.3f} | {cells} | {v['skill_gap']:+.3f} | "
              f"{v['best_fixed']} | {'yes' if v['admitted'] else 'no: ' + v['why_not']} |")
    tools = sorted({tool for v in verdicts for tool in v["worth"]})
    print("\nwhat each tool is worth (mean TEST F1 gain of that one paid action over none, trained and swept the heuristic's way):\n")
    print("| task | tier | " + " | ".join(f"`{t}`" for t in tools) + " |")
    print("|---|---|" + "---|" * len(tools))
    for v in verdicts:
        print(f"| `{v['dataset']}` | {v['tier']} | " + " | ".join(f"{v['worth'].get(t, float('nan')):+.3f}" for t in tools) + " |")
    strategy = sum(v["tier"] == "strategy" for v in admitted)
    print(f"\nadmitted {len(admitted)} of {len(verdicts)} ({strategy} strategy tier) from {len({v['dataset'] for v in admitted})} data sets;"
          f" most common best fixed set: {best.most_common(1)[0] if best else None} of {len(admitted)}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "summary.json").write_text(json.dumps(verdicts, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
