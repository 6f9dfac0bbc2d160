"""Exit codes and the error that `rllib` reports as one line."""

import difflib

EXIT_OK, EXIT_TRIAL_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad user input: printed as one `rllib: error: <message>` line, exit code 2."""


def did_you_mean(word, candidates) -> str:
    close = difflib.get_close_matches(str(word), list(candidates), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
