"""`hydra/launcher=concurrent`: Hydra requires a launcher class to live under hydra_plugins;
the work is in imbalance/experiment/concurrent.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.plugins.launcher import Launcher


class ConcurrentLauncher(Launcher):
    def __init__(self, max_concurrency: int = 16, cpu_workers: int | None = None) -> None:
        if max_concurrency < 1 or (cpu_workers is not None and cpu_workers < 1):
            from imbalance.errors import UsageError

            raise UsageError(f"hydra.launcher.max_concurrency and hydra.launcher.cpu_workers must be at least 1; got {max_concurrency} and {cpu_workers}")
        self.max_concurrency, self.cpu_workers = max_concurrency, cpu_workers
        self.config = self.hydra_context = self.task_function = None
        self._pool: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        from imbalance.experiment.concurrent import ComposedOnce

        # The sweeper shares this context: the jobs it composes to validate a batch are kept
        # for launch() rather than composed twice.
        if not isinstance(hydra_context.config_loader, ComposedOnce):
            hydra_context.config_loader = ComposedOnce(hydra_context.config_loader)
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        # The workers import torch (several seconds) while the sweeper composes the jobs.
        self._pool = self._new_pool(wait=False)

    def take_pool(self) -> Any:
        """The pool started in setup for the first batch; a new one for each later batch."""
        pool, self._pool = self._pool, None
        return pool if pool is not None else self._new_pool(wait=True)

    def _new_pool(self, *, wait: bool) -> Any:
        from imbalance.experiment.sessions import SessionPool

        return SessionPool(self.cpu_workers, wait=wait)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[Any]:
        from imbalance.experiment.concurrent import launch

        return launch(self, job_overrides, initial_job_idx)
