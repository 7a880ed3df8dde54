"""The configuration: typed schemas (schema.py), the groups and their options (registry.py),
checks before any work (checks.py), and composing from conf/ outside the CLI (compose.py).

Lowest layer with `errors` and `seeding`: it imports nothing else of the project.
"""

from imbalance.config.checks import check, to_objects
from imbalance.config.registry import GROUP_SCHEMAS, GROUPS, register_schemas
from imbalance.config.schema import (
    AnthropicAgent,
    Budget,
    Config,
    CsvSource,
    HeuristicAgent,
    KaggleSource,
    LLMAgent,
    LogregModel,
    MlflowSettings,
    MlpModel,
    OpenAIAgent,
    RandomAgent,
    ReplayAgent,
    SyntheticSource,
)

__all__ = [
    "GROUPS", "GROUP_SCHEMAS", "AnthropicAgent", "Budget", "Config", "CsvSource", "HeuristicAgent", "KaggleSource",
    "LLMAgent", "LogregModel", "MlflowSettings", "MlpModel", "OpenAIAgent", "RandomAgent", "ReplayAgent",
    "SyntheticSource", "check", "register_schemas", "to_objects",
]
