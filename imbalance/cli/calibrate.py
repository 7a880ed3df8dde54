"""`python -m imbalance.calibrate [task overrides] [--seeds 10] [--target 0.25] [--grid full|quick]`

What each paid action is worth on a task, where the reference policies stand, and the tau
that gives a reference policy a target pass rate (imbalance/experiment/calibration.py).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from imbalance.cli.errors import ArgumentParser, command, first_line, require_writable_dir
from imbalance.errors import UsageError


@command
def main(argv: list[str] | None = None) -> int:
    from imbalance.experiment import calibration

    parser = ArgumentParser(prog="python -m imbalance.calibrate", description=calibration.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides that choose the task, e.g. source=synthetic_original")
    parser.add_argument("--seeds", type=int, default=10, help="seeds (data splits) to evaluate (default 10)")
    parser.add_argument("--trials", type=int, default=3, help="random-agent episodes per seed (default 3)")
    parser.add_argument("--target", type=float, default=0.25, help="the reference agent's target pass rate (default 0.25)")
    parser.add_argument("--reference", choices=("heuristic", "random", "naive", "no_paid", "ceiling"), default="heuristic",
                        help="the policy whose pass rate --target sets (default heuristic)")
    parser.add_argument("--grid", choices=tuple(calibration.GRIDS), default="full", help="the paid-action sets tried per seed (full: 27; quick: 8)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--out", default="reports/calibration", help="folder for calibration.json and calibration.png")
    args = parser.parse_intermixed_args(argv)
    if not 1 <= args.seeds <= 10_000 or not 0 <= args.trials <= 1000 or not 0 < args.target < 1 or not 1 <= args.jobs <= 256:
        raise UsageError("need 1 <= --seeds <= 10000, 0 <= --trials <= 1000, 0 < --target < 1, 1 <= --jobs <= 256")
    if args.reference == "random" and args.trials == 0:
        raise UsageError("--reference random needs --trials >= 1")

    from hydra.errors import HydraException

    from imbalance.config.compose import compose_config
    from imbalance.data import load_splits
    from imbalance.experiment.build import precheck

    require_writable_dir(args.out, "--out")  # before minutes of episodes, not after
    try:
        config = compose_config(args.overrides)
    except HydraException as exc:
        raise UsageError(first_line(exc)) from None
    precheck(config)
    test_positives = [load_splits(config.source, seed).test.positives for seed in range(args.seeds)]
    sets = calibration.action_sets(config.budget.max_steps, args.grid)
    tasks = [(config, "strategy", seed, actions) for seed in range(args.seeds) for actions in sets]
    tasks += [(config, kind, seed, 0) for kind in ("heuristic", "naive") for seed in range(args.seeds)]
    tasks += [(config, "random", seed, trial) for seed in range(args.seeds) for trial in range(args.trials)]
    title = f"Calibration: {' '.join(args.overrides) or 'defaults'} (tau={config.tau:g}, budget.max_steps={config.budget.max_steps}, {args.seeds} seeds)"
    print(f"{title}: {len(tasks)} episodes ({len(sets)} paid-action sets per seed) on {args.jobs} worker(s)", flush=True)

    from joblib import Parallel, delayed

    started, results = time.monotonic(), []
    for done, result in enumerate(Parallel(n_jobs=args.jobs, return_as="generator_unordered")(delayed(calibration.evaluate)(*t) for t in tasks), 1):
        results.append(result)
        if done == len(tasks) or done % max(1, len(tasks) // 20) == 0:
            print(f"  {done}/{len(tasks)} episodes, {time.monotonic() - started:.0f} s", flush=True)

    summary = calibration.summarise(results, tau=config.tau, target=args.target, reference=args.reference, test_positives=test_positives)
    if config.source.name == "synthetic":
        from imbalance.data.synthetic import bayes_optimal_f1

        summary["bayes_optimal_f1"] = bayes_optimal_f1(config.source)
    report = calibration.format_report(summary, title)
    if "bayes_optimal_f1" in summary:
        report += f"\nBayes-optimal F1 of this distribution: {summary['bayes_optimal_f1']:.4f}"
    print("\n" + report)
    out = Path(args.out)
    (out / "calibration.json").write_text(json.dumps({"overrides": args.overrides, **summary, "episodes": results}, indent=1))
    calibration.plot(summary, out / "calibration.png", title)
    print(f"\nwrote {out / 'calibration.json'} and {out / 'calibration.png'}")
    return 0
