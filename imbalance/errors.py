"""The one exception type for problems the user can fix (bad values, missing files, keys).

The command line turns it into exit code 2 and a single line; library users get a
normal exception whose message already says what to do.
"""


class UsageError(Exception):
    """Bad input the user can fix; the message states what was wrong and what to do."""
