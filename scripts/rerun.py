#!/usr/bin/env python
"""Rerun an episode from its saved configuration: python scripts/rerun.py RUN_ID [overrides] [--replay]."""

import sys

from imbalance.cli.rerun import main

if __name__ == "__main__":
    sys.exit(main())
