"""How every command line answers bad input: one `Error:` line on stderr and exit code 2.

`HYDRA_FULL_ERROR=1` (Hydra's own switch) adds the traceback, for our errors as for Hydra's.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

from imbalance.errors import UsageError

F = TypeVar("F", bound=Callable[..., int])


USAGE_EXIT = 2


def report_usage_error(exc: UsageError) -> int:
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        import traceback

        traceback.print_exception(exc)
    print(f"Error: {exc}", file=sys.stderr)
    return USAGE_EXIT


def exit_with(exc: UsageError) -> NoReturn:
    sys.exit(report_usage_error(exc))


def command(main: F) -> F:
    """`main(argv) -> exit code`; a UsageError is reported and becomes exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except UsageError as exc:
            return report_usage_error(exc)

    return wrapper  # type: ignore[return-value]


class ArgumentParser(argparse.ArgumentParser):
    """An argument error becomes the same single `Error:` line as any other bad input,
    instead of argparse's usage block."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        raise UsageError(f"{message}; see {self.prog} --help")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def require_writable_dir(folder: str | Path, flag: str) -> None:
    """Create `folder` now and prove it takes files, so a long job never ends by losing its
    results to an unwritable path."""
    import tempfile

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to {folder}: {exc.strerror or exc}; pass {flag} with a writable folder") from None
