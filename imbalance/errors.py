"""The one exception type for problems the user can fix (bad values, missing files, keys).

Any layer raises it; only the command lines (imbalance/cli/) turn it into exit code 2 and a
single `Error:` line. Library users get a normal exception whose message says what to do.
"""


class UsageError(Exception):
    """Bad input the user can fix; the message states what was wrong and what to do."""
