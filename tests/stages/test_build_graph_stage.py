"""build-graph: every graph comes from the train split only, statistics are recorded, bad input exits 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from recgoat_cli.cli.app import app
from recgoat_cli.cli.options import parse_memory_budget
from recgoat_cli.config import EmbedConfig, GraphConfig
from recgoat_cli.errors import UserError
from recgoat_cli.stages.build_graph import load_sparse, run_build_graph
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.embed import run_embed

runner = CliRunner()


def _features_dataset(tiny_dataset, n_items: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    np.save(tiny_dataset / "image_feat.npy", rng.standard_normal((n_items, 6)).astype(np.float32))
    return tiny_dataset


def test_graphs_use_train_only_and_are_symmetric(tiny_dataset, tmp_path):
    data = _features_dataset(tiny_dataset)
    ctx = open_context(str(data), tmp_path)
    embed, _ = run_embed(ctx, EmbedConfig(text_model=None, image_encoder="none", device="cpu"))
    graph, _ = run_build_graph(ctx, GraphConfig(knn_k=3, user_knn_k=3, user_graph="both"), embed)
    stats = graph.manifest.summary["graphs"]
    assert set(stats) == {"user_item", "item_knn_image", "user_user"}
    assert all(s["symmetric"] for s in stats.values())

    adjacency = load_sparse(graph.file("user_item.npz"), layout="coo")
    rows, cols = adjacency.indices().numpy()
    n_users = ctx.dataset.n_users
    edges = {(int(r), int(c) - n_users) for r, c in zip(rows, cols) if r < n_users}
    train = set(zip(*map(lambda a: a.tolist(), ctx.dataset.split("train"))))
    held_out = set(zip(*map(lambda a: a.tolist(), ctx.dataset.split("valid")))) | set(zip(*map(lambda a: a.tolist(), ctx.dataset.split("test"))))
    assert edges == train and not edges & held_out


def test_co_interaction_graph_ignores_valid_and_test(tmp_path):
    # users 0 and 1 share an item only through the test split: they must not be neighbours
    folder = tmp_path / "d" / "leak"
    folder.mkdir(parents=True)
    rows = ["userID\titemID\tx_label", "0\t0\t0", "0\t1\t0", "0\t4\t1", "1\t2\t0", "1\t3\t0", "1\t1\t2", "2\t0\t0", "2\t4\t0", "2\t3\t1"]
    (folder / "leak.inter").write_text("\n".join(rows) + "\n")
    ctx = open_context(str(folder), tmp_path / "w")
    graph, _ = run_build_graph(ctx, GraphConfig(user_knn_k=1, user_graph="co-interaction", co_measure="count", normalize="none"))
    with np.load(graph.file("user_user.npz")) as data:
        pairs = set(zip(data["rows"].tolist(), data["cols"].tolist()))
    assert (0, 1) not in pairs and (1, 0) not in pairs
    assert (0, 2) in pairs  # they share item 0 in train


@pytest.mark.parametrize(
    ("feature", "args", "message"),
    [
        (np.zeros((29, 4), dtype=np.float32), [], "29"),
        (np.full((30, 4), np.nan, dtype=np.float32), [], "NaN"),
        (np.ones((30, 4), dtype=np.float32), ["--knn-k", "30"], "--knn-k 30"),
    ],
)
def test_bad_modalities_exit_2(tiny_dataset, tmp_path, feature, args, message):
    np.save(tiny_dataset / "image_feat.npy", feature)
    workdir = tmp_path / "runs"
    embedded = runner.invoke(app, ["embed", "--dataset", str(tiny_dataset), "--workdir", str(workdir), "--text-model", "none"])
    if embedded.exit_code == 2:  # row count and NaN are caught while importing the feature
        assert message in embedded.output and "Traceback" not in embedded.output
        return
    result = runner.invoke(app, ["build-graph", "--dataset", str(tiny_dataset), "--workdir", str(workdir), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (workdir / "tiny" / "build-graph").exists()  # refused before the stage folder is made


def test_empty_train_split_exits_2(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "empty.inter").write_text("userID\titemID\tx_label\n0\t0\t1\n0\t1\t2\n")
    result = runner.invoke(app, ["build-graph", "--dataset", str(folder), "--workdir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "no train interactions" in result.output


@pytest.mark.parametrize(
    ("text", "mib"), [("512", 512), ("16", 16), ("512MB", 512), ("64mib", 64), ("2GB", 2048), ("1.5G", 1536), (" 32 MB ", 32)]
)
def test_memory_budget_takes_mib_or_a_size(text, mib):
    assert parse_memory_budget(text) == mib


@pytest.mark.parametrize(("text", "message"), [("lots", "is not a size"), ("2TB", "is not a size"), ("8MB", "below the 16 MiB")])
def test_memory_budget_refuses_what_it_cannot_honour(text, message):
    with pytest.raises(UserError, match=message):
        parse_memory_budget(text)


def test_knn_tiles_follow_the_memory_budget_flag(tmp_path):
    # 2100 items: a 16 MiB budget gives 1024-wide tiles (16 bytes per entry), 64 MiB gives 2048-wide ones
    folder = tmp_path / "data" / "wide"
    folder.mkdir(parents=True)
    rows = ["userID\titemID\tx_label"] + [f"{u}\t{7 * u + j}\t{min(max(j - 4, 0), 2)}" for u in range(300) for j in range(7)]
    (folder / "wide.inter").write_text("\n".join(rows) + "\n")
    np.save(folder / "image_feat.npy", np.random.default_rng(0).standard_normal((2100, 4)).astype(np.float32))
    common = ["--dataset", str(folder), "--workdir", str(tmp_path / "runs")]
    assert runner.invoke(app, ["embed", *common, "--text-model", "none", "--image-encoder", "none"]).exit_code == 0
    sides = {}
    for budget in ("16MB", "64MB"):
        result = runner.invoke(app, ["build-graph", *common, "--knn-k", "3", "--user-graph", "none", "--memory-budget", budget, "--force", "--json"])
        assert result.exit_code == 0, result.output
        memory = json.loads(result.stdout)["memory"]
        sides[budget] = memory["item_knn_tile_side"]
        assert memory["budget_bytes"] == parse_memory_budget(budget) * 2**20
    assert sides == {"16MB": 1024, "64MB": 2048}


@pytest.mark.parametrize(
    ("n", "k", "exclude_self", "sentence"),
    [
        (5, 0, True, "--knn-k 0 must be at least 1; pass a positive number of neighbours."),
        (1, 1, True, "--knn-k 1 asks for neighbours among 1 items; a neighbour graph needs at least 2."),
        (5, 9, True, "--knn-k 9 must be smaller than the number of items 5; pass --knn-k 4 or less."),
        (5, 6, False, "--knn-k 6 must be at most the number of items 5; pass --knn-k 5 or less."),
    ],
)
def test_a_bad_neighbour_count_becomes_a_user_error_naming_the_flag(n, k, exclude_self, sentence):
    from recgoat_cli.graphs.item_knn import blockwise_topk_cosine
    from recgoat_cli.stages.build_graph import neighbour_count_from

    with pytest.raises(UserError) as caught, neighbour_count_from("--knn-k"):
        blockwise_topk_cosine(np.ones((n, 3), dtype=np.float32), k, exclude_self=exclude_self)
    assert str(caught.value) == sentence


def test_freedom_knn_k_above_the_catalogue_names_its_flag():
    import torch

    from recgoat_cli.model.freedom import frozen_item_graph
    from recgoat_cli.stages.build_graph import neighbour_count_from

    with pytest.raises(UserError) as caught, neighbour_count_from("--freedom-knn-k"):
        frozen_item_graph([torch.ones(4, 3)], [1.0], 7)
    assert str(caught.value) == "--freedom-knn-k 7 must be at most the number of items 4; pass --freedom-knn-k 4 or less."
