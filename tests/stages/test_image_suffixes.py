"""One list of image suffixes: every image ``recgoat prepare`` copies is read by the loader and ``recgoat embed``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from recgoat_cli.config import EmbedConfig
from recgoat_cli.data import side_info
from recgoat_cli.data.layout import IMAGE_SUFFIXES
from recgoat_cli.stages.prepare import PrepareOptions, run_prepare
from recgoat_cli.encoders.descriptor import describe_image
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.embed import image_paths, load_modalities, run_embed

# One colour per suffix, far apart, so that a mixed-up file would give a different descriptor row.
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (200, 30, 200), (30, 200, 200), (240, 240, 240), (90, 60, 20)]


def test_prepare_and_embed_share_one_suffix_list():
    assert side_info.IMAGE_SUFFIXES is IMAGE_SUFFIXES  # the images prepare copies
    assert {".gif", ".bmp", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".webp"} <= set(IMAGE_SUFFIXES)


def test_every_copied_image_is_read_by_embed(tmp_path):
    assert len(COLOURS) >= len(IMAGE_SUFFIXES)
    rows = ["user_id,item_id"] + [f"u{u},{item}" for u in range(6) for item in range(100, 100 + len(IMAGE_SUFFIXES))]
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    posters = tmp_path / "posters"
    posters.mkdir()
    for offset, (suffix, colour) in enumerate(zip(IMAGE_SUFFIXES, COLOURS)):
        image = Image.new("RGB", (40, 30), colour)
        image.paste((0, 0, 0), (5, 5, 15 + offset, 20))  # some edges, so the gradient histogram is not empty
        image.save(posters / f"{100 + offset}{suffix}")
    out = tmp_path / "data" / "shop"
    summary = run_prepare(tmp_path / "in.csv", out, PrepareOptions(name="shop", images=posters))
    assert summary["images"] == {"items_with_image": len(IMAGE_SUFFIXES), "items_without_image": 0}

    ctx = open_context(str(out), tmp_path / "runs")
    paths = image_paths(ctx.dataset)
    assert all(p is not None for p in paths)
    assert sorted(p.suffix for p in paths) == sorted(IMAGE_SUFFIXES)
    artifact, _ = run_embed(ctx, EmbedConfig(device="cpu", text_model=None, image_encoder="descriptor"))
    info = json.loads(artifact.file("modalities.json").read_text())
    assert info["items"]["image"]["missing"]["count"] == 0
    items, _ = load_modalities(artifact)
    for item, path in enumerate(paths):
        with Image.open(path) as opened:
            expected = describe_image(opened.convert("RGB"))
        np.testing.assert_allclose(items["image"][item], expected, atol=1e-6, err_msg=str(path))


@pytest.mark.parametrize(("names", "chosen"), [(["3.png", "3.jpg"], "3.jpg"), (["3.tif", "3.gif"], "3.gif"), (["3.bmp"], "3.bmp")])
def test_embed_prefers_suffixes_in_the_shared_order(tmp_path, names, chosen):
    folder = tmp_path / "shop"
    (folder / "images").mkdir(parents=True)
    (folder / "shop.inter").write_text("userID\titemID\tx_label\n" + "".join(f"0\t{i}\t0\n" for i in range(4)))
    for name in names:
        Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / "images" / name)
    ctx = open_context(str(folder), tmp_path / "runs")
    assert image_paths(ctx.dataset)[3].name == chosen
