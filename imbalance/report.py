"""`python -m imbalance.report`: pass rates and plots from MLflow (imbalance/cli/report.py)."""

import sys

from imbalance.cli.report import main

if __name__ == "__main__":
    sys.exit(main())
