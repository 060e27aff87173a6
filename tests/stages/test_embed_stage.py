"""``recgoat embed`` end to end with the real offline MiniLM: files, users from train only, caching, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recgoat_cli.cli.app import app
from recgoat_cli.config import EmbedConfig
from recgoat_cli.errors import UserError
from recgoat_cli.stages.common import open_context, split_csr
from recgoat_cli.stages.embed import load_modalities, run_embed

from conftest import SAMPLE_DATA, shared_dataset  # noqa: E402  (tests/ is on sys.path under pytest)

runner = CliRunner()


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    """The first 60 items of the shipped catalogue with their interactions (embedding 400 texts is slow)."""
    import polars as pl

    root = tmp_path_factory.mktemp("data") / "mini"
    (root / "images").mkdir(parents=True)
    inter = pl.read_csv(SAMPLE_DATA / "sample.inter", separator="\t").filter(pl.col("itemID") < 60)
    users = inter["userID"].unique().sort()
    remap = {int(u): n for n, u in enumerate(users)}
    inter = inter.with_columns(pl.col("userID").replace_strict(remap))
    inter.write_csv(root / "mini.inter", separator="\t")
    items = pl.read_csv(SAMPLE_DATA / "items.tsv", separator="\t", quote_char=None).filter(pl.col("itemID") < 60)
    items.write_csv(root / "items.tsv", separator="\t", quote_style="never")
    for item in range(60):
        shutil.copy(SAMPLE_DATA / "images" / f"{item}.png", root / "images" / f"{item}.png")
    return root


def test_embed_text_image_and_users_offline(small_sample, tmp_path):
    ctx = open_context(str(small_sample), tmp_path)
    artifact, cached = run_embed(ctx, EmbedConfig(device="cpu"))
    assert not cached
    items, users = load_modalities(artifact)
    assert items["text"].shape == (60, 384) and items["image"].shape == (60, 272)
    assert np.allclose(np.linalg.norm(items["text"], axis=1), 1.0, atol=1e-4)
    info = json.loads(artifact.file("modalities.json").read_text())
    assert info["items"]["text"]["dim"] == 384 and info["items"]["text"]["missing"]["count"] == 0
    assert "descriptor" in info["items"]["image"]["encoder"]
    # users: the mean of their TRAIN items' text rows only
    indptr, indices = split_csr(ctx.dataset, "train")
    with_train = [u for u in range(ctx.dataset.n_users) if indptr[u + 1] > indptr[u]]
    without_train = [u for u in range(ctx.dataset.n_users) if indptr[u + 1] == indptr[u]]
    for user in with_train[:5]:
        expected = items["text"][indices[indptr[user] : indptr[user + 1]]].mean(axis=0)
        assert np.allclose(users[user], expected, atol=1e-5)
    for user in without_train[:2]:  # documented rule: the mean of all items
        assert np.allclose(users[user], items["text"].mean(axis=0), atol=1e-5)
    again, cached = run_embed(ctx, EmbedConfig(device="cpu"))
    assert cached and again.id == artifact.id


def users_with_train_items(dataset: Path, out: Path) -> Path:
    """A copy of ``dataset`` without the users that have no train interaction (ids remapped, contiguous)."""
    import polars as pl

    out.mkdir(parents=True)
    inter = pl.read_csv(dataset / f"{dataset.name}.inter", separator="\t")
    kept = inter.filter(pl.col("x_label") == 0)["userID"].unique().sort()
    remap = {int(u): n for n, u in enumerate(kept)}
    inter = inter.filter(pl.col("userID").is_in(kept)).with_columns(pl.col("userID").replace_strict(remap))
    inter.write_csv(out / f"{out.name}.inter", separator="\t")
    shutil.copy(dataset / "items.tsv", out / "items.tsv")
    return out


def test_profile_users_and_imported_feature(small_sample, tmp_path):
    feature = tmp_path / "audio.npy"
    np.save(feature, np.random.default_rng(0).standard_normal((60, 5)).astype(np.float32))
    config = EmbedConfig(device="cpu", image_encoder="none", user_mode="profile", features=(("audio", str(feature)),))
    with pytest.raises(UserError, match=r"has no train interactions .* use --user-mode mean"):
        run_embed(open_context(str(small_sample), tmp_path / "w"), config)  # a profile of no items is not made up
    ctx = open_context(str(users_with_train_items(small_sample, tmp_path / "data" / "trained")), tmp_path / "w")
    artifact, _ = run_embed(ctx, config)
    items, users = load_modalities(artifact)
    assert set(items) == {"text", "audio"} and users.shape == (ctx.dataset.n_users, 384)
    assert np.allclose(items["audio"], np.load(feature))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text-model", "bge-base"], "BAAI/bge-base-en-v1.5"),
        (["--text-model", "/nonexistent/model"], "/nonexistent/model"),
        (["--image-encoder", "clip"], "--image-weights is required"),
        (["--feature", "audio=/nonexistent.npy"], "/nonexistent.npy"),
        (["--text-template", "{nope}"], "{nope}"),
    ],
)
def test_embed_user_errors_exit_2(small_sample, tmp_path, args, message):
    result = runner.invoke(app, ["embed", "--dataset", str(small_sample), "--workdir", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "mini" / "embed").exists() or not [p for p in (tmp_path / "mini" / "embed").iterdir() if not p.name.startswith(".")]


def test_feature_with_wrong_rows_exits_2(small_sample, tmp_path):
    feature = tmp_path / "bad.npy"
    np.save(feature, np.zeros((59, 4), dtype=np.float32))
    result = runner.invoke(app, ["embed", "--dataset", str(small_sample), "--workdir", str(tmp_path), "--feature", f"bad={feature}"])
    assert result.exit_code == 2 and "59" in result.output


def test_ml100k_text_for_every_item(tmp_path):
    source = shared_dataset("ml-100k")
    from recgoat_cli.stages.prepare import PrepareOptions, run_prepare

    out = tmp_path / "ml-100k"
    run_prepare(source, out, PrepareOptions(name="ml-100k", fmt="recbole", item_text=(source / "ml-100k.item", source / "imdb_details.json"), item_text_key=("item_id", "movie_id")))
    ctx = open_context(str(out), tmp_path / "runs")
    artifact, _ = run_embed(ctx, EmbedConfig(device="cpu", image_encoder="none"))
    items, users = load_modalities(artifact)
    assert items["text"].shape == (1682, 384) and users.shape == (943, 384)
    assert artifact.manifest.summary["missing"]["text"] == 0
