"""``--preset``: the preset fills what the user did not give, explicit options win, and train builds the
preset's graph when the latest one differs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from recgoat_cli.cli.app import app
from recgoat_cli.cli.options import TrainOptions
from recgoat_cli.presets import PRESETS

runner = CliRunner()


def test_the_preset_fills_unset_options_and_explicit_ones_win():
    config = TrainOptions(preset="reference").config()
    reference = PRESETS["reference"]["train"]
    for key, value in reference.items():
        assert getattr(config, key) == value, key
    explicit = TrainOptions(preset="reference", gat_heads=4, n_layers=2, fusion="oat", graphs="item,user-item").config()
    assert (explicit.gat_heads, explicit.n_layers, explicit.fusion, explicit.graphs) == (4, 2, "oat", ("item", "user-item"))
    assert explicit.item_branch == "reference" and explicit.cmcl_form == "reference"
    # no preset: the command's default model and TrainConfig's defaults
    plain = TrainOptions().config(default_model="recgoat")
    assert plain.model == "recgoat" and plain.fusion == "oat" and plain.item_branch == "attention"


@pytest.fixture()
def tiny_with_features(tiny_dataset, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tiny_dataset / "image_feat.npy", rng.standard_normal((30, 12)).astype(np.float32))
    return tiny_dataset, tmp_path / "runs"


@pytest.mark.filterwarnings("ignore::recgoat_cli.model.oat.SinkhornNotConverged")
def test_train_with_the_reference_preset_builds_its_graph_and_trains_the_reference_model(tiny_with_features):
    data, runs = tiny_with_features
    common = ["--dataset", str(data), "--workdir", str(runs)]
    assert runner.invoke(app, ["embed", *common, "--quiet"]).exit_code == 0
    default_graph = json.loads(runner.invoke(app, ["build-graph", *common, "--json"]).stdout)["artifact_id"]
    result = runner.invoke(app, ["train", *common, "--preset", "reference", "--epochs", "2", "--dim", "16"])
    assert result.exit_code == 0, result.output
    assert "--preset reference uses build-graph" in result.output and "knn_k=20" in result.output and default_graph in result.output
    trained = json.loads(runner.invoke(app, ["train", *common, "--preset", "reference", "--epochs", "2", "--dim", "16", "--json"]).stdout)
    assert trained["cached"] is True and trained["model"] == "recgoat"
    manifest = json.loads((runs / data.name / "train" / trained["artifact_id"] / "manifest.json").read_text())
    config = manifest["config"]
    assert (config["fusion"], config["item_branch"], config["cmcl_form"], config["gat_heads"], config["dim"]) == ("oat-map", "reference", "reference", 8, 16)
    graph = json.loads((runs / data.name / "build-graph" / manifest["upstream"][0]["artifact_id"] / "manifest.json").read_text())
    assert graph["config"]["knn_k"] == 20
    # the fused item weights are recorded: the ID view then the image view (0.05 at the start)
    assert set(manifest["summary"]["fusion_weights"]["item"]) == {"id", "image"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "nope"], "--preset nope: unknown preset"),
        (["--preset", "reference", "--model", "lightgcn"], "--preset reference configures --model recgoat"),
    ],
)
def test_preset_errors_are_one_sentence(tiny_with_features, args, message):
    data, runs = tiny_with_features
    result = runner.invoke(app, ["train", "--dataset", str(data), "--workdir", str(runs), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
