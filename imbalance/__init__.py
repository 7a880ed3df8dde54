"""imbalance: an RL-style environment where an agent fights extreme class imbalance.

Kept free of heavy imports: `python -m imbalance.run --help` must not load torch or mlflow.

The package is also verifiers 0.4's environment id `imbalance`: verifiers' loader imports the
module an id names and takes the classes its `__all__` lists. They load on first access
(imbalance.integrations.verifiers_v1), so only that loader pays for verifiers and torch.
"""

__version__ = "0.1.0"

_VERIFIERS_EXPORTS = ("ImbalanceEnv", "ImbalanceHarness", "ImbalanceTaskset")
__all__ = list(_VERIFIERS_EXPORTS)


def __getattr__(name: str):
    if name in _VERIFIERS_EXPORTS:
        from imbalance.integrations import verifiers_v1

        return getattr(verifiers_v1, name)
    raise AttributeError(f"module 'imbalance' has no attribute {name!r}")
