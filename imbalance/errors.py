"""The one exception type for problems the user can fix (bad values, missing files, keys).

The command line turns it into exit code 2 and a single line; library users get a
normal exception whose message already says what to do.
"""

from typing import NoReturn


class UsageError(Exception):
    """Bad input the user can fix; the message states what was wrong and what to do."""


def exit_with(exc: UsageError) -> NoReturn:
    """The command line's answer to a UsageError: one line on stderr, exit code 2
    (HYDRA_FULL_ERROR=1 adds the traceback, as it does for Hydra's own errors)."""
    import os
    import sys

    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        import traceback

        traceback.print_exception(exc)
    print(f"Error: {exc}", file=sys.stderr)
    sys.exit(2)


def require_writable_dir(folder, flag: str) -> None:
    """Create `folder` now and prove it takes files, so a long job never ends by losing its
    results to an unwritable path."""
    import tempfile
    from pathlib import Path

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to {folder}: {exc.strerror or exc}; pass {flag} with a writable folder") from None
