"""One task-set episode driven from outside: the piece every trainer integration shares.

`TaskEpisode(row, overrides)` builds the row's episode with build_episode (the one wiring
`python -m imbalance.run` uses), resets it, and plays each tool call through the
RecordingToolbox. It answers with the text a chat model reads (the OpenAI backend's format),
and `finish()` submits for the agent when it stopped without submitting, as the runner does.
So a tool sequence gets the same records, TEST F1 and grade here as under imbalance.run.

Environment work runs under one process-wide lock: model initialisation seeds torch's
global generator and training sets torch's global thread count, so two episodes stepping
at once in threads (verifiers and Inspect run rollouts concurrently) would disturb each
other's numbers. Model calls still overlap; only the (short) tool calls queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from imbalance.agents.base import EpisodeLimit
from imbalance.agents.llm.conversation import NOT_EXECUTED, result_content
from imbalance.agents.llm.openai_api import tool_message
from imbalance.agents.llm.prompt import SYSTEM_PROMPT, TaskBrief, budget_reminder, task_prompt
from imbalance.config.schema import Config
from imbalance.data import describe_source, load_splits
from imbalance.env.tools import TOOLS
from imbalance.experiment.episode import RecordingToolbox
from imbalance.tasks import apply_row, task_config, task_fields

ENV_LOCK = threading.Lock()
__all__ = ["ENV_LOCK", "NOT_EXECUTED", "TaskEpisode", "prompt_messages", "row_prompts"]


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


class TaskEpisode:
    """One episode of a task-set row; `call` plays a tool call, `finish` grades."""

    def __init__(self, row: Mapping[str, Any], overrides: Sequence[str] = ()):
        from imbalance.experiment.build import build_episode

        self.row = task_fields(row)  # a task-set id's own row (a forged field is refused), or a custom row
        self.config = task_config(self.row, overrides)
        with ENV_LOCK:
            setup = build_episode(self.config)
            setup.env.reset()
        self._env = setup.env  # private, as in RecordingToolbox: the grader inside holds TEST
        self.toolbox = RecordingToolbox(self._env)
        self.limit: str | None = None
        self.outcome: dict[str, Any] | None = None

    @classmethod
    async def start(cls, row: Mapping[str, Any], overrides: Sequence[str] = ()) -> TaskEpisode:
        """Built in a worker thread, so an event loop keeps serving other rollouts meanwhile."""
        return await asyncio.to_thread(cls, row, overrides)

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
        with ENV_LOCK:
            if self.limit is not None:
                output: dict = {"error": "episode_over", "message": f"the episode ended at its {self.limit} limit; the current model was submitted"}
                return tool_message(result_content(output), True)
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
        with ENV_LOCK:
            if error is None and not env.done:
                env.submit(auto=True)
        grade = env.state.grade if error is None else None
        if grade is None:
            reason = "error"
        else:
            reason = "auto_submitted" if env.state.auto_submitted else "submitted"
        self.outcome = {
            "task_id": self.row["task_id"],  # None for a custom task, never a task-set id
            "custom_task": self.row["task_id"] is None,
            "termination_reason": reason,
            "test_f1": grade.test_f1 if grade else None,
            "passed": bool(grade.passed) if grade else False,
            "reward": env.reward() if grade else 0.0,
            "reward_mode": self.config.reward,
            "margin": grade.test_f1 - self.config.tau if grade else None,
            "baseline_test_f1": grade.baseline_test_f1 if grade else None,
            "steps_used": env.state.steps_used,
            "tool_calls": len(self.records),
            "invalid_tool_calls": sum(1 for r in self.records if r["invalid"]),
            "limit": self.limit,
            "error": error,
        }
        return self.outcome

    async def afinish(self, error: str | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self.finish, error)
