"""Hydra's private API, used in one module (imbalance/experiment/hydra_private.py): if a Hydra
upgrade changes it, these fail here with the function's name, not deep inside a sweep."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir

from imbalance.config.compose import CONF_DIR, compose
from imbalance.experiment import hydra_private


@pytest.fixture
def hydra_app():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield


def test_the_basic_sweepers_job_list(hydra_app):
    parsed = hydra_private.parse_overrides(["agent=heuristic,random", "seed=range(0,3)", "tau=0.5"])
    jobs = hydra_private.basic_sweep_jobs(parsed)
    assert len(jobs) == 6
    assert jobs[0] == ["agent=heuristic", "seed=0", "tau=0.5"] and jobs[-1] == ["agent=random", "seed=2", "tau=0.5"]


def test_a_job_composes_without_its_hydra_node(hydra_app):
    config = compose(["seed=0"], hydra=True)
    job = hydra_private.compose_job(config, ["agent=random", "seed=4"])
    assert "hydra" not in job and job.agent.name == "random" and job.seed == 4


def test_sweep_elements_convert_to_plain_values(hydra_app):
    (override,) = hydra_private.parse_overrides(["tau=0.5,0.75"])
    assert [hydra_private.convert_value(v) for v in override.sweep_iterator()] == [0.5, 0.75]
