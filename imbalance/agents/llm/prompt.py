"""The prompt, built from the configuration and the single tool catalogue."""

from __future__ import annotations

from dataclasses import dataclass, field

from imbalance.env.tools import ToolSpec, format_actions

SYSTEM_PROMPT = (
    "You are a careful machine-learning engineer. You improve a binary classifier on heavily "
    "imbalanced data by calling the tools you are given, one decision at a time. You never see "
    "the data directly; tool results are your only observations. Think briefly, then act."
)


@dataclass(frozen=True)
class TaskBrief:
    """What the prompt may say about the task: the configuration, never the data."""

    tau: float
    max_steps: int
    conv_steps: int
    source: str  # the data-source clause
    history: list[list[dict]] = field(default_factory=list)  # paid-action sets of earlier episodes


def task_prompt(brief: TaskBrief, specs: tuple[ToolSpec, ...]) -> str:
    paid = [s for s in specs if s.paid]
    free = [s for s in specs if not s.paid]
    lines = [
        f"Problem: detect the minority (positive) class in {brief.source}.",
        "",
        f"Success: F1 on a hidden TEST split >= {brief.tau}, using at most {brief.max_steps} paid actions. "
        "Validation metrics are all you can observe; the test split is used once, when you submit.",
        "",
        f"PAID tools (each effective call uses one of your {brief.max_steps} paid actions; repeating an identical "
        "call is free; after a paid change to the data or the loss the model is retrained for free):",
        *(f"- {s.signature()}: {s.description.removeprefix('PAID. ')}" for s in paid),
        "",
        "FREE tools (use them as often as you like):",
        *(f"- {s.signature()}: {s.description.removeprefix('Free. ')}" for s in free),
        "",
        f"You have at most {brief.conv_steps} turns. Start with imbalance_start. Train at least once, "
        "sweep the thresholds, then call submit_answer. If you stop calling tools, the current model is submitted.",
    ]
    if brief.history:
        lines += ["", "Earlier episodes of this experiment used these paid-action sets:"]
        for i, actions in enumerate(brief.history, 1):
            lines.append(f"{i}. {format_actions(actions)}")
        lines.append("Choose a different combination of paid actions this time.")
    return "\n".join(lines)


def budget_reminder(max_steps: int, steps_used: int) -> str:
    """The original task's reminder, added after every turn."""
    remaining = max(max_steps - steps_used, 0)
    return (
        f"You may use up to {max_steps} paid actions; remaining: {remaining} (steps_used={steps_used}). "
        "Free tools: train, eval_on_val, sweep_thresholds."
    )
