#!/usr/bin/env python
"""Write a generated file in the credit-card schema (Time, V1..V28, Amount, Class):
python scripts/creditcard_like.py DEST [--rows N] [--seed S]

Not the real data (see scripts/fetch_creditcard.py for that): Gaussian components with fraud
shifted on a few of them, for tests, benchmarks and demos of any size.
"""

import argparse
import sys

from imbalance.cli.errors import ArgumentParser, command
from imbalance.data.creditcard_like import write_creditcard_like
from imbalance.data.creditcard_real import FRAUDS, ROWS
from imbalance.errors import UsageError


@command
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="scripts/creditcard_like.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", help="the CSV to write")
    parser.add_argument("--rows", type=int, default=ROWS, help=f"rows (default {ROWS:,}, the real file's); frauds and duplicates scale with it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 1000 <= args.rows <= 10_000_000:
        raise UsageError(f"--rows must be in [1000, 10000000]; got {args.rows}")
    frauds = max(2, round(FRAUDS * args.rows / ROWS))
    duplicates = round(1081 * args.rows / ROWS)
    path = write_creditcard_like(args.dest, rows=args.rows, frauds=frauds, duplicates=duplicates, seed=args.seed)
    print(f"wrote {path}: {args.rows:,} rows ({frauds} frauds, {duplicates} exact duplicates), "
          f"{path.stat().st_size / 1e6:.1f} MB, generated in the credit-card schema (not the real data)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
