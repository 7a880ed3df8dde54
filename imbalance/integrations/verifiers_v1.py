"""verifiers 0.4 (`verifiers.v1`): the environment id `imbalance`.

    vf-eval imbalance -m MODEL --client.base-url URL --client.api-key-var OPENAI_API_KEY --no-push

verifiers resolves the id with `verifiers.v1.utils.loaders.taskset_class("imbalance")`: it
imports the package `imbalance`, whose `__all__` names the three classes below (loaded on
first access, so `import imbalance` alone never loads verifiers or torch).

- `ImbalanceTaskset`: one task per task-set row (`--env.taskset.split lite|eval|train`,
  `--env.taskset.version`); the task's `id` and `key` are the row's `task_id`, its prompt
  imbalance.run's system and task prompt, its data the row.
- `ImbalanceTask`: builds the row's episode at setup (TaskEpisode, the wiring imbalance.run
  uses), grades it at finalize (submitting for the model if it did not) and scores it: reward
  `reward` = the grade (`pass` or `normalized`, per `--env.taskset.task.overrides`), metrics
  `test_f1`, `passed`, `steps_used`, `tool_calls`, `invalid_tool_calls`, `margin_to_tau`, `submitted`
  (1: the model called submit_answer; 0: termination_reason=auto_submitted).
- `ImbalanceHarness`, the id's default harness: imbalance.run's own OpenAI conversation
  (agents/llm), pointed at the rollout's interception endpoint, so verifiers records every
  model call. Native tool calls with the catalogue's JSON schemas, every call of a turn
  answered, the budget reminder after each turn, at most the row's `conv_steps` turns.
  The episode lives in this process; that is why the tools are not a `vf.Toolset`, whose
  MCP server would run in another process that cannot reach it. A harness from verifiers
  (bash, ...) cannot play these tasks.
- `ImbalanceEnv`: the single-agent env whose agent runs on the `subprocess` runtime by
  default (verifiers' default is a remote sandbox): the harness executes no code, it only
  calls the model and the environment in this process.

An API failure that outlives the retries fails the rollout (no grade), as termination_reason
=error does under imbalance.run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import verifiers.v1 as vf
from pydantic import Field, PrivateAttr
from verifiers.v1.configs.agent import AgentConfig
from verifiers.v1.runtimes import ProgramResult, RuntimeConfig, SubprocessConfig

from imbalance.agents.base import AgentFailure, EpisodeLimit
from imbalance.agents.llm.conversation import Limits, LLMAgent
from imbalance.agents.llm.openai_api import OpenAIBackend
from imbalance.agents.llm.prompt import TaskBrief
from imbalance.config.schema import OpenAIAgent
from imbalance.integrations.episode import TaskEpisode, row_prompts
from imbalance.tasks import load_taskset

__all__ = ["ImbalanceEnv", "ImbalanceHarness", "ImbalanceTaskset"]


class ImbalanceData(vf.TaskData):
    row: dict[str, Any]


class ImbalanceState(vf.State):
    outcome: dict[str, Any] | None = None
    # The live episode: per rollout (a task object serves every rollout of its row), and
    # private, so it never reaches a trace or crosses a process boundary.
    _episode: TaskEpisode | None = PrivateAttr(default=None)


class ImbalanceTaskConfig(vf.TaskConfig):
    overrides: list[str] = Field(default_factory=list)
    """Hydra overrides of what a row leaves open (reward=normalized, model=logreg,
    budget.retrain_epochs=3); one that contradicts the row is refused."""


class ImbalanceTasksetConfig(vf.TasksetConfig):
    split: str = "lite"
    version: str | None = None
    task: ImbalanceTaskConfig = ImbalanceTaskConfig()


class ImbalanceTask(vf.Task[ImbalanceData, ImbalanceState, ImbalanceTaskConfig]):
    @property
    def key(self) -> str:
        return self.data.row["task_id"]

    async def setup(self, trace: vf.Trace) -> None:
        trace.state._episode = await TaskEpisode.start(self.data.row, self.config.overrides)

    async def finalize(self, trace: vf.Trace) -> None:
        episode = trace.state._episode
        if episode is not None:
            trace.state.outcome = await episode.afinish()
            trace.state._episode = None  # the trace outlives the rollout; the datasets need not

    @vf.reward(weight=1.0)
    async def reward(self, trace: vf.Trace) -> float:
        """1.0/0.0 for a pass (reward=pass), or the normalized TEST F1 (reward=normalized)."""
        return float(_outcome(trace)["reward"])

    @vf.metric
    async def grade(self, trace: vf.Trace) -> dict[str, float]:
        o = _outcome(trace)
        return {
            "test_f1": float(o["test_f1"]),
            "passed": float(o["passed"]),
            "steps_used": float(o["steps_used"]),
            "tool_calls": float(o["tool_calls"]),
            "invalid_tool_calls": float(o["invalid_tool_calls"]),
            "margin_to_tau": float(o["margin"]),
            "submitted": float(o["termination_reason"] == "submitted"),  # 0: the runner submitted for the model (auto_submitted)
        }


def _outcome(trace: vf.Trace) -> dict[str, Any]:
    if trace.state.outcome is None:
        raise RuntimeError("the episode was not graded: ImbalanceTask.finalize did not run")
    return trace.state.outcome


class ImbalanceTaskset(vf.Taskset[ImbalanceTask, ImbalanceTasksetConfig]):
    def load(self) -> list[ImbalanceTask]:
        rows = load_taskset(self.config.split, self.config.version)
        overrides = self.config.task.overrides
        return [
            ImbalanceTask(
                ImbalanceData(id=row["task_id"], name=row["task_id"], system_prompt=system["content"], prompt=user["content"], row=row),
                self.config.task,
            )
            for row, (system, user) in zip(rows, row_prompts(rows, overrides))
        ]


class ImbalanceHarnessConfig(vf.HarnessConfig):
    id: str = "imbalance"
    tool_choice: str = "auto"
    """auto, required or none: as agent.tool_choice under imbalance.run (small local models
    rarely call a tool unless it is required; llama.cpp's server refuses required)."""
    max_tokens: int = Field(OpenAIAgent().max_tokens, ge=1)
    """Output tokens per model call."""


class _TaskPromptBackend(OpenAIBackend):
    """The conversation opens with the task's prompt as verifiers hands it over: the row's
    imbalance.run prompt, unless the run replaced the system prompt (`--env.taskset.system-prompt`,
    as GEPA does)."""

    def __init__(self, prompt: tuple[str | None, str | None], **kwargs: Any):
        super().__init__(**kwargs)
        self._system, self._user = prompt

    def begin(self, system: str, user: str, specs):
        return super().begin(self._system if self._system is not None else system, self._user if self._user is not None else user, specs)


class ImbalanceHarness(vf.Harness[ImbalanceHarnessConfig]):
    APPENDS_SYSTEM_PROMPT = True
    EXECUTES_CODE = False
    NEEDS_CONTAINER = False

    def conversation(self, episode: TaskEpisode, data: vf.TaskData, model: str, endpoint: str, secret: str) -> LLMAgent:
        """imbalance.run's OpenAI agent (agents._make_llm_agent's wiring) on the rollout's endpoint."""
        config, defaults = episode.config, OpenAIAgent()
        backend = _TaskPromptBackend(
            self.resolve_text_prompt(data),
            api_key=secret, model=model, base_url=endpoint, max_tokens=self.config.max_tokens, temperature=None, top_p=None,
            max_retries=defaults.max_retries, timeout_s=defaults.timeout_s, seed=config.seed, tool_choice=self.config.tool_choice,
        )
        budget = config.budget
        brief = TaskBrief(tau=config.tau, max_steps=budget.max_steps, conv_steps=budget.conv_steps, source="")  # the prompt is the task's
        limits = Limits(conv_steps=budget.conv_steps, token_budget=defaults.token_budget, wall_clock_s=defaults.wall_clock_s, max_retries=defaults.max_retries)
        return LLMAgent("verifiers", backend, brief, limits, secret=secret)

    async def launch(self, ctx, trace: vf.Trace, runtime, endpoint: str, secret: str, mcp_urls: dict[str, str], data, **kwargs: Any) -> ProgramResult:
        episode = getattr(trace.state, "_episode", None)
        if not isinstance(episode, TaskEpisode):
            raise vf.HarnessError("the imbalance harness plays only the imbalance taskset's tasks")
        agent = self.conversation(episode, data, ctx.model, endpoint, secret)
        try:
            await asyncio.to_thread(agent.run, episode.toolbox)  # its environment is on the rollout pool: threads do not disturb it
        except EpisodeLimit:
            pass  # turns or tool calls used up: finalize submits the current model, as imbalance.run's runner does
        except AgentFailure as exc:
            return ProgramResult(exit_code=1, stdout="", stderr=str(exc))
        return ProgramResult(exit_code=0, stdout="", stderr="")

    async def cleanup(self, trace: vf.Trace, runtime) -> None:
        if isinstance(trace.state, ImbalanceState):
            trace.state._episode = None  # a failed rollout skips finalize


class ImbalanceAgentConfig(AgentConfig):
    runtime: RuntimeConfig = SubprocessConfig()


class ImbalanceEnvConfig(vf.SingleAgentEnvConfig):
    agent: ImbalanceAgentConfig = ImbalanceAgentConfig()


class ImbalanceEnv(vf.SingleAgentEnv, vf.Env[ImbalanceEnvConfig]):
    """SingleAgentEnv (replay and GEPA accept only it), with ImbalanceEnvConfig's defaults."""
