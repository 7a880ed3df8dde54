"""Many live episodes in one process, their CPU work on a fixed set of worker processes.

An LLM episode mostly waits on its API; its tool calls (training, SMOTE, evaluation) are short
bursts of CPU. The concurrent launcher and the environment server therefore keep the episodes
(agents, conversations, tracking) in threads of one process and send every environment
operation to a `SessionPool`: `workers` processes, one per core, each holding the
environments of its sessions and working through one request at a time, in arrival order. A
hundred waiting conversations never put more than `workers` trainings on the CPU, and the
parent never loads torch.

Inside a worker, the data of a (source, seed) is loaded once and shared read-only by every
session on that worker. A session's environment is the same `ImbalanceEnv` the
one-process path builds from the same configuration, so tool results and grades are identical.

Workers are fresh interpreters (`python -m imbalance.experiment.sessions FD`) talking over a
socket pair: forking a process whose threads hold MLflow or HTTP clients can deadlock the
child, and multiprocessing's `spawn` would re-run the caller's main script in every worker.
"""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

from imbalance.config.schema import Budget, Config
from imbalance.env.results import EpisodeState, Grade, ToolResult

SPLITS_PER_WORKER = 8  # (source, seed) data sets a worker keeps for new sessions


class WorkerDied(RuntimeError):
    """A worker process ended (killed, out of memory); its sessions are lost."""


class _Worker:
    """One process and the thread that feeds it requests in arrival order."""

    def __init__(self, index: int):
        self.index = index
        self.sessions = 0
        mine, theirs = socket.socketpair()
        self.process = subprocess.Popen([sys.executable, "-m", "imbalance.experiment.sessions", str(theirs.fileno())], pass_fds=[theirs.fileno()])
        theirs.close()
        self.conn = Connection(mine.detach())
        self.requests: queue.Queue = queue.Queue()
        threading.Thread(target=self._feed, name=f"imbalance-feed-{index}", daemon=True).start()

    def submit(self, *message: Any) -> Future:
        future: Future = Future()
        self.requests.put((message, future))
        return future

    def _feed(self) -> None:
        while True:
            message, future = self.requests.get()
            if message is None:
                return
            try:
                self.conn.send(message)
                ok, value = self.conn.recv()
            except (EOFError, OSError):
                future.set_exception(WorkerDied(f"worker process {self.process.pid} ended (exit code {self.process.poll()})"))
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def stop(self) -> None:
        self.requests.put((None, None))
        try:
            self.conn.close()
        except OSError:
            pass
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class SessionPool:
    """`workers` processes serving environment sessions; `open(config)` starts one."""

    def __init__(self, workers: int | None = None, *, wait: bool = True):
        """`wait=False` returns at once, the workers still importing torch (several seconds):
        the concurrent launcher starts them while Hydra composes the sweep's jobs."""
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._workers = [_Worker(i) for i in range(self.workers)]
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._closed = False
        self._started = [worker.submit("ping") for worker in self._workers]
        atexit.register(self.close)  # a pool started for a sweep that never launched
        if wait:
            self.ready()

    def ready(self) -> None:
        """Wait until every worker has imported torch and the environment (WorkerDied if one could not)."""
        for started in self._started:
            started.result()

    def open(self, config: Config) -> RemoteEnv:
        """A new episode's environment on the least busy worker (data loaded there, or shared)."""
        with self._lock:
            worker = min(self._workers, key=lambda w: w.sessions)
            worker.sessions += 1
            session = f"s{next(self._ids)}"
        try:
            description, data_seconds = worker.submit("open", session, config).result()
        except BaseException:
            with self._lock:
                worker.sessions -= 1
            raise
        return RemoteEnv(self, worker, session, config.budget, description, data_seconds)

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            worker.sessions -= 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for worker in self._workers:
            worker.stop()

    def __enter__(self) -> SessionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteEnv:
    """The parts of `ImbalanceEnv` an episode's runner uses, served by a pool worker. Every
    operation that changes the episode brings back its state, metrics and timings, so reading
    them costs no round trip."""

    def __init__(self, pool: SessionPool, worker: _Worker, session: str, budget: Budget, description: str, data_seconds: float):
        self._pool, self._worker, self._session = pool, worker, session
        self.budget, self.description, self.data_seconds = budget, description, data_seconds
        self.state = EpisodeState()
        self.timings: dict[str, float] = {}
        self._metrics: dict[str, float] = {}
        self._closed = False

    def _do(self, method: str, *args: Any) -> Any:
        value, (self.state, self._metrics, self.timings) = self._worker.submit("call", self._session, method, args).result()
        return value

    def reset(self, *, seed: int | None = None) -> tuple[dict, dict]:
        return self._do("reset", seed)

    def call(self, tool: Any, arguments: Any = None) -> ToolResult:
        return self._do("call", tool, arguments)

    def step(self, action: dict) -> tuple[dict, float, bool, bool, dict]:
        return self._do("step", action)

    def submit(self, *, auto: bool = False) -> Grade:
        return self._do("submit", auto)

    def metrics(self) -> dict[str, float]:
        return self._metrics

    @property
    def done(self) -> bool:
        return self.state.done

    @property
    def truncated(self) -> bool:
        return self.state.truncated(self.budget.max_tool_calls)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool._release(self._worker)
        try:
            self._worker.submit("close", self._session).result(timeout=60)
        except (WorkerDied, TimeoutError):
            pass  # the worker is gone or stuck: nothing of this session is left to free


# ----------------------------------------------------------------------------- in the worker
_ENVS: dict[str, Any] = {}
_SPLITS: OrderedDict = OrderedDict()


def _serve(conn: Any) -> None:
    """A worker's loop: one request at a time until the parent closes the pipe."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    import imbalance.env.environment  # noqa: F401  (torch, Lightning: before the first request)

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send((True, _handle(*message)))
        except BaseException as exc:  # returned to the caller, whose episode decides what it means
            try:
                conn.send((False, exc))
            except Exception:
                conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


def _handle(kind: str, *args: Any) -> Any:
    if kind == "ping":
        return os.getpid()
    if kind == "open":
        session, config = args
        return _open(session, config)
    if kind == "close":
        env = _ENVS.pop(args[0], None)
        if env is not None:
            env.close()
        return None
    session, method, call_args = args
    env = _ENVS[session]
    if method == "reset":
        value = env.reset(seed=call_args[0])
    elif method == "submit":
        value = env.submit(auto=call_args[0])
    else:  # call, step
        value = getattr(env, method)(*call_args)
    return value, env.snapshot()


def _open(session: str, config: Config) -> tuple[str, float]:
    from imbalance.data import load_splits
    from imbalance.env.environment import ImbalanceEnv

    started = time.perf_counter()
    key = (repr(config.source), config.seed)
    splits = _SPLITS.get(key)
    if splits is None:
        splits = _SPLITS[key] = load_splits(config.source, config.seed)
        while len(_SPLITS) > SPLITS_PER_WORKER:
            _SPLITS.popitem(last=False)
    _SPLITS.move_to_end(key)
    _ENVS[session] = ImbalanceEnv.from_config(config, splits)
    return splits.description, time.perf_counter() - started


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
