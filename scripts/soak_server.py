#!/usr/bin/env python
"""A bounded soak of `python -m imbalance.serve` on loopback: does every limit hold, and does the
server give its memory back?

    python scripts/soak_server.py --seconds 100 --folder /tmp/soak

Bursts of 9 clients every 4 s against `serve.max_sessions=6`, each one of: well-behaved (a
whole episode), silent (resets, then idles past `serve.idle_timeout_s=3`, so the reaper closes
it), dropping (resets, trains, then vanishes without a close frame), over the limit (refused).
Prints the resident memory of the server and its workers after a warm-up and after the soak,
then stops the server with Ctrl-C's signal and counts the runs by status. Nothing may be left
RUNNING.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

SERVER = ["serve.max_sessions=6", "serve.idle_timeout_s=3", "serve.cpu_workers=1", "source.n_train=3000", "source.n_val=1000", "source.n_test=1000", "model=logreg"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=100.0, help="how long bursts start (at most 120)")
    parser.add_argument("--folder", type=Path, required=True, help="where the server runs (its ./mlruns, its log)")
    args = parser.parse_args()
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    logging.getLogger("websockets").setLevel(logging.CRITICAL)  # the dropping clients' own sockets complain
    args.folder.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(args.folder / "serve.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "imbalance.serve", f"serve.port={port}", *SERVER], cwd=args.folder, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"the server did not start: {(args.folder / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.5)

    def rss_mb() -> float:
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        total = 0
        for pid in [proc.pid, *map(int, children)]:
            try:
                total += int(next(line for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS")).split()[1])
            except (OSError, StopIteration):
                pass
        return total / 1024

    counts = dict.fromkeys(("played", "silent", "dropped", "refused", "errors"), 0)
    lock = threading.Lock()

    def bump(key: str) -> None:
        with lock:
            counts[key] += 1

    def ask(ws, kind: str, data: dict | None = None) -> dict:
        ws.send(json.dumps({"type": kind, "data": data or {}}))
        return json.loads(ws.recv(timeout=300))

    def client(kind: str, seed: int) -> None:
        try:
            ws = connect(url.replace("http", "ws") + "/ws", open_timeout=30)
        except Exception:
            bump("errors")
            return
        try:
            try:
                first = ask(ws, "reset", {"seed": seed})
            except ConnectionClosed:  # the server refused at capacity and closed before the reset arrived
                bump("refused")
                return
            if first["type"] == "error":
                bump("refused" if first["data"].get("code") == "CAPACITY_REACHED" else "errors")
            elif kind == "good":
                for action in ({"tool": "train", "arguments": {"epochs": 1}}, {"tool": "sweep_thresholds"}, {"tool": "submit_answer"}):
                    last = ask(ws, "step", action)
                bump("played" if last["data"]["done"] else "errors")
            elif kind == "silent":
                time.sleep(8)
                bump("silent")
            else:
                ask(ws, "step", {"tool": "train", "arguments": {"epochs": 1}})
                ws.socket.close()
                bump("dropped")
        except Exception as exc:
            bump("errors")
            print(f"client {kind}: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
        finally:
            try:
                ws.close()
            except Exception:
                pass

    for seed in range(4):  # the worker's data cache and imports belong to the start
        client("good", seed)
    time.sleep(5)
    start = rss_mb()
    rng, threads, began = random.Random(0), [], time.monotonic()
    while time.monotonic() - began < min(args.seconds, 120):
        burst = [threading.Thread(target=client, args=(rng.choice(["good", "good", "silent", "drop"]), rng.randrange(4))) for _ in range(9)]
        for thread in burst:
            thread.start()
        threads += burst
        time.sleep(4)
    for thread in threads:
        thread.join(timeout=120)
    time.sleep(12)  # the reaper: a 3 s timeout, looked at every 5 s
    end = rss_mb()
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    from mlflow.tracking import MlflowClient

    client_ = MlflowClient(f"sqlite:///{args.folder / 'mlruns' / 'mlflow.db'}")
    runs = client_.search_runs([client_.get_experiment_by_name("imbalance").experiment_id], max_results=10_000)
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run.info.status] = statuses.get(run.info.status, 0) + 1
    log.seek(0)
    print(f"clients: {counts}")
    print(f"memory (server and workers): {start:.0f} MB after warm-up, {end:.0f} MB after the soak ({end / start - 1:+.1%})")
    print(f"runs: {statuses}; tracebacks in the server's log: {log.read().count('Traceback')}")
    if statuses.get("RUNNING") or counts["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
