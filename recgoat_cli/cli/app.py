"""The ``recgoat`` command: one sub-command per pipeline stage.

Only Typer is imported at start-up; each command imports torch, polars etc. in its body, so
``recgoat --help`` stays fast.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

try:  # typer 0.2x ships its own copy of click; older typer uses click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError

#: options that take several values after one flag (``--k 10 20``); click wants ``--k 10 --k 20``
MULTI_VALUE_OPTIONS = {"--k", "--seeds", "--fail-below", "--grid", "--feature", "--item-text", "--item-text-key", "--item-text-columns"}
#: options that take several values in one command only (``--from`` names one upstream everywhere else)
COMMAND_MULTI_VALUE_OPTIONS = {"evaluate": {"--from"}}


def expand_multi_value_options(args: list[str]) -> list[str]:
    """Rewrite ``--k 10 20`` as ``--k 10 --k 20`` for the multi-value options of the command in ``args``."""
    command = next((arg for arg in args if not arg.startswith("-")), None)
    multi = MULTI_VALUE_OPTIONS | COMMAND_MULTI_VALUE_OPTIONS.get(command, set())
    expanded: list[str] = []
    current: str | None = None
    taken = 0
    for arg in args:
        if arg.startswith("-") and not _is_number(arg):
            flag, eq, _ = arg.partition("=")
            current = flag if flag in multi and not eq else None
            taken = 0
            expanded.append(arg)
        elif current is not None:
            if taken:
                expanded.append(current)
            expanded.append(arg)
            taken += 1
        else:
            expanded.append(arg)
    return expanded


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class OneLineUsageError(UsageError):
    """A flag click could not parse, shown like every other user error: one line on stderr, exit 2."""

    def show(self, file=None) -> None:
        command = self.ctx.command_path if self.ctx is not None else "recgoat"
        message = " ".join(self.format_message().split()).rstrip(".")
        typer.echo(f"error: {message} (see `{command} --help`).", err=True)


class RecgoatGroup(TyperGroup):
    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, expand_multi_value_options(list(args)))
        except UsageError as exc:
            raise OneLineUsageError(exc.format_message(), exc.ctx) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsageError as exc:  # a sub-command's options
            raise OneLineUsageError(exc.format_message(), exc.ctx) from None

    def list_commands(self, ctx):
        return list(self.commands)  # pipeline order, not alphabetical


app = typer.Typer(
    cls=RecgoatGroup,
    name="recgoat",
    help="RecGOAT multimodal recommender: prepare -> embed -> build-graph -> train -> evaluate -> export.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _register() -> None:
    from recgoat_cli.cli.build_graph import build_graph
    from recgoat_cli.cli.embed import embed
    from recgoat_cli.cli.evaluate import evaluate
    from recgoat_cli.cli.export import export
    from recgoat_cli.cli.prepare import prepare
    from recgoat_cli.cli.report import report
    from recgoat_cli.cli.run import run
    from recgoat_cli.cli.show import show
    from recgoat_cli.cli.train import train
    from recgoat_cli.cli.tune import tune

    app.command("prepare")(prepare)
    app.command("embed")(embed)
    app.command("build-graph")(build_graph)
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("export")(export)
    app.command("tune")(tune)
    app.command("run")(run)
    app.command("show")(show)
    app.command("report")(report)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="print the version and exit", is_eager=True)) -> None:
    if version:
        from recgoat_cli import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


_register()


def main() -> None:
    app()
