"""Declarative numeric ranges, written once and used by config checks and tool schemas.

An `Interval` knows how to test a value, how to describe itself to a human ("(0, 0.5]")
and how to express itself in JSON Schema for the LLM tool definitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    @classmethod
    def parse(cls, text: str) -> Interval:
        """'[0, 1]', '(0, 0.5]', '[1, inf)' -> Interval."""
        text = text.strip()
        if text[0] not in "[(" or text[-1] not in "])":
            raise ValueError(f"interval must look like '[a, b)'; got {text!r}")
        low_s, high_s = (part.strip() for part in text[1:-1].split(","))
        low = None if low_s in ("-inf", "") else float(low_s)
        high = None if high_s in ("inf", "") else float(high_s)
        return cls(low, high, text[0] == "(", text[-1] == ")")

    def __contains__(self, value: float) -> bool:
        # Only floats can be inf/NaN; math.isfinite would overflow on an int beyond float range,
        # which the exact int/float comparisons below handle correctly.
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True

    def __str__(self) -> str:
        low = "-inf" if self.low is None else _num(self.low)
        high = "inf" if self.high is None else _num(self.high)
        return f"{'(' if self.low_open or self.low is None else '['}{low}, {high}{')' if self.high_open or self.high is None else ']'}"

    def json_schema(self) -> dict:
        schema: dict = {}
        if self.low is not None:
            schema["exclusiveMinimum" if self.low_open else "minimum"] = _num_json(self.low)
        if self.high is not None:
            schema["exclusiveMaximum" if self.high_open else "maximum"] = _num_json(self.high)
        return schema


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def _num_json(x: float) -> float | int:
    return int(x) if float(x).is_integer() and abs(x) < 1e15 else x


def short_repr(value: object, limit: int = 60) -> str:
    """repr() cut to `limit` characters, so a 1 MB argument never floods a message."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    return text if len(text) <= limit else f"{text[:limit]}...<{len(text) - limit} more chars>"
