"""The option groups of ``recgoat_cli/cli/options.py``: an option left at its default gives the config's default,
and a group is spread into a command's options and built back from them."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from recgoat_cli.cli.options import (
    EmbedCommandOptions,
    EmbedOptions,
    GraphOptions,
    OutputOptions,
    PresetGraphOptions,
    TrainOptions,
    _shown,
    option_groups,
)
from recgoat_cli.config import EmbedConfig, GraphConfig, TrainConfig

runner = CliRunner()


def test_options_left_at_their_defaults_give_the_configs_defaults():
    assert TrainOptions().config() == TrainConfig()
    assert TrainOptions().config(default_model="recgoat") == TrainConfig(model="recgoat")
    assert TrainOptions(model="freedom").config() == TrainConfig(model="freedom")  # FREEDOM's own layers and L2
    assert EmbedCommandOptions().config() == EmbedConfig()
    assert EmbedOptions().config() == EmbedConfig()  # run keeps embed's defaults for the options it does not take
    assert GraphOptions().config() == GraphConfig()
    assert PresetGraphOptions().config(None) == GraphConfig()
    assert PresetGraphOptions().config("reference").knn_k == 20
    assert PresetGraphOptions(knn_k=5).config("reference").knn_k == 5


def test_every_train_option_but_preset_names_a_train_config_field():
    names = {field.name for field in dataclasses.fields(TrainOptions)} - {"preset"}
    assert names <= set(TrainConfig.model_fields)


@pytest.mark.parametrize(
    ("value", "text"),
    [(1e-4, "1e-4"), (1e-3, "0.001"), (100.0, "100"), (0.0, "0"), (0.1, "0.1"), (64, "64"), (("item", "user-item"), "item,user-item"), ((0.0, 0.5, 2.0), "0,0.5,2")],
)
def test_defaults_read_in_help_as_written_before(value, text):
    assert _shown(value) == text


@dataclasses.dataclass(frozen=True)
class _Pair:
    left: Annotated[int, typer.Option("--left")] = 1
    right: Annotated[int, typer.Option("--right")] = 2


def test_a_group_is_spread_into_options_and_built_back():
    seen = []

    @option_groups
    def command(*, pair: _Pair, scale: Annotated[int, typer.Option("--scale")] = 10, reporting: OutputOptions) -> None:
        seen.append((pair, scale, reporting))

    app = typer.Typer()
    app.command()(command)
    app.command("other")(lambda: None)  # two commands, so the group's command is named on the command line
    result = runner.invoke(app, ["command", "--right", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert seen == [(_Pair(left=1, right=5), 10, OutputOptions(as_json=True, quiet=False))]
    help_text = runner.invoke(app, ["command", "--help"]).output
    assert all(flag in help_text for flag in ("--left", "--right", "--scale", "--json", "--quiet"))


def test_two_groups_with_the_same_option_are_refused():
    with pytest.raises(TypeError, match="two options share a name"):

        @option_groups
        def command(*, first: _Pair, second: _Pair) -> None:
            pass
