"""The Hydra entry point: `python -m imbalance.run [overrides]` runs one episode.

Only hydra and omegaconf are imported here, so `--help` and a bad override answer fast;
the episode's heavy machinery is imported once the configuration has composed.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from imbalance.config import register_schemas
from imbalance.errors import UsageError

register_schemas()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, Any]:
    from imbalance.runner import run_episode

    try:
        return run_episode(cfg)
    except UsageError as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            import traceback

            traceback.print_exc()
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
