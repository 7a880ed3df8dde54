"""A versioned task set: task instances as rows, for trainers and evaluations.

    from imbalance.tasks import load_taskset, task_config
    rows = load_taskset("lite")                 # or "train", "eval"; version=None = the current one
    config = task_config(rows[0], ["model=logreg"])   # the Config imbalance.run would play

Rows are plain dicts (task_id, version, seed, source, source_settings, tau, max_steps,
conv_steps, oracle_f1). The same row always gives the same data split, the same hidden
TEST split and the same first observation (imbalance.experiment.determinism checks it).
`python -m imbalance.run task_id=v1-eval-0003` plays one row from the command line.

Just above config in the layers: it composes configurations and knows nothing of episodes.
"""

from imbalance.tasks.configs import CUSTOM_VERSION, ROW_CONFIG_KEYS, apply_row, apply_task, check_plays_its_task, checked_row, row_mismatches, task_config, task_fields
from imbalance.tasks.taskset import CURRENT_VERSION, ROW_KEYS, RULES, SPLITS, load_taskset, task_row

__all__ = [
    "CURRENT_VERSION", "CUSTOM_VERSION", "ROW_CONFIG_KEYS", "ROW_KEYS", "RULES", "SPLITS", "apply_row", "apply_task", "check_plays_its_task", "checked_row",
    "load_taskset", "row_mismatches", "task_config", "task_fields", "task_row",
]
