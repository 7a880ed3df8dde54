"""The tool catalogue: each tool written once, serving every agent backend and the validator.

A `ToolSpec` yields the JSON schema the LLM backends send and validates the arguments an
agent sends back, with messages that say what was received and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from imbalance.config.constraints import Interval, short_repr


class ToolArgumentError(ValueError):
    """Arguments that do not fit the tool's schema; returned to the agent, never raised past the env."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "number" or "integer", as in JSON Schema
    description: str
    range: Interval
    required: bool = True

    def json_schema(self) -> dict:
        return {"type": self.kind, "description": self.description, **self.range.json_schema()}

    def coerce(self, tool: str, value: Any) -> float | int:
        what = f"{tool}: {self.name} must be {'an integer' if self.kind == 'integer' else 'a number'} in {self.range}"
        # bool is an int in Python but never a number in JSON.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ToolArgumentError(f"{what}; got {short_repr(value)} ({type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            raise ToolArgumentError(f"{what}; got {value}")
        if self.kind == "integer":
            if isinstance(value, float) and not value.is_integer():
                raise ToolArgumentError(f"{what}; got {value}")
            value = int(value)
        if value not in self.range:
            raise ToolArgumentError(f"{what}; got {short_repr(value)}")
        try:
            return value if self.kind == "integer" else float(value)
        except OverflowError:  # an int beyond float range, in an unbounded parameter
            raise ToolArgumentError(f"{what}; got {short_repr(value)}") from None


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    params: tuple[Param, ...] = ()
    paid: bool = False

    def json_schema(self) -> dict:
        return {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in self.params},
            "required": [p.name for p in self.params if p.required],
            "additionalProperties": False,
        }

    def validate(self, arguments: Any) -> dict[str, float | int]:
        """Checked, typed arguments; ToolArgumentError names the first problem."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolArgumentError(f"{self.name}: arguments must be a JSON object; got {short_repr(arguments)} ({type(arguments).__name__})")
        known = {p.name for p in self.params}
        unknown = [k for k in arguments if k not in known]
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            raise ToolArgumentError(f"{self.name}: unknown argument {short_repr(unknown[0])}; allowed: {allowed}")
        out: dict[str, float | int] = {}
        for p in self.params:
            if p.name not in arguments:
                if p.required:
                    raise ToolArgumentError(f"{self.name}: missing required argument {p.name!r} ({p.kind} in {p.range})")
                continue
            out[p.name] = p.coerce(self.name, arguments[p.name])
        return out

    def signature(self) -> str:
        """'smote(ratio, k[, seed])' for prompts and terminal output."""
        required = [p.name for p in self.params if p.required]
        optional = [p.name for p in self.params if not p.required]
        inner = ", ".join(required)
        for name in optional:
            inner += f"[, {name}]" if inner else f"[{name}]"
        return f"{self.name}({inner})"


R = Interval.parse
TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "imbalance_start",
        "Return the task summary: class counts of the train and validation splits, the baseline "
        "validation F1, the pass bar tau and the paid-action budget. Free; takes no arguments.",
    ),
    ToolSpec(
        "smote",
        "PAID. Oversample the minority class of the original training rows with SMOTE until it makes up `ratio` "
        "of the training rows, then retrain. The current ratio again changes nothing and is free; a ratio at or below "
        "the original minority fraction restores the original rows (undoes SMOTE).",
        (
            Param("ratio", "number", "target minority fraction of the training set", R("(0, 0.5]")),
            Param("k", "integer", "number of nearest neighbours SMOTE interpolates between", R("[1, 100]")),
            Param("seed", "integer", "seed of SMOTE's sampling (optional)", R("[0, 2147483647]"), required=False),
        ),
        paid=True,
    ),
    ToolSpec(
        "set_class_weights",
        "PAID. Weight the loss per class by the effective number of samples (Cui et al. 2019): "
        "beta=0 weights classes equally, beta near 1 approaches inverse class frequency. Retrains.",
        (Param("beta", "number", "effective-number beta", R("[0, 1]")),),
        paid=True,
    ),
    ToolSpec(
        "use_focal",
        "PAID. Switch to focal loss (Lin et al. 2017) with weight `alpha` on the positive class and "
        "focusing parameter `gamma`; class weights, if set, still apply. Retrains.",
        (
            Param("alpha", "number", "weight of the positive class", R("[0, 1]")),
            Param("gamma", "number", "focusing parameter (0 = cross-entropy)", R("[0, 10]")),
        ),
        paid=True,
    ),
    ToolSpec(
        "set_threshold",
        "PAID. Set the decision threshold on the predicted positive probability.",
        (Param("threshold", "number", "predict positive when P(y=1) >= threshold", R("[0, 1]")),),
        paid=True,
    ),
    ToolSpec(
        "train",
        "Free. Continue training the current model for `epochs` epochs at learning rate `lr` "
        "(default: the model's); the optimizer's state carries over between calls until a paid action "
        "re-initialises the model. Very large data caps the epochs of one call; the result says so. Where the task "
        "limits training (max_train_rows in imbalance_start), calls stop once that many rows were seen.",
        (
            Param("epochs", "integer", "epochs to train", R("[1, 100]")),
            Param("lr", "number", "learning rate for this call", R("(0, 1]"), required=False),
        ),
    ),
    ToolSpec(
        "eval_on_val",
        "Free. Validation F1, precision, recall and PR-AUC of the current model at the current threshold.",
    ),
    ToolSpec(
        "sweep_thresholds",
        "Free. Find the threshold with the best validation F1 and set it. Without `num_points` the "
        "search is exact (every distinct score); with it, an evenly spaced grid on [0, 1].",
        (Param("num_points", "integer", "grid size", R("[2, 10000]"), required=False),),
    ),
    ToolSpec("get_budget", "Free. Paid actions used and remaining, and the paid actions taken so far."),
    ToolSpec(
        "submit_answer",
        "Submit the current model and threshold for grading on the hidden test split. Ends the episode.",
    ),
)

TOOLS_BY_NAME: dict[str, ToolSpec] = {spec.name: spec for spec in TOOLS}


def openai_tools(specs: tuple[ToolSpec, ...] = TOOLS) -> list[dict]:
    """The tools in the chat-completions format: what the OpenAI backend sends and what the
    trajectory export writes as a line's `tools`."""
    return [{"type": "function", "function": {"name": s.name, "description": s.description, "parameters": s.json_schema()}} for s in specs]
PAID_TOOLS: tuple[str, ...] = tuple(spec.name for spec in TOOLS if spec.paid)
FREE_TOOLS: tuple[str, ...] = tuple(spec.name for spec in TOOLS if not spec.paid)


def format_call(tool: str, arguments: Any = None, *, limit: int = 30) -> str:
    """`smote(ratio=0.2, k=5)`: one tool call as people read it (console, prompts, reports).
    Floats show up to 6 significant digits; any other value is cut to `limit` characters."""
    if isinstance(arguments, dict):
        inner = ", ".join(f"{k}={_short_value(v, limit)}" for k, v in arguments.items())
    else:
        inner = "" if arguments is None else short_repr(arguments, limit)
    return f"{tool}({inner})"


def format_actions(actions: list[dict]) -> str:
    """A list of recorded paid actions (`{"tool": ..., **arguments}`) in the order taken, as
    one label: `smote(ratio=0.2, k=5) + set_class_weights(beta=0.99)`; `(none)` when empty."""
    labels = [
        format_call(str(a.get("tool", "?")), {k: v for k, v in a.items() if k != "tool"}) if isinstance(a, dict) else str(a)
        for a in actions
    ]
    return " + ".join(labels) or "(none)"


def _short_value(value: Any, limit: int) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return short_repr(value, limit)  # ints as typed, strings quoted, anything long cut
