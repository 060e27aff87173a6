"""Exceptions that the command line turns into exit codes.

A ``UserError`` is a mistake the user can fix (a bad file, flag or missing artifact): the CLI prints its
message as one sentence and exits 2, without a traceback. Anything else is a bug and may raise.
"""


class UserError(Exception):
    """A mistake the user can fix; the CLI prints the message and exits with code 2."""

    exit_code = 2


class GateFailure(Exception):
    """A metric fell below a ``--fail-below`` gate; the CLI exits with code 3."""

    exit_code = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM (how schedulers stop a job), raised like Ctrl-C's KeyboardInterrupt so the same cleanup runs;
    the CLI exits with code 143 (128 + SIGTERM)."""

    exit_code = 143
