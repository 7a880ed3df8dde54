"""Valid random tool calls within the budget, then submit: the floor every agent must beat."""

from __future__ import annotations

import numpy as np

from imbalance.agents.base import ScriptedAgent, Toolbox, Tracer
from imbalance.env.tools import Param, ToolSpec

MAX_RANDOM_EPOCHS = 10  # keeps random episodes as quick as the heuristic's


class RandomAgent(ScriptedAgent):
    name = "random"

    def __init__(self, *, seed: int, max_calls: int = 12):
        self.rng = np.random.default_rng(seed)
        self.max_calls = max_calls

    def run(self, tools: Toolbox, tracer: Tracer | None = None) -> None:
        task = tools.call("imbalance_start").output
        remaining = int(task.get("max_steps", 0))
        candidates = [s for s in tools.specs if s.name not in ("submit_answer", "imbalance_start")]
        for _ in range(self.max_calls):
            usable = [s for s in candidates if not s.paid or remaining > 0]
            spec = usable[int(self.rng.integers(len(usable)))]
            result = tools.call(spec.name, self._arguments(spec))
            if result.charged:
                remaining -= 1
        tools.call("submit_answer")

    def _arguments(self, spec: ToolSpec) -> dict:
        args = {}
        for p in spec.params:
            if not p.required and self.rng.random() < 0.5:
                continue
            args[p.name] = self._draw(p)
        return args

    def _draw(self, p: Param) -> float | int:
        low = p.range.low if p.range.low is not None else 0.0
        high = p.range.high if p.range.high is not None else low + 1.0
        if p.kind == "integer":
            if p.name == "epochs":
                high = min(high, MAX_RANDOM_EPOCHS)
            return int(self.rng.integers(int(low) + int(p.range.low_open), int(high) + 1 - int(p.range.high_open)))
        # Three decimals, as a person would type them; never onto an open bound.
        value = round(float(self.rng.uniform(low, high)), 3)
        if value not in p.range:
            value = round(low + 0.001, 3) if value <= low else round(high - 0.001, 3)
        return value
