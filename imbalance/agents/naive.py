"""A plausible untrained planner: what reading about class imbalance, without looking at the
evidence, suggests. The calibration ladder's rung between random and the expert.

It balances the training set with SMOTE, weights the loss by class, switches to focal loss
(each at its textbook setting, as far as the budget goes), trains a fixed number of epochs,
keeps the threshold at 0.5 and submits. Every step is a reasonable-sounding move; none is
checked against validation, and the threshold, which matters most for F1, is never tuned.
"""

from __future__ import annotations

from imbalance.agents.base import ScriptedAgent, Toolbox, Tracer

PLAN = (
    ("smote", {"ratio": 0.5, "k": 5}),  # balance the classes
    ("set_class_weights", {"beta": 0.999}),  # Cui et al.'s suggested beta
    ("use_focal", {"alpha": 0.25, "gamma": 2.0}),  # Lin et al.'s defaults
)
EPOCHS = 20


class NaiveAgent(ScriptedAgent):
    name = "naive"

    def run(self, tools: Toolbox, tracer: Tracer | None = None) -> None:
        budget = int(tools.call("imbalance_start").output.get("max_steps", 0))
        for tool, arguments in PLAN[:budget]:
            tools.call(tool, arguments)
        tools.call("train", {"epochs": EPOCHS})
        tools.call("submit_answer")
