"""The config groups and the schema of each option: the one place that names them.

Code that needs a group's options (the sweep checks, rerun, --help, the report's default
columns) reads them here; code that acts on an option dispatches on its schema's type.
"""

from __future__ import annotations

from imbalance.config.schema import (
    AnthropicAgent,
    BenchmarkSource,
    Budget,
    Config,
    CsvSource,
    HeuristicAgent,
    KaggleSource,
    LogregModel,
    MixtureSource,
    MlpModel,
    NaiveAgent,
    OpenAIAgent,
    RandomAgent,
    ReplayAgent,
    ServeConfig,
    SyntheticSource,
)

# group -> schema name (the `name` field of a composed group) -> schema class. An option YAML
# under conf/<group>/ names one of these; several options may share a schema
# (source=synthetic_original is the synthetic schema with other sizes).
GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "source": {"synthetic": SyntheticSource, "kaggle": KaggleSource, "csv": CsvSource, "benchmark": BenchmarkSource, "mixture": MixtureSource},
    "model": {"logreg": LogregModel, "mlp": MlpModel},
    "budget": {"default": Budget},
    "agent": {
        "heuristic": HeuristicAgent,
        "random": RandomAgent,
        "naive": NaiveAgent,
        "anthropic": AnthropicAgent,
        "openai": OpenAIAgent,
        "replay": ReplayAgent,
    },
}
GROUPS: tuple[str, ...] = tuple(GROUP_SCHEMAS)


def register_schemas() -> None:
    """Make the schemas known to Hydra (option YAMLs name them in their defaults list)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="config_schema", node=Config)
    store.store(name="serve_config_schema", node=ServeConfig)
    # Under schema/<group>, not <group>: otherwise the schemas would show up as options
    # of the group (`source=glob(*)` would sweep them).
    for group, options in GROUP_SCHEMAS.items():
        for option, schema in options.items():
            store.store(group=f"schema/{group}", name=option, node=schema)
