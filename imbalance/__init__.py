"""imbalance: an RL-style environment where an agent fights extreme class imbalance.

Kept free of heavy imports: `python -m imbalance.run --help` must not load torch or mlflow.
"""

__version__ = "0.1.0"
