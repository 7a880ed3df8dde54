"""The environment behind an OpenEnv server: one WebSocket session = one episode.

Built on openenv's server pieces (0.10; openenv-core 0.3's import path) (sessions over `/ws`,
the limit on live sessions, the idle reaper), in OpenEnv's production shape: the stateless HTTP
`/reset`, `/step` and `/state` (each request a whole episode of its own, outside the session
limit) and MCP (this environment has no MCP tools; its HTTP sessions would hold slots no socket
owns) are not served. Each session's `ServedEpisode` is an OpenEnv `Environment`:

    reset(seed=S)  -> the task prompt, the tool schemas and the task summary; a new episode
                      of the server's configuration with seed S (an unfinished one is KILLED)
    reset(split="eval", index=3) or reset(task_id="v1-eval-0003")
                   -> the same, for a row of the task set (task_api.py: OpenEnv's task API)
    step({"tool": NAME, "arguments": {...}})
                   -> the tool result; at submission reward 1.0/0.0 (TEST F1 >= tau within the
                      budget), done, and the grade in `info` (OpenEnv sends declared fields
                      only, never `metadata`)

A malformed action (no tool, unknown keys, arguments of the wrong shape) is an invalid tool
call: free, counted, answered with an error result. The environment's CPU work runs on the
server's `SessionPool`; with mlflow.enabled each session is one MLflow run, KILLED when the
session ends before submission (idle timeout, disconnect, shutdown). A closed session stays
closed: openenv-core's reaper frees the slot but leaves the socket open, so a later reset on it
is refused rather than starting an episode no limit counts. `Server` owns every live episode and
ends those still open when it stops.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import threading
import time
import uuid
from typing import Any

from openenv.core.env_server import Action, ConcurrencyConfig, Environment, Observation, State
from pydantic import ConfigDict, Field

from imbalance.agents.base import EpisodeLimit
from imbalance.agents.llm.prompt import TaskBrief, task_prompt
from imbalance.config.constraints import short_repr
from imbalance.config.schema import Config, ServeConfig
from imbalance.env.reward import config_reward
from imbalance.env.tools import TOOLS
from imbalance.errors import UsageError
from imbalance.experiment.build import build_episode
from imbalance.experiment.episode import RecordingToolbox, conclude
from imbalance.experiment.runner import EpisodeRecorder, default_choices
from imbalance.experiment.sessions import SessionPool
from imbalance.experiment.task_api import TaskAPI, row_config, selected_row

log = logging.getLogger("imbalance")
CLIENT_AGENT = "client"  # the agent tag of a served episode: whoever drives the session
TOOL_SCHEMAS = [{"name": s.name, "description": s.description, "parameters": s.json_schema(), "paid": s.paid} for s in TOOLS]
SEED_RANGE = next(f for f in dataclasses.fields(Config) if f.name == "seed").metadata["range"]
NOT_SERVED = ("/reset", "/step", "/state", "/mcp")  # why: the module's docstring, docs/serving.md
MAX_EPISODE_ID_CHARS = 200


class SessionClosed(RuntimeError):
    """A reset on a socket whose session was closed; the client must open a new connection."""


class ToolAction(Action):
    """{"tool": NAME, "arguments": {...}}; anything else is accepted here and becomes an
    invalid tool call in the environment, never a server error."""

    model_config = ConfigDict(extra="allow")
    tool: Any = None
    arguments: Any = None


class ToolObservation(Observation):
    output: dict[str, Any] = Field(default_factory=dict, description="the tool result (after reset: the task summary)")
    prompt: str | None = Field(default=None, description="after reset: the task as the LLM agents get it")
    tools: list[dict[str, Any]] | None = Field(default=None, description="after reset: every tool's name, description, JSON schema and cost")
    info: dict[str, Any] = Field(default_factory=dict, description="the call's cost and validity; at submission the grade")


class EpisodeState(State):
    tau: float | None = None
    steps_used: int = 0
    max_steps: int = 0
    tool_calls: int = 0
    done: bool = False
    run_id: str | None = None
    task_id: str | None = None


class Server:
    """What every session shares: the configuration, the worker pool, the store."""

    def __init__(self, config: ServeConfig, tracking_uri: str, *, token: str | None = None):
        self.config, self.tracking_uri, self.token = config, tracking_uri, token
        self._live: set[ServedEpisode] = set()  # sessions with an unfinished episode
        self._live_lock = threading.Lock()
        if config.mlflow.enabled:  # MLflow's import and the store's set-up once, not in the first sessions
            from imbalance.tracking.episode_run import EpisodeRun

            EpisodeRun(tracking_uri, config.mlflow.experiment_name)
        self.pool = SessionPool(config.serve.cpu_workers)

    def app(self) -> Any:
        # create_fastapi_app, not create_app: create_app mounts a Gradio playground when
        # ENABLE_WEB_INTERFACE is set, whose own reset/step routes no session limit counts.
        from openenv.core.env_server.http_server import create_fastapi_app

        serve = self.config.serve
        concurrency = ConcurrencyConfig(max_concurrent_envs=serve.max_sessions, session_timeout=serve.idle_timeout_s)
        app = create_fastapi_app(lambda: ServedEpisode(self), ToolAction, ToolObservation, concurrency_config=concurrency, env_name="imbalance")
        app.router.routes[:] = [route for route in app.router.routes if getattr(route, "path", None) not in NOT_SERVED]

        @app.post("/mcp")
        async def no_mcp() -> dict:  # `openenv validate` expects a JSON-RPC answer here
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32601, "message": "imbalance has no MCP tools; play over the /ws WebSocket"}}

        return app if self.token is None else RequireToken(app, self.token)

    def opened(self, session: ServedEpisode) -> None:
        with self._live_lock:
            self._live.add(session)

    def ended(self, session: ServedEpisode) -> None:
        with self._live_lock:
            self._live.discard(session)

    def close(self) -> None:
        """Every episode still open is ended (its run KILLED) before the workers stop."""
        with self._live_lock:
            live = list(self._live)
        for session in live:
            try:
                session.close()
            except Exception as exc:  # one store error must not leave the other runs RUNNING
                log.warning("could not end a session's run at shutdown: %s", exc)
        self.pool.close()


class RequireToken:
    """ASGI middleware: every HTTP request and WebSocket handshake must carry
    `Authorization: Bearer <token>`; others get 401 before any route (or session) sees them."""

    def __init__(self, app: Any, token: str):
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": "unauthorized: send the server's token as `Authorization: Bearer <token>`"}).encode()
        headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"), (b"content-length", str(len(body)).encode())]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:  # a server without the extension answers the refused handshake with 403
            await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})

    def _authorized(self, scope: dict) -> bool:
        given = [value for name, value in scope.get("headers", []) if name == b"authorization"]
        return len(given) == 1 and hmac.compare_digest(given[0], self._expected)


class ServedEpisode(TaskAPI, Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, server: Server):
        super().__init__()
        self.server = server
        self._state = EpisodeState()
        self._episode: _Episode | None = None
        self._closed = False
        self._lock = threading.Lock()  # the reaper and the shutdown close from other threads than the steps

    def reset(self, seed: int | None = None, episode_id: str | None = None, split: str | None = None, index: int | None = None,
              task_id: str | None = None) -> ToolObservation:
        base = self.server.config
        seed = _checked_seed(seed, None)
        if episode_id is not None and not (isinstance(episode_id, str) and len(episode_id) <= MAX_EPISODE_ID_CHARS):
            raise ValueError(f"reset: episode_id must be a string of at most {MAX_EPISODE_ID_CHARS} characters; got {short_repr(episode_id, 60)}")
        with self._lock:
            if self._closed:
                raise SessionClosed("this session was closed (idle longer than serve.idle_timeout_s, or the server is stopping); open a new connection")
            self._end("a new episode was started in the session before this one was submitted")
            try:
                row = selected_row(split, index, task_id)
                if row is not None and seed is not None and seed != int(row["seed"]):
                    raise UsageError(f"task {row['task_id']} fixes seed ({row['seed']}); drop seed or the task")
            except UsageError as exc:  # the client named a task wrongly: its error, not the server's
                self._state = EpisodeState()
                return ToolObservation(output={"error": "bad_task", "message": str(exc)}, reward=0.0)
            config = row_config(base, row) if row is not None else dataclasses.replace(base, seed=base.seed if seed is None else seed)
            self._episode = _Episode(config, self.server)
            self.server.opened(self)
            return self._started(config, episode_id)

    def _started(self, config: ServeConfig, episode_id: str | None) -> ToolObservation:
        self._state = EpisodeState(episode_id=episode_id or str(uuid.uuid4()), tau=config.tau, max_steps=config.budget.max_steps,
                                   run_id=self._episode.recorder.run.run_id, task_id=config.task_id)
        summary, _ = self._episode.env.reset()
        return ToolObservation(output=summary, prompt=self._episode.prompt, tools=TOOL_SCHEMAS)

    def step(self, action: ToolAction, timeout_s: float | None = None, **kwargs: Any) -> ToolObservation:
        with self._lock:
            return self._step(action)

    def _step(self, action: ToolAction) -> ToolObservation:
        if self._episode is None:
            if self._closed:
                why = "the session was closed (idle longer than serve.idle_timeout_s, or the server is stopping); open a new connection"
            elif self._state.done:
                why = "the answer was submitted and graded; call reset() for a new episode"
            else:
                why = "no episode yet: call reset() first"
            return ToolObservation(output={"error": "no_episode", "message": why}, done=self._closed or self._state.done, reward=0.0)
        observation = self._episode.step(action)
        self._state.step_count += 1
        self._state.steps_used = self._episode.env.state.steps_used
        self._state.tool_calls = len(self._episode.toolbox.records)
        self._state.done = observation.done
        if observation.done:  # graded and recorded: free the worker's copy now
            self._episode.env.close()
            self._episode = None
            self.server.ended(self)
        return observation

    @property
    def state(self) -> EpisodeState:
        return self._state

    def close(self) -> None:
        """The session ended: idle timeout, disconnect or shutdown. For good: see reset."""
        with self._lock:
            self._closed = True
            self._end("the session ended before the answer was submitted (idle timeout, disconnect or shutdown)")

    def _end(self, why: str) -> None:
        if self._episode is not None:
            episode, self._episode = self._episode, None
            try:
                episode.abort(why)
            finally:
                self.server.ended(self)


def _checked_seed(seed: Any, default: int | None) -> int | None:
    """The schema's range holds for a client's seed as for `seed=` on the command line."""
    if seed is None:
        return default
    if isinstance(seed, bool) or not isinstance(seed, int) or seed not in SEED_RANGE:
        raise ValueError(f"reset: seed must be an integer in {SEED_RANGE}; got {short_repr(seed, 60)}")
    return seed


class _Episode:
    """One episode of a session: the environment on the pool, its recorder and toolbox."""

    def __init__(self, config: ServeConfig, server: Server):
        choices = {**default_choices(config), "agent": CLIENT_AGENT}
        self.setup = build_episode(config, tracking_uri=server.tracking_uri, pool=server.pool)
        self.env = self.setup.env
        try:
            self.recorder = EpisodeRecorder(config, choices, tracking_uri=server.tracking_uri, console="silent")
        except BaseException:
            self.env.close()
            raise
        self.toolbox = RecordingToolbox(self.env, self.recorder.on_call)
        self.prompt = task_prompt(TaskBrief(tau=config.tau, max_steps=config.budget.max_steps, conv_steps=config.budget.conv_steps,
                                            source=self.env.description), TOOLS)
        self.started = time.perf_counter()
        self.result: Any = None

    def step(self, action: ToolAction) -> ToolObservation:
        limit = None
        try:
            result = self.toolbox.call(action.tool, action.arguments)
            info = {"paid": result.paid, "charged": result.charged, "invalid": result.invalid,
                    "steps_used": self.env.state.steps_used, "remaining": max(self.env.budget.max_steps - self.env.state.steps_used, 0)}
            output = result.output
        except EpisodeLimit as exc:
            limit, info, output = exc.limit, {"limit": exc.limit}, {"error": "limit", "message": str(exc)}
        if not self.env.done and limit is None:
            return ToolObservation(output=output, info=info, reward=0.0)
        self.result = conclude(self.env, self.toolbox.records, self.started, limit=limit)
        summary = self.recorder.finish(self.result, self.env, self.setup.data_seconds)
        grade = self.result.grade
        info.update(test_f1=grade.test_f1, passed=grade.passed, tau=self.recorder.config.tau,
                    termination_reason=self.result.termination_reason, run_id=summary["run_id"])
        return ToolObservation(output=output, info=info, reward=config_reward(self.recorder.config, grade), done=True)

    def abort(self, why: str) -> None:
        try:
            self.recorder.abort(KeyboardInterrupt(), why)
        finally:
            self.env.close()
