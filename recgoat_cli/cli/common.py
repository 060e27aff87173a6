"""How commands report, and how errors become exit codes (the options are in ``cli/options.py``).

Exit codes: 0 success, 2 user error (one sentence on stderr, no traceback), 3 a ``--fail-below`` gate,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM, handled like Ctrl-C). Heavy libraries are imported inside command bodies so ``recgoat --help`` is fast.

Under torchrun (``WORLD_SIZE`` > 1) only the commands marked ``@runs_distributed`` (train, evaluate, embed) run:
they join the process group for their duration, and only rank 0 prints.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import signal
import sys
import threading
from typing import Any, Callable

import typer


class Output:
    """Tables for people on a terminal, one JSON object for scripts (``--json``, also with ``--quiet``), and
    nothing else in quiet mode."""

    def __init__(self, as_json: bool = False, quiet: bool = False):
        self.as_json = as_json
        self.silent = _rank() > 0  # under torchrun, rank 0 speaks for every rank
        self.quiet = quiet or self.silent

    @property
    def progress(self) -> bool:
        return not (self.as_json or self.quiet) and sys.stderr.isatty()

    def info(self, message: str) -> None:
        if not (self.quiet or self.as_json):
            typer.echo(message, err=True)

    def result(self, payload: dict, render: Callable[[dict], None] | None = None) -> None:
        if self.silent:
            return
        if self.as_json:  # asked for explicitly, so --quiet does not silence it
            typer.echo(json.dumps(payload, default=_jsonable))
            return
        if self.quiet:
            return
        if render is not None:
            render(payload)
        else:
            typer.echo(json.dumps(payload, indent=2, default=_jsonable))


def _jsonable(value: Any):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _rank() -> int:
    """This process's torchrun rank (0 without torchrun), from the environment: no torch import."""
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def fail(message: str, code: int = 2) -> None:
    if _rank() == 0:  # every rank meets the same user error; one message is enough
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def runs_distributed(command: Callable) -> Callable:
    """Mark a command that torchrun may launch on several processes; it runs inside the process group.

    The backend follows the command's ``--device`` (``nccl`` for CUDA, ``gloo`` for CPU). Without torchrun the
    command runs as it is, with no process group.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from recgoat_cli import distributed

        if not distributed.requested():
            return command(*args, **kwargs)
        from recgoat_cli.stages.common import resolve_device

        with distributed.process_group(resolve_device(kwargs.get("device", "auto"))):
            return command(*args, **kwargs)

    wrapper.runs_distributed = True
    return wrapper


def _raise_terminated(signum, frame) -> None:
    from recgoat_cli.errors import Terminated

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM during the cleanup ends the process at once
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises ``Terminated`` (a KeyboardInterrupt) in the main thread while a command runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def handle_errors(command: Callable) -> Callable:
    """Turn user errors into exit 2, gate failures into exit 3, Ctrl-C into exit 130 and SIGTERM into exit 143,
    without tracebacks."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with _sigterm_as_interrupt():
            return _run_command(command, args, kwargs)

    return wrapper


def _run_command(command: Callable, args, kwargs):
    from pydantic import ValidationError

    from recgoat_cli.errors import GateFailure, Terminated, UserError

    try:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not getattr(command, "runs_distributed", False):
            raise UserError(
                f"`recgoat {command.__name__.replace('_', '-')}` runs on one process; only train, evaluate and embed "
                "run under torchrun, so run it without torchrun."
            )
        return command(*args, **kwargs)
    except UserError as exc:
        fail(str(exc), UserError.exit_code)
    except GateFailure as exc:
        typer.echo(f"gate failed: {exc}", err=True)
        raise typer.Exit(GateFailure.exit_code) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]).replace("_", "-") if first["loc"] else "option"
        fail(f"--{field}: {first['msg']}.")
    except OSError as exc:
        # a full disk outside an artifact's folder (a lock, a pointer, a training checkpoint); the stages
        # already removed what they had half-written
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
            raise
        fail(f"cannot write {exc.filename or 'a file'} ({exc.strerror}); free space and rerun (`recgoat train --resume` continues a training run).")
    except KeyboardInterrupt as exc:
        what, code = ("terminated (SIGTERM)", Terminated.exit_code) if isinstance(exc, Terminated) else ("interrupted", 130)
        typer.echo(f"{what}: partial artifacts were discarded; `recgoat train --resume` continues a training run.", err=True)
        raise typer.Exit(code) from None


def render_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    Console().print(table)
