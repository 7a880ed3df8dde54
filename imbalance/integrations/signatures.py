"""A ToolSpec as a typed Python callable, for frameworks that read tools off functions.

TRL turns an environment's public methods into tool schemas with transformers'
`get_json_schema` (signature, type hints, and a Google-style docstring with an `Args:` line
for every parameter); verifiers' `add_tool` reads a function's signature the same way. The
callables made here carry all three, generated from the one catalogue (env/tools.py), and
forward whatever arguments arrive to the environment, which validates them: a bad argument
becomes the same free, invalid-call result it is under `python -m imbalance.run`.
JSON Schema ranges have no Python type, so each parameter's description states its range.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from imbalance.env.tools import Param, ToolSpec

PYTHON_TYPES = {"number": float, "integer": int}


def param_description(p: Param) -> str:
    return f"{p.description}, in {p.range}"


def docstring(spec: ToolSpec) -> str:
    """Google style: the tool's description, then `Args:` (TRL refuses a parameter without one)."""
    text = spec.description
    if spec.params:
        text += "\n\nArgs:\n" + "\n".join(f"    {p.name}: {param_description(p)}" for p in spec.params)
    return text + "\n\nReturns:\n    The tool result as JSON text.\n"


def annotation(p: Param) -> Any:
    kind = PYTHON_TYPES[p.kind]
    return kind if p.required else kind | None


def signature(spec: ToolSpec, leading: tuple[inspect.Parameter, ...] = ()) -> inspect.Signature:
    """`leading` parameters (self, a hidden episode), then the tool's keyword-only parameters."""
    params = [
        inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation(p), default=inspect.Parameter.empty if p.required else None)
        for p in spec.params
    ]
    return inspect.Signature([*leading, *params], return_annotation=str)


def as_tool_function(spec: ToolSpec, body: Callable[..., Any], leading: tuple[inspect.Parameter, ...] = ()) -> Callable[..., Any]:
    """`body(*leading_values, **arguments)` dressed as the typed tool `spec.name`. Optional
    parameters sent as null are dropped: the schema these signatures give marks them nullable."""
    optional = {p.name for p in spec.params if not p.required}

    def strip_nulls(arguments: dict) -> dict:
        return {k: v for k, v in arguments.items() if not (k in optional and v is None)}

    if inspect.iscoroutinefunction(body):
        async def tool(*args: Any, **arguments: Any) -> Any:
            return await body(*args, **strip_nulls(arguments))
    else:
        def tool(*args: Any, **arguments: Any) -> Any:
            return body(*args, **strip_nulls(arguments))

    tool.__name__ = tool.__qualname__ = spec.name
    tool.__doc__ = docstring(spec)
    tool.__signature__ = signature(spec, leading)  # type: ignore[attr-defined]
    tool.__annotations__ = {**{p.name: p.annotation for p in leading if p.annotation is not inspect.Parameter.empty},
                            **{p.name: annotation(p) for p in spec.params}, "return": str}
    return tool
