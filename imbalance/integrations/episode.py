"""One task-set episode driven from outside: the piece every trainer integration shares.

`TaskEpisode(row, overrides)` builds the row's episode with build_episode (the one wiring
`python -m imbalance.run` uses), resets it, and plays each tool call through the
RecordingToolbox. It answers with the text a chat model reads (the OpenAI backend's format),
and `finish()` submits for the agent when it stopped without submitting, as the runner does.
So a tool sequence gets the same records, TEST F1 and grade here as under imbalance.run.

The environment lives on a session pool (experiment/sessions.py: one worker process per
core), the process-wide `rollout_pool()` unless a pool is given. Model initialisation seeds
torch's global generator and training sets torch's global thread count, so two episodes
stepping at once in threads of one process would disturb each other's numbers; a worker runs
one request at a time, so each episode's numbers are those it gets alone, while the rollouts
of a trainer (verifiers and Inspect run them concurrently, TRL in threads) train side by side
on every core. The trainer's process holds no data rows, and the grader (TEST, tau, the
budget) is in a worker, reachable only through the pool's named operations.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from imbalance.agents.base import EpisodeLimit
from imbalance.agents.llm.conversation import NOT_EXECUTED, result_content
from imbalance.agents.llm.openai_api import tool_message
from imbalance.agents.llm.prompt import SYSTEM_PROMPT, TaskBrief, budget_reminder, task_prompt
from imbalance.config.schema import Config
from imbalance.data import describe_source, load_splits
from imbalance.env.reward import config_reward
from imbalance.env.tools import TOOLS
from imbalance.experiment.episode import RecordingToolbox, conclude
from imbalance.tasks import apply_row, task_fields

if TYPE_CHECKING:
    from imbalance.experiment.sessions import SessionPool

__all__ = ["NOT_EXECUTED", "TaskEpisode", "prompt_messages", "rollout_pool", "row_prompts"]
_POOL: tuple[int, SessionPool] | None = None  # (the process that started it, the pool)
_POOL_LOCK = threading.Lock()
TRAINER_AGENT = "trainer"  # the agent tag of a recorded rollout: a model being trained drives it


def rollout_pool() -> SessionPool:
    """The pool every TaskEpisode of this process plays on, started on first use: one worker per
    core (several seconds: each imports torch). A forked child starts its own."""
    global _POOL
    from imbalance.experiment.sessions import SessionPool

    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), SessionPool())
        return _POOL[1]


def prompt_messages(config: Config, description: str) -> list[dict[str, str]]:
    """System and user message of the task, as the LLM agents of imbalance.run send them."""
    brief = TaskBrief(tau=config.tau, max_steps=config.budget.max_steps, conv_steps=config.budget.conv_steps, source=description)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": task_prompt(brief, TOOLS)}]


def row_prompts(rows: Sequence[Mapping[str, Any]], overrides: Sequence[str] = ()) -> list[list[dict[str, str]]]:
    """Each row's prompt messages, without building episodes (conf/ composed once). A source
    whose description depends on its file (kaggle, csv) is loaded once per row to read it."""
    from imbalance.config.compose import compose_config

    base = compose_config(list(overrides))
    out = []
    for row in rows:
        config = apply_row(base, row, explicit=overrides)
        description = describe_source(config.source) or load_splits(config.source, config.seed).description
        out.append(prompt_messages(config, description))
    return out


@functools.lru_cache(maxsize=32)
def _composed(overrides: tuple[str, ...], cwd: str) -> Config:
    from imbalance.config.compose import compose_config

    return compose_config(list(overrides))


def _base_config(overrides: tuple[str, ...]) -> Config:
    """conf/ composed with `overrides`, as task_config composes it, once per process (and
    working directory: relative paths are resolved against it). Composing takes a Hydra
    compose, about 0.2 s of the trainer's one interpreter per rollout; a copy keeps each
    episode's configuration its own."""
    return copy.deepcopy(_composed(overrides, os.getcwd()))


class TaskEpisode:
    """One episode of a task-set row; `call` plays a tool call, `finish` grades.

    `record=True` also makes the episode one MLflow run, as imbalance.run records it (the store
    of the configuration's `mlflow.*`, agent tag `trainer`); a rollout dropped before `finish`
    leaves its run KILLED. Off by default: a GRPO step of 64 rollouts would write 64 runs."""

    def __init__(self, row: Mapping[str, Any], overrides: Sequence[str] = (), *, pool: SessionPool | None = None, record: bool = False):
        from imbalance.experiment.build import build_episode, precheck

        self.row = task_fields(row)  # a task-set id's own row (a forged field is refused), or a custom row
        self.config = apply_row(_base_config(tuple(overrides)), self.row, explicit=overrides)
        tracking_uri = precheck(self.config) if record else None  # the store is checked before any work
        setup = build_episode(self.config, tracking_uri=tracking_uri, pool=pool or rollout_pool())
        self._env = setup.env  # private, as in RecordingToolbox: a handle on the worker's episode
        self._data_seconds = setup.data_seconds
        self._recorder = None
        if record:
            from imbalance.experiment.runner import EpisodeRecorder, default_choices

            choices = {**default_choices(self.config), "agent": TRAINER_AGENT, "source": str(self.row.get("source") or self.config.source.name)}
            try:
                self._recorder = EpisodeRecorder(self.config, choices, tracking_uri=tracking_uri, console="silent")
            except BaseException:
                self._env.close()
                raise
        # An episode dropped before finish() (a rollout abandoned) still frees its worker's copy
        # and ends its run.
        self._release = weakref.finalize(self, _abandon, self._env, self._recorder)
        # At exit the pool goes down whole; a recorded run must still end KILLED, never RUNNING.
        self._release.atexit = record
        self._started = time.perf_counter()  # as play() counts wall_seconds: the reset included
        try:
            self._env.reset()
        except BaseException:
            self._release()
            raise
        self.toolbox = RecordingToolbox(self._env, self._recorder.on_call if self._recorder is not None else None)
        self.limit: str | None = None
        self.outcome: dict[str, Any] | None = None

    @classmethod
    async def start(cls, row: Mapping[str, Any], overrides: Sequence[str] = (), *, pool: SessionPool | None = None,
                    record: bool = False) -> TaskEpisode:
        """Built in a worker thread, so an event loop keeps serving other rollouts meanwhile."""
        return await asyncio.to_thread(cls, row, overrides, pool=pool, record=record)

    @property
    def messages(self) -> list[dict[str, str]]:
        return prompt_messages(self.config, self._env.description)

    @property
    def over(self) -> bool:
        """Submitted (by the agent, or by the runner after a limit): later calls are not played."""
        return self._env.done

    @property
    def submitted(self) -> bool:
        return self._env.done and not self._env.state.auto_submitted

    @property
    def records(self) -> list[dict]:
        return self.toolbox.records

    def reminder(self) -> str:
        """The budget reminder imbalance.run's conversation adds after every turn."""
        return budget_reminder(self.config.budget.max_steps, self._env.state.steps_used)

    def call(self, tool: str, arguments: Any = None) -> str:
        """Play one call; the text the model reads back (errors marked, never raised)."""
        if self.limit is not None:
            output: dict = {"error": "episode_over", "message": f"the episode ended at its {self.limit} limit; the current model was submitted"}
            return tool_message(result_content(output), True)
        if self.outcome is not None:  # finished: the worker's copy is freed, nothing is played or recorded
            return tool_message(result_content({"error": "episode_over", "message": "the episode was graded; start a new one"}), True)
        try:
            result = self.toolbox.call(tool, arguments)
        except EpisodeLimit as exc:  # max_tool_calls: the runner submits, as in play()
            self.limit = exc.limit
            self._env.submit(auto=True)
            output = {"error": "episode_over", "message": f"{exc}: the limit of this episode; the current model was submitted"}
            return tool_message(result_content(output), True)
        return tool_message(result_content(result.output), result.is_error)

    async def acall(self, tool: str, arguments: Any = None) -> str:
        return await asyncio.to_thread(self.call, tool, arguments)

    def finish(self, error: str | None = None) -> dict[str, Any]:
        """Grade once (submitting for the agent if it did not) and return the outcome. With
        `error` (the model API failed), the episode is not graded, like termination_reason=error."""
        if self.outcome is not None:
            return self.outcome
        env = self._env
        try:
            result = conclude(env, self.records, self._started, limit=self.limit, error=error)  # submits, as the runner does
            grade = result.grade
            self.outcome = {
                "task_id": self.row["task_id"],  # None for a custom task, never a task-set id
                "custom_task": self.row["task_id"] is None,
                "termination_reason": result.termination_reason,
                "test_f1": grade.test_f1 if grade else None,
                "passed": bool(grade.passed) if grade else False,
                "reward": config_reward(self.config, grade) if grade else 0.0,
                "reward_mode": self.config.reward,
                "margin": grade.test_f1 - self.config.tau if grade else None,
                "baseline_test_f1": grade.baseline_test_f1 if grade else None,
                "steps_used": result.steps_used,
                "tool_calls": result.tool_calls,
                "invalid_tool_calls": result.invalid_tool_calls,
                "limit": self.limit,
                "error": error,
            }
            if self._recorder is not None:
                self.outcome["run_id"] = self._recorder.finish(result, env, self._data_seconds)["run_id"]
        finally:
            self._release.detach()
            env.close(wait=False)  # graded (or failed): the worker's copy is no longer needed
        return self.outcome

    async def afinish(self, error: str | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self.finish, error)


def _abandon(env: Any, recorder: Any) -> None:
    if recorder is not None:
        try:
            recorder.abort(KeyboardInterrupt(), "the rollout was dropped before it was graded")
        except Exception:  # a finalizer must not raise; the store is the user's to repair (tracking.runs)
            pass
    env.close(wait=False)
