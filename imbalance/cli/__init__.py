"""The command lines: the only place that reads argv, prints `Error:` lines and picks exit codes.

    python -m imbalance.run        cli/run.py        one episode, or a sweep with -m
    python -m imbalance.report     cli/report.py     pass rates and plots from MLflow
    python -m imbalance.calibrate  cli/calibrate.py  where agents stand on a task; the tau for a pass rate
    python scripts/rerun.py        cli/rerun.py      rerun a run from its saved configuration

The modules `imbalance/run.py`, `report.py` and `calibrate.py` only make `python -m` find these.
"""
