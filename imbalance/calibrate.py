"""`python -m imbalance.calibrate`: where agents stand on a task (imbalance/cli/calibrate.py)."""

import sys

from imbalance.cli.calibrate import main

if __name__ == "__main__":
    sys.exit(main())
