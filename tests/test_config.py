"""Every option of every group composes; ranges are enforced with messages that name the key."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from imbalance.config import GROUP_SCHEMAS, Config, check, to_objects
from imbalance.errors import UsageError
from tests.conftest import CONF, DEFAULT_TAU, compose_cfg


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", sorted(GROUP_SCHEMAS))
def test_every_option_of_every_group_composes_and_checks(group):
    options = group_options(group)
    assert options, f"conf/{group} has no options"
    for option in options:
        cfg = compose_cfg(f"{group}={option}")
        config = to_objects(cfg)
        node = getattr(config, group)
        assert type(node) in GROUP_SCHEMAS[group].values(), (group, option, type(node))


def test_defaults_are_the_documented_ones():
    config = to_objects(compose_cfg())
    assert config.tau == DEFAULT_TAU == Config().tau
    assert (config.source.name, config.model.name, config.agent.name) == ("synthetic", "mlp", "heuristic")
    assert config.mlflow.tracking_uri is None and config.mlflow.experiment_name == "imbalance"


def test_original_task_preset_has_the_published_shape():
    s = to_objects(compose_cfg("source=synthetic_original")).source
    assert (s.n_features, s.separation, s.minority_frac, s.n_train, s.n_val, s.n_test) == (4, 1.2, 0.03, 1200, 300, 300)


def test_default_synthetic_task_has_enough_positives_to_grade():
    s = to_objects(compose_cfg()).source
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
        to_objects(compose_cfg(override))
    message = str(err.value)
    assert message.startswith(f"{key} must be in"), message
    assert f"e.g. {key}=" in message


def test_wrong_types_are_rejected_by_hydra_at_composition():
    with pytest.raises(ConfigCompositionException):
        compose_cfg("tau=abc")
    with pytest.raises(ConfigCompositionException):
        compose_cfg("source.n_train=many")


def test_check_works_without_hydra():
    config = Config()
    config.tau = 2.0
    with pytest.raises(UsageError, match="tau must be in"):
        check(config)
