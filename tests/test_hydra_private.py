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


class CountingLoader:
    """Hydra's own loader, counting the jobs it composes."""

    def __init__(self, loader):
        self.loader, self.composed = loader, 0

    def load_sweep_config(self, master, overrides):
        self.composed += 1
        return self.loader.load_sweep_config(master, overrides)

    def __getattr__(self, name):
        return getattr(self.loader, name)


def _sweep_jobs(master, jobs):
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    hydra_loader = GlobalHydra.instance().config_loader()
    counting = CountingLoader(hydra_loader)
    composer = hydra_private.SweepComposer(counting)
    derived = [composer.load_sweep_config(master, job) for job in jobs]
    expected = [hydra_loader.load_sweep_config(master, job) for job in jobs]
    for mine, hydras in zip(derived, expected):
        assert OmegaConf.to_container(mine, resolve=False) == OmegaConf.to_container(hydras, resolve=False)
        assert OmegaConf.is_struct(mine) == OmegaConf.is_struct(hydras) and OmegaConf.is_readonly(mine.hydra) == OmegaConf.is_readonly(hydras.hydra)
    return derived, counting.composed


def test_jobs_that_differ_in_values_are_derived_from_one_composed_job_and_equal_hydras(hydra_app):
    master = compose(["seed=0"], hydra=True)
    jobs = [["agent=random", f"seed={s}", f"tau={t}", f"source.n_train={n}", "agent.name=random"]
            for s, t, n in [(0, 0.5, 2000), (7, 0.75, 2000), (8, 0.5, 3000), (9, "'0.6'", 1000)]]
    derived, composed = _sweep_jobs(master, jobs)
    assert composed == 1  # the first job; the others are copies with their values
    assert [j.seed for j in derived] == [0, 7, 8, 9] and derived[3].tau == 0.6 and derived[2].source.n_train == 3000
    assert derived[1].hydra.overrides.task == jobs[1] and "seed=7" in derived[1].hydra.job.override_dirname


def test_group_options_additions_and_hydra_keys_are_composed_by_hydra(hydra_app):
    master = compose(["seed=0"], hydra=True)
    jobs = [["model=logreg", "seed=0"], ["model=mlp", "seed=0"], ["model=mlp", "+extra=1"], ["model=mlp", "hydra.job.name=x"]]
    derived, composed = _sweep_jobs(master, jobs)
    assert composed == len(jobs) and derived[1].model.name == "mlp" and derived[2].extra == 1


def test_a_bad_value_fails_as_it_does_in_hydra(hydra_app):
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException

    master = compose(["seed=0"], hydra=True)
    loader = GlobalHydra.instance().config_loader()
    composer = hydra_private.SweepComposer(loader)
    composer.load_sweep_config(master, ["seed=0"])
    with pytest.raises(ConfigCompositionException) as derived:
        composer.load_sweep_config(master, ["seed=abc"])
    with pytest.raises(ConfigCompositionException) as composed:
        loader.load_sweep_config(master, ["seed=abc"])
    assert str(derived.value) == str(composed.value)


def test_a_concurrent_jobs_task_config_is_typed_and_leaves_the_job_whole(hydra_app):
    # An untyped copy still converts, through the schema rebuild in to_objects at ten times
    # the cost: 64 episodes paid ~1 s of the launching process's CPU for it.
    from omegaconf import OmegaConf

    from imbalance.config.schema import Config
    from imbalance.experiment.concurrent import _without_hydra

    job = compose(["seed=4"], hydra=True)
    task_cfg = _without_hydra(job)
    assert OmegaConf.get_type(task_cfg) is Config and "hydra" not in task_cfg and task_cfg.seed == 4
    assert OmegaConf.is_struct(task_cfg) and "hydra" in job
