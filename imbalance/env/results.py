"""What a tool call and a submission return: plain data, light to import.

The agents, the episode recorder and processes that only relay calls (the concurrent
launcher's parent, the environment server) use these without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The rule that turns a final model into a grade (the TEST split drawn by splitting, F1 at the
# final threshold, pass = F1 >= tau within the budget, the baseline F1). Bump it with any change
# to that rule: runs tagged with different grader versions are not comparable.
GRADER_VERSION = "1"
MAX_RECORDED_STRING = 10_000  # a longer string in a call's arguments is cut in its record


@dataclass(frozen=True)
class ToolResult:
    tool: str
    arguments: Any  # as sent, long strings cut (see `recordable`)
    output: dict  # what the agent sees; {"error": code, "message": ...} on error
    paid: bool  # the tool is a paid one
    charged: bool  # this call consumed a paid step
    invalid: bool  # bad arguments, unknown tool, or a call after submission

    @property
    def is_error(self) -> bool:
        return "error" in self.output


@dataclass(frozen=True)
class Grade:
    test_f1: float
    test_precision: float
    test_recall: float
    threshold: float
    steps_used: int
    passed: bool
    # TEST F1 of the reset model at the starting threshold, the TEST counterpart of baseline_val_f1 (reward=normalized's zero);
    # computed privately at reset, revealed only here, after submission.
    baseline_test_f1: float = float("nan")


@dataclass
class Setup:
    """What the paid actions have configured so far (the no-op checks compare against it)."""

    smote: tuple[float, int, int | None] | None = None
    beta: float | None = None
    focal: tuple[float, float] | None = None
    threshold: float = 0.5


@dataclass
class EpisodeState:
    setup: Setup = field(default_factory=Setup)
    steps_used: int = 0
    tool_calls: int = 0
    invalid_calls: int = 0
    train_rows_used: int = 0  # by the free train() calls (budget.max_train_rows)
    paid_actions: list[dict] = field(default_factory=list)
    grade: Grade | None = None
    auto_submitted: bool = False

    @property
    def done(self) -> bool:
        return self.grade is not None

    def truncated(self, max_tool_calls: int) -> bool:
        """The call limit is reached before a submission: the caller should submit."""
        return not self.done and self.tool_calls >= max_tool_calls
