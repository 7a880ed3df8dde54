"""`python -m imbalance.export`: episode runs as JSONL training trajectories (imbalance/cli/export.py)."""

import sys

from imbalance.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
