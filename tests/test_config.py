"""Every option of every group composes; ranges are enforced with messages that name the key."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from imbalance.config import GROUP_SCHEMAS, Config, HeuristicAgent, MlpModel, SyntheticSource, check
from imbalance.errors import UsageError
from tests.helpers import CONF, DEFAULT_TAU, compose, compose_config


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", sorted(GROUP_SCHEMAS))
def test_every_option_of_every_group_composes_and_checks(group):
    options = group_options(group)
    assert options, f"conf/{group} has no options"
    for option in options:
        config = compose_config([f"{group}={option}"])
        node = getattr(config, group)
        assert type(node) in GROUP_SCHEMAS[group].values(), (group, option, type(node))


def test_defaults_are_the_schemas():
    """The YAML options set nothing the schema already says: the composed default is the schema's."""
    config = compose_config()
    assert config == Config(source=SyntheticSource(), model=MlpModel(), agent=HeuristicAgent())
    assert config.tau == DEFAULT_TAU
    assert (config.source.name, config.model.name, config.agent.name) == ("synthetic", "mlp", "heuristic")
    assert config.mlflow.tracking_uri is None and config.mlflow.experiment_name == "imbalance"


def test_original_task_preset_has_the_published_shape():
    s = compose_config(["source=synthetic_original"]).source
    assert (s.n_features, s.separation, s.minority_frac, s.n_train, s.n_val, s.n_test) == (4, 1.2, 0.03, 1200, 300, 300)


def test_default_synthetic_task_has_enough_positives_to_grade():
    s = compose_config().source
    assert s.n_val * s.minority_frac >= 60 and s.n_test * s.minority_frac >= 60


@pytest.mark.parametrize(
    "override, key",
    [
        ("tau=1.5", "tau"),
        ("tau=-0.1", "tau"),
        ("source.minority_frac=0.7", "source.minority_frac"),
        ("source.minority_frac=0", "source.minority_frac"),
        ("budget.max_steps=-1", "budget.max_steps"),
        ("model.lr=0", "model.lr"),
        ("model.hidden=[64,0]", "model.hidden"),
        ("seed=-3", "seed"),
    ],
)
def test_out_of_range_values_name_the_key_and_a_fix(override, key):
    with pytest.raises(UsageError) as err:
        compose_config([override])
    message = str(err.value)
    assert message.startswith(f"{key} must be in"), message
    assert f"e.g. {key}=" in message


def test_wrong_types_are_rejected_by_hydra_at_composition():
    with pytest.raises(ConfigCompositionException):
        compose(["tau=abc"])
    with pytest.raises(ConfigCompositionException):
        compose(["source.n_train=many"])


def test_check_works_without_hydra():
    config = Config()
    config.tau = 2.0
    with pytest.raises(UsageError, match="tau must be in"):
        check(config)


def test_threads_compose_at_once():
    # Hydra keeps its composer in a process-wide singleton; trainers (Inspect's epochs,
    # verifiers' rollouts) build episodes in threads, and two initialisations at once
    # raised "GlobalHydra is already initialized" or cleared one another mid-compose.
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    start = Barrier(6)

    def seeded(seed: int):
        start.wait()
        return [compose_config([f"seed={seed}"]).seed for _ in range(3)]

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(seeded, range(6))) == [[seed] * 3 for seed in range(6)]
