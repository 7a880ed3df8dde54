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

The protocol is closed, because the worker holds what the agent's side must never have (the
TEST rows, the grader's tau and budget): a request is one JSON object naming one of `OPS`
with exactly that operation's fields, written in the parent and parsed and checked in the
worker before anything is used. No attribute is looked up by name and nothing the parent
sends is unpickled, so no request can read the grader or run code in the worker. Tool
arguments travel as JSON: a value JSON cannot carry (a Python object, a tuple, a key that is
not a string) arrives as its repr, a string or a list, and so is answered as the invalid
argument it is in-process too (only the type named in the error message can differ). Replies
(results, grades, the episode's state) come back pickled from the parent's own worker.
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

from imbalance.config.constraints import short_repr
from imbalance.config.schema import Budget, Config
from imbalance.env.results import MAX_RECORDED_STRING, EpisodeState, Grade, ToolResult

SPLITS_PER_WORKER = 8  # (source, seed) data sets a worker keeps for new sessions
# Every request the worker answers, and the fields each carries besides `op` (and `session`).
OPS: dict[str, tuple[str, ...]] = {
    "ping": (),
    "open": ("config",),
    "reset": ("seed",),
    "call": ("tool", "arguments"),
    "step": ("action",),
    "submit": ("auto",),
    "close": (),
}
# The parts of a configuration an environment is built from (build_episode's other parts,
# the agent and the tracking, stay in the parent).
ENV_KEYS = ("source", "model", "budget", "seed", "tau", "reward", "oracle_f1")
SEED_MAX = 2**32 - 1  # the schema's range of `seed`
MAX_DEPTH = 64  # nesting of an argument sent as it is; deeper parts travel as their repr


class ProtocolError(ValueError):
    """A request outside the pool's protocol: refused before anything in it is used."""


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

    def submit(self, op: str, **fields: Any) -> Future:
        """Send one named operation; its fields are serialised to JSON here, in the caller's thread."""
        future: Future = Future()
        self.requests.put((encode(op, **fields), future))
        return future

    def _feed(self) -> None:
        while True:
            message, future = self.requests.get()
            if message is None:
                return
            try:
                self.conn.send_bytes(message)
                ok, value = self.conn.recv()
            except (EOFError, OSError):
                future.set_exception(WorkerDied(f"worker process {self.process.pid} ended (exit code {self.process.poll()})"))
                continue
            except Exception as exc:  # a reply that cannot be unpickled here: this request's failure, not the feed's
                future.set_exception(exc)
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
            description, data_seconds = worker.submit("open", session=session, config=env_config(config)).result()
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

    def _request(self, op: str, **fields: Any) -> Any:
        value, (self.state, self._metrics, self.timings) = self._worker.submit(op, session=self._session, **fields).result()
        return value

    def reset(self, *, seed: int | None = None) -> tuple[dict, dict]:
        return self._request("reset", seed=seed)

    def call(self, tool: Any, arguments: Any = None) -> ToolResult:
        return self._request("call", tool=tool, arguments=arguments)

    def step(self, action: dict) -> tuple[dict, float, bool, bool, dict]:
        return self._request("step", action=action)

    def submit(self, *, auto: bool = False) -> Grade:
        return self._request("submit", auto=bool(auto))

    def metrics(self) -> dict[str, float]:
        return self._metrics

    @property
    def done(self) -> bool:
        return self.state.done

    @property
    def truncated(self) -> bool:
        return self.state.truncated(self.budget.max_tool_calls)

    def close(self, *, wait: bool = True) -> None:
        """Free the worker's copy of the episode (the last state stays readable here). `wait=False`
        only queues the request: for a finalizer, which may run on the thread that feeds the worker."""
        if self._closed:
            return
        self._closed = True
        self._pool._release(self._worker)
        closing = self._worker.submit("close", session=self._session)
        if not wait:
            return
        try:
            closing.result(timeout=60)
        except (WorkerDied, TimeoutError):
            pass  # the worker is gone or stuck: nothing of this session is left to free


def env_config(config: Config) -> dict[str, Any]:
    """The environment's part of a configuration, as plain JSON-able data (the worker rebuilds
    and checks it: `_config`)."""
    return {key: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for key in ENV_KEYS for v in [getattr(config, key)]}


def encode(op: str, **fields: Any) -> bytes:
    """One request as the worker reads it: a JSON object, arguments made plain (`plain`)."""
    if op not in OPS:
        raise ProtocolError(f"unknown operation {short_repr(op)}; the pool answers {', '.join(OPS)}")
    return json.dumps({"op": op, **{k: plain(v) for k, v in fields.items()}}).encode()


def plain(value: Any, depth: int = 0) -> Any:
    """`value` as JSON can carry it: JSON's own types as they are (NaN and infinities too, as
    Python's json writes them), anything else as its repr, so the worker never receives an object."""
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, int):
        # Past Python's 4,300-digit limit the json module cannot write an int: its repr instead.
        return value if value.bit_length() < 14_000 else short_repr(value, MAX_RECORDED_STRING)
    if depth < MAX_DEPTH:
        if isinstance(value, dict):
            return {k if isinstance(k, str) else short_repr(k, MAX_RECORDED_STRING): plain(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v, depth + 1) for v in value]
    return short_repr(value, MAX_RECORDED_STRING)


# ----------------------------------------------------------------------------- in the worker
_ENVS: dict[str, Any] = {}
_SPLITS: OrderedDict = OrderedDict()


def _serve(conn: Any) -> None:
    """A worker's loop: one request at a time until the parent closes the pipe."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    import torch

    import imbalance.env.environment  # noqa: F401  (torch, Lightning: before the first request)

    # One worker per core: a second intra-op thread (evaluation, grading) would only contend
    # with the other workers (training already runs on one, model.threads).
    torch.set_num_threads(1)

    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            conn.send((True, _handle(decode(message))))
        except BaseException as exc:  # returned to the caller, whose episode decides what it means
            try:
                conn.send((False, exc))
            except Exception:
                conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


SESSION_ID = re.compile(r"s[0-9]{1,18}")


def decode(message: bytes) -> dict[str, Any]:
    """A request, parsed and checked: a JSON object naming a known operation with exactly its
    fields, a well-formed session id, and fields of the right type. ProtocolError otherwise."""
    try:
        request = json.loads(message)
    except (ValueError, RecursionError):  # not UTF-8 JSON (a pickle, say), or nested past the parser's depth
        raise ProtocolError(f"a request is one JSON object; got {len(message)} bytes that are not JSON") from None
    if not isinstance(request, dict) or request.get("op") not in OPS:
        raise ProtocolError(f"unknown operation {short_repr(request.get('op') if isinstance(request, dict) else request)}; "
                            f"the pool answers {', '.join(OPS)}")
    op = request["op"]
    expected = {"op", *OPS[op], *(() if op == "ping" else ("session",))}
    if set(request) != expected:
        raise ProtocolError(f"{op} takes the fields {', '.join(sorted(expected))}; got {', '.join(sorted(map(str, request)))}")
    if op != "ping" and not (isinstance(request["session"], str) and SESSION_ID.fullmatch(request["session"])):
        raise ProtocolError(f"{op}: session must be an id like 's12'; got {short_repr(request['session'])}")
    if op == "reset" and request["seed"] is not None:
        seed = request["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
            raise ProtocolError(f"reset: seed must be null or an integer in [0, {SEED_MAX}]; got {short_repr(seed)}")
    if op == "submit" and not isinstance(request["auto"], bool):
        raise ProtocolError(f"submit: auto must be true or false; got {short_repr(request['auto'])}")
    if op == "open" and not isinstance(request["config"], dict):
        raise ProtocolError("open: config must be an object")
    return request


def _handle(request: dict[str, Any]) -> Any:
    op = request["op"]
    if op == "ping":
        return os.getpid()
    session = request["session"]
    if op == "open":
        if session in _ENVS:
            raise ProtocolError(f"open: session {session} exists; a session is opened once")
        return _open(session, _config(request["config"]))
    if op == "close":
        env = _ENVS.pop(session, None)
        if env is not None:
            env.close()
        return None
    env = _ENVS.get(session)
    if env is None:
        raise ProtocolError(f"{op}: no session {session} on this worker (never opened, or closed)")
    if op == "reset":
        value = env.reset(seed=request["seed"])
    elif op == "call":
        value = env.call(request["tool"], request["arguments"])
    elif op == "step":
        value = env.step(request["action"])
    else:  # submit
        value = env.submit(auto=request["auto"])
    return value, env.snapshot()


def _config(fields: dict[str, Any]) -> Config:
    """The environment's configuration rebuilt from plain data and checked as the command line
    checks it (types, ranges, unknown keys). The agent group is not sent: a placeholder fills it."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from imbalance.config.checks import to_objects

    if set(fields) != set(ENV_KEYS):
        raise ProtocolError(f"open: config takes the keys {', '.join(ENV_KEYS)}; got {', '.join(sorted(map(str, fields)))}")
    try:
        return to_objects(OmegaConf.create({**fields, "agent": {"name": "heuristic"}}))
    except OmegaConfBaseException as exc:
        raise ProtocolError(f"open: the configuration does not fit the schema: {str(exc).splitlines()[0]}") from None


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
    # Through the imported module, not this __main__ copy: the classes a reply pickles (ProtocolError)
    # must carry the name the parent imports them by.
    from imbalance.experiment import sessions

    sessions._serve(Connection(int(sys.argv[1])))
