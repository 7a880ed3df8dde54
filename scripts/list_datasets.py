#!/usr/bin/env python
"""The data sets `source=benchmark source.dataset=NAME` accepts, as a markdown table.

    python scripts/list_datasets.py            # every data set
    python scripts/list_datasets.py --family yeast

docs/datasets.md holds its output (a test checks the two agree).
"""

import argparse
import sys

from imbalance.cli.errors import ArgumentParser, command
from imbalance.data.benchmark import catalogue


def table(family: str | None = None) -> str:
    lines = ["| dataset | family | published by | rows | minority rows | features |", "|---|---|---|---:|---:|---:|"]
    for info in catalogue().values():
        if family is None or info.family == family:
            lines.append(f"| `{info.name}` | {info.family} | {info.citation} | {info.rows:,} | {info.minority:,} | {info.features} |")
    return "\n".join(lines)


@command
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="scripts/list_datasets.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", help="only this family (e.g. yeast)")
    args = parser.parse_args(argv)
    print(table(args.family))
    return 0


if __name__ == "__main__":
    sys.exit(main())
