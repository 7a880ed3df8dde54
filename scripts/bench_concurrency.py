"""Benchmarks of many episodes in one process (scripts/bench.py sections llm_sweep, server, cpu_sweep).

- llm_sweep: 64 LLM-bound episodes (a scripted Messages API answering after 1.0 s, 5 turns, a
  small task) through hydra/launcher=concurrent and through joblib with 8 workers; the floor is
  the larger of the latency chain (5 s) and the episodes' summed CPU work over the cores.
- server: 64 sessions of python -m imbalance.serve driven by 64 client threads (openenv-core's
  client), each a scripted 10-call episode; step latency of free and paid calls; server memory.
- cpu_sweep: heuristic episodes on the default task, concurrent against joblib with as many
  CPU workers: where the work is CPU, the concurrent launcher must not be slower.
- rollouts: 8 rollouts of the TRL class (a scripted tool sequence each, on task-set train rows)
  in 8 threads against the same 8 one after another, on the rollout pool (one worker per core):
  the ratio of the medians, and whether every rollout's reward is the same both ways.

Memory is the resident set of the whole process tree (the sweep or server and its workers),
sampled every 0.2 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL_TASK = ["model=logreg", "source.n_train=2000", "source.n_val=1000", "source.n_test=1000"]
TURNS = 5
REPLY_SECONDS = 1.0


class PeakRSS:
    """The largest resident set of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every, self.peak = pid, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mib(self.pid))
            time.sleep(self.every)


def tree_rss_mib(root: int) -> float:
    children: dict[int, list[int]] = {}
    rss: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/statm") as f:
                rss[int(entry)] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


def fake_llm(delay: float):
    sys.path.insert(0, str(ROOT))
    from tests.fake_llm import FakeLLM, reply

    plan = [reply(("imbalance_start", {})), reply(("train", {"epochs": 2})), reply(("eval_on_val", {})),
            reply(("sweep_thresholds", {})), reply(("submit_answer", {}))]
    assert len(plan) == TURNS
    return FakeLLM(plan=plan, delay=delay, keep_requests=False)


def sweep(folder: Path, overrides: list[str], env: dict | None = None) -> tuple[float, float, list]:
    """(wall seconds, peak MiB of the process tree, the episode runs) of one multirun."""
    from mlflow.tracking import MlflowClient

    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "imbalance.run", "-m", *overrides], cwd=folder, env=env or os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with PeakRSS(proc.pid) as memory:
        out, _ = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(out[-3000:])
    client = MlflowClient(f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("imbalance")
    runs = [r for r in client.search_runs([experiment.experiment_id], max_results=5000) if "termination_reason" in r.data.tags]
    return wall, memory.peak, runs


def cpu_seconds(runs: list) -> float:
    """The episodes' CPU work: data, training, SMOTE, evaluation, grading (the timed parts)."""
    return sum(v for r in runs for k, v in r.data.metrics.items() if k.startswith("time_") and k.endswith("_seconds"))


def bench_llm_sweep(report, work: Path, repeats: int = 1, episodes: int = 64) -> None:
    """The concurrent sweep and its 1-episode start-up run `repeats` times, alternating (medians:
    this machine is shared, and one run moves by 10%); joblib's sweep, at 2.5 minutes, once."""
    report.section(f"8. LLM-bound sweep: {episodes} episodes, a scripted API answering after {REPLY_SECONDS} s, {TURNS} turns")
    cores = os.cpu_count() or 1
    walls, startups, floors, peaks = [], [], [], []
    with fake_llm(REPLY_SECONDS) as server:
        env = {**os.environ, "ANTHROPIC_API_KEY": "bench"}
        common = ["agent=anthropic", f"agent.base_url={server.url}", *SMALL_TASK]
        concurrent = ["hydra/launcher=concurrent", f"hydra.launcher.max_concurrency={episodes}"]
        joblib = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=8"]
        for i in range(repeats):
            one_wall, _, one_runs = sweep(work / f"llm-1-{i}", [*common, *concurrent, "seed=range(0,1)"], env)
            c_wall, c_peak, c_runs = sweep(work / f"llm-concurrent-{i}", [*common, *concurrent, f"seed=range(0,{episodes})"], env)
            assert len(c_runs) == episodes and {r.data.tags["termination_reason"] for r in c_runs} == {"submitted"}
            walls.append(c_wall)
            peaks.append(c_peak)
            startups.append(one_wall - one_runs[0].data.metrics["wall_seconds"])
            floors.append(max(TURNS * REPLY_SECONDS, cpu_seconds(c_runs) / cores))
        j_wall, j_peak, j_runs = sweep(work / "llm-joblib", [*common, *joblib, f"seed=range(0,{episodes})"], env)
    assert len(j_runs) == episodes and {r.data.tags["termination_reason"] for r in j_runs} == {"submitted"}
    c_wall, startup, floor = statistics.median(walls), statistics.median(startups), statistics.median(floors)
    report.table(
        ["launcher", "wall", "peak memory (process tree)", "episodes / minute"],
        [
            [f"concurrent, max_concurrency={episodes}, {cores} CPU workers", f"**{c_wall:.1f} s**", f"**{max(peaks) / 1024:.2f} GiB**", f"{episodes / c_wall * 60:.0f}"],
            ["joblib, n_jobs=8", f"{j_wall:.1f} s", f"{j_peak / 1024:.2f} GiB", f"{episodes / j_wall * 60:.0f}"],
        ],
    )
    report.emit("")
    each = ", ".join(f"{w / (f + s):.2f}" for w, f, s in zip(walls, floors, startups))
    report.emit(f"Ratio concurrent / joblib: **{c_wall / j_wall:.2f}** (target <= 0.35). Floor: max(latency chain {TURNS * REPLY_SECONDS:.0f} s, "
                f"summed CPU work / {cores} cores) = {floor:.1f} s; one process start-up (a 1-episode concurrent sweep "
                f"minus its episode) {startup:.1f} s; concurrent / (floor + start-up) = **{c_wall / (floor + startup):.2f}** (target <= 1.5; "
                f"each run: {each}). Peak memory target <= 2 GiB. Concurrent figures are medians of {repeats} run(s), joblib's of one.")


def bench_cpu_sweep(report, work: Path, episodes: int = 8) -> None:
    cores = os.cpu_count() or 1
    report.section(f"9. CPU-bound sweep: {episodes} heuristic episodes on the default task, {cores} CPU workers each")
    c_wall, c_peak, c_runs = sweep(work / "cpu-concurrent", ["hydra/launcher=concurrent", f"hydra.launcher.cpu_workers={cores}", f"seed=range(0,{episodes})"])
    j_wall, j_peak, j_runs = sweep(work / "cpu-joblib", ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={cores}", f"seed=range(0,{episodes})"])
    same = sorted(r.data.metrics["test_f1"] for r in c_runs) == sorted(r.data.metrics["test_f1"] for r in j_runs)
    report.table(
        ["launcher", "wall", "peak memory (process tree)"],
        [[f"concurrent, cpu_workers={cores}", f"**{c_wall:.1f} s**", f"{c_peak / 1024:.2f} GiB"], [f"joblib, n_jobs={cores}", f"{j_wall:.1f} s", f"{j_peak / 1024:.2f} GiB"]],
    )
    report.emit("")
    report.emit(f"Ratio concurrent / joblib: **{c_wall / j_wall:.2f}** (target <= 1.1). Same TEST F1 per episode under both launchers: {same}.")


SCRIPTED_SESSION = [
    {"tool": "imbalance_start"}, {"tool": "train", "arguments": {"epochs": 2}}, {"tool": "eval_on_val"},
    {"tool": "set_class_weights", "arguments": {"beta": 0.99}}, {"tool": "train", "arguments": {"epochs": 2}},
    {"tool": "sweep_thresholds", "arguments": {}}, {"tool": "use_focal", "arguments": {"alpha": 0.75, "gamma": 2.0}},
    {"tool": "eval_on_val"}, {"tool": "get_budget"}, {"tool": "submit_answer"},
]


def bench_server(report, work: Path, sessions: int = 64) -> None:
    from openenv.core.generic_client import GenericEnvClient

    from imbalance.env.tools import TOOLS_BY_NAME

    report.section(f"10. The OpenEnv server: {sessions} sessions at once, {sessions} client threads, a scripted {len(SCRIPTED_SESSION)}-call episode each")
    folder = work / "server"
    folder.mkdir(parents=True, exist_ok=True)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(folder / "serve.log", "w")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "imbalance.serve", f"serve.port={port}", f"serve.max_sessions={sessions}", *SMALL_TASK],
                            cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.perf_counter() - started > 300:
                raise RuntimeError((folder / "serve.log").read_text()[-3000:]) from None
            time.sleep(0.3)
    startup = time.perf_counter() - started
    latencies: dict[str, list[float]] = {"free": [], "paid": []}
    outcomes, errors = [], []
    lock = threading.Lock()

    def session(i: int) -> None:
        try:
            with GenericEnvClient(base_url=url, message_timeout_s=600).sync() as env:
                env.reset(seed=i % 8)
                for action in SCRIPTED_SESSION:
                    t = time.perf_counter()
                    result = env.step(action)
                    kind = "paid" if TOOLS_BY_NAME[action["tool"]].paid else "free"
                    with lock:
                        latencies[kind].append(time.perf_counter() - t)
                with lock:
                    outcomes.append((result.done, result.reward))
        except Exception as exc:  # a refusal or a broken session: counted below
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    with PeakRSS(proc.pid) as memory:
        began = time.perf_counter()
        threads = [threading.Thread(target=session, args=(i,)) for i in range(sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
    proc.terminate()
    proc.wait(timeout=60)
    graded = sum(1 for done, reward in outcomes if done and reward in (0.0, 1.0))

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")

    report.table(
        ["calls", "n", "p50 latency", "p99 latency"],
        [[kind, str(len(v)), f"{pct(v, 50):.3f} s", f"{pct(v, 99):.3f} s"] for kind, v in latencies.items()],
    )
    report.emit("")
    report.emit(f"Sessions graded: **{graded}/{sessions}**, refused or broken: **{len(errors)}** {errors[:2] if errors else ''}; "
                f"all {sessions} episodes in {wall:.1f} s; server start-up {startup:.1f} s; peak server memory (with its workers) "
                f"**{memory.peak / 1024:.2f} GiB** (target <= 2 GiB).")


ROLLOUT_CALLS = [
    ("imbalance_start", {}), ("train", {"epochs": 3}), ("smote", {"ratio": 0.1, "k": 5}), ("set_class_weights", {"beta": 0.99}),
    ("train", {"epochs": 3}), ("eval_on_val", {}), ("sweep_thresholds", {}), ("submit_answer", {}),
]


def bench_rollouts(report, repeats: int = 3, rollouts: int = 8) -> None:
    """Threads against one after another, alternating `repeats` times after one untimed round
    of each (the workers' imports, their per-(source, seed) data caches); medians quoted."""
    from imbalance.integrations.episode import rollout_pool
    from imbalance.integrations.trl import ImbalanceToolEnv
    from imbalance.tasks import load_taskset

    cores = os.cpu_count() or 1
    report.section(f"11. Trainer rollouts: {rollouts} rollouts of the TRL class in {rollouts} threads against one after another, "
                   f"{len(ROLLOUT_CALLS)} scripted calls each")
    rows = load_taskset("train")[:rollouts]
    started = time.perf_counter()
    pool = rollout_pool()
    pool.ready()
    startup = time.perf_counter() - started

    def rollout(row: dict) -> float:
        env = ImbalanceToolEnv()
        env.reset(**row)
        for tool, arguments in ROLLOUT_CALLS:
            getattr(env, tool)(**arguments)
        return env.get_reward()

    def sequential() -> list[float]:
        return [rollout(row) for row in rows]

    def threaded() -> list[float]:
        rewards: list = [None] * len(rows)

        def one(i: int) -> None:
            rewards[i] = rollout(rows[i])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(rows))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return rewards

    tick = os.sysconf("SC_CLK_TCK")

    def worker_cpu() -> list[float]:
        out = []
        for worker in pool._workers:
            with open(f"/proc/{worker.process.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / tick)
        return out

    def runnable_waits() -> float:
        """Seconds the workers' threads were ready to run but waited for a CPU (schedstat)."""
        total = 0
        for worker in pool._workers:
            for task in os.listdir(f"/proc/{worker.process.pid}/task"):
                with open(f"/proc/{worker.process.pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[1])
        return total / 1e9

    reference = sequential()
    same = threaded() == reference
    ceiling = parallel_ceiling()
    walls: dict[str, list[float]] = {"sequential": [], "threads": []}
    cpu: dict[str, list[list[float]]] = {"sequential": [], "threads": []}
    waits: dict[str, list[float]] = {"sequential": [], "threads": []}
    for _ in range(repeats):
        for name, run in (("sequential", sequential), ("threads", threaded)):
            before, parent, waited, t = worker_cpu(), time.process_time(), runnable_waits(), time.perf_counter()
            rewards = run()
            walls[name].append(time.perf_counter() - t)
            waits[name].append(runnable_waits() - waited)
            cpu[name].append([time.process_time() - parent] + [b - a for a, b in zip(before, worker_cpu())])
            same = same and rewards == reference
    seq, par = statistics.median(walls["sequential"]), statistics.median(walls["threads"])

    def cores_used(name: str) -> float:
        return statistics.median(sum(c) / w for c, w in zip(cpu[name], walls[name]))

    report.table(
        ["rollouts", "median wall", "each run", "CPU s: parent + workers (median run)", "cores received"],
        [[f"{rollouts} one after another", f"{seq:.2f} s", ", ".join(f"{w:.2f}" for w in walls["sequential"]),
          " + ".join(f"{c:.1f}" for c in sorted(cpu["sequential"], key=sum)[len(cpu["sequential"]) // 2]), f"{cores_used('sequential'):.2f}"],
         [f"{rollouts} in {rollouts} threads", f"**{par:.2f} s**", ", ".join(f"{w:.2f}" for w in walls["threads"]),
          " + ".join(f"{c:.1f}" for c in sorted(cpu["threads"], key=sum)[len(cpu["threads"]) // 2]), f"{cores_used('threads'):.2f}"]],
    )
    # On idle cores the threaded run is bounded by the busiest worker (plus the parent's share);
    # on a shared machine the kernel's fair share can hold a session to less than its cores.
    threads_cpu = sorted(cpu["threads"], key=sum)[len(cpu["threads"]) // 2]
    bound = (threads_cpu[0] + max(threads_cpu[1:])) / sum(threads_cpu)
    report.emit("")
    report.emit(f"Ratio threads / one after another: **{par / seq:.2f}** (target <= 0.75) on {cores} cores, a pool of {pool.workers} "
                f"worker(s) (start-up {startup:.1f} s, not counted); identical rewards in every run: **{same}** (rewards {reference}). "
                f"Medians of {repeats} alternating runs. From the CPU work alone (the parent's plus the busiest worker's, over all "
                f"of it) the ratio on idle cores would be {bound:.2f}; cores received above 1 in the threaded run show the rollouts "
                f"training side by side, and a figure near the sequential one shows a machine whose other work held them back. "
                f"Right now this machine gives two busy processes {ceiling:.2f}x the CPU of one (2.00 on {cores} idle cores), "
                f"so no ratio below {1 / ceiling:.2f} was reachable in this run. The workers waited for a CPU while ready to "
                f"run {statistics.median(waits['sequential']):.1f} s (one after another) and {statistics.median(waits['threads']):.1f} s "
                f"(threads) per run (medians; /proc schedstat).")


def parallel_ceiling(seconds: float = 3.0) -> float:
    """CPU that two busy loops in two processes get over the CPU one gets, in the same wall time:
    the largest speed-up of anything parallel on this machine at this moment (the kernel shares
    the cores fairly between sessions, so other people's work caps it)."""
    code = f"import time\nt, c = time.time(), time.process_time()\nwhile time.time() - t < {seconds}: pass\nprint(time.process_time() - c)"

    def run(n: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(n)]
        return sum(float(p.communicate()[0]) for p in procs)

    return run(2) / run(1)
