"""The environment behind an OpenEnv server: one WebSocket session = one episode.

Built on openenv's server pieces (0.10; openenv-core 0.3's import path) (`create_app`: sessions over `/ws`, the limit on live
sessions, the idle reaper). Each session's `ServedEpisode` is an OpenEnv `Environment`:

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
session ends before submission (idle timeout, disconnect, shutdown).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from typing import Any

from openenv.core.env_server import Action, ConcurrencyConfig, Environment, Observation, State, create_app
from pydantic import ConfigDict, Field

from imbalance.agents.base import EpisodeLimit
from imbalance.agents.llm.prompt import TaskBrief, task_prompt
from imbalance.config.schema import ServeConfig
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

    def __init__(self, config: ServeConfig, tracking_uri: str):
        self.config, self.tracking_uri = config, tracking_uri
        if config.mlflow.enabled:  # MLflow's import and the store's set-up once, not in the first sessions
            from imbalance.tracking.episode_run import EpisodeRun

            EpisodeRun(tracking_uri, config.mlflow.experiment_name)
        self.pool = SessionPool(config.serve.cpu_workers)

    def app(self) -> Any:
        serve = self.config.serve
        concurrency = ConcurrencyConfig(max_concurrent_envs=serve.max_sessions, session_timeout=serve.idle_timeout_s)
        return create_app(lambda: ServedEpisode(self), ToolAction, ToolObservation, env_name="imbalance", concurrency_config=concurrency)

    def close(self) -> None:
        self.pool.close()


class ServedEpisode(TaskAPI, Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, server: Server):
        super().__init__()
        self.server = server
        self._state = EpisodeState()
        self._episode: _Episode | None = None
        self._closed = False

    def reset(self, seed: int | None = None, episode_id: str | None = None, split: str | None = None, index: int | None = None,
              task_id: str | None = None) -> ToolObservation:
        self._end("a new episode was started in the session before this one was submitted")
        base = self.server.config
        try:
            row = selected_row(split, index, task_id)
            if row is not None and seed is not None and int(seed) != int(row["seed"]):
                raise UsageError(f"task {row['task_id']} fixes seed ({row['seed']}); drop seed or the task")
        except UsageError as exc:  # the client named a task wrongly: its error, not the server's
            self._state = EpisodeState()
            return ToolObservation(output={"error": "bad_task", "message": str(exc)}, reward=0.0)
        config = row_config(base, row) if row is not None else dataclasses.replace(base, seed=base.seed if seed is None else int(seed))
        self._episode = _Episode(config, self.server)
        self._state = EpisodeState(episode_id=episode_id or str(uuid.uuid4()), tau=config.tau, max_steps=config.budget.max_steps,
                                   run_id=self._episode.recorder.run.run_id, task_id=config.task_id)
        summary, _ = self._episode.env.reset()
        return ToolObservation(output=summary, prompt=self._episode.prompt, tools=TOOL_SCHEMAS)

    def step(self, action: ToolAction, timeout_s: float | None = None, **kwargs: Any) -> ToolObservation:
        if self._episode is None:
            if self._closed:
                why = "the session was closed (idle too long); open a new session"
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
        return observation

    @property
    def state(self) -> EpisodeState:
        return self._state

    def close(self) -> None:
        """The session ended: idle timeout, disconnect or shutdown."""
        self._end("the session ended before the answer was submitted (idle timeout, disconnect or shutdown)")
        self._closed = True

    def _end(self, why: str) -> None:
        if self._episode is not None:
            self._episode.abort(why)
            self._episode = None


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
