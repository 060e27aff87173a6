"""Tests for recgoat_cli/encoders/image.py: open_clip loading from disk only, and robust image encoding.

No pretrained CLIP weights exist offline, so the real loading path is exercised with a tiny open_clip
architecture registered through ``open_clip.add_model_config`` and weights saved to a temporary file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from recgoat_cli.encoders.image import encode_images, find_cached_tag_weights, load_image_model, read_rgb_image
from recgoat_cli.errors import UserError

TINY_ARCH = "recgoat-test-tiny-vit"
OTHER_TINY_ARCH = "recgoat-test-tiny-vit-wide"
TINY_DIM = 16
SAMPLE_IMAGES = Path(__file__).resolve().parents[2] / "sample_data" / "images"


def _tiny_config(width: int) -> dict:
    return {
        "embed_dim": TINY_DIM,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": width, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 1, "layers": 1},
    }


class NotATensor:
    """A picklable object that torch.load(weights_only=True) must refuse."""


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("open_clip_configs")
    (folder / f"{TINY_ARCH}.json").write_text(json.dumps(_tiny_config(64)))
    (folder / f"{OTHER_TINY_ARCH}.json").write_text(json.dumps(_tiny_config(96)))
    open_clip.add_model_config(folder)
    torch.manual_seed(0)
    state = open_clip.create_model(TINY_ARCH).state_dict()
    files = {"safetensors": folder / "tiny.safetensors", "pt": folder / "tiny.pt"}
    save_file({k: v.contiguous() for k, v in state.items()}, str(files["safetensors"]))
    torch.save(state, files["pt"])
    return files


def _image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.mark.parametrize("kind", ["safetensors", "pt"])
def test_loads_saved_weights_exactly(tiny_weights: dict[str, Path], kind: str) -> None:
    model, preprocess, info = load_image_model(TINY_ARCH, str(tiny_weights[kind]))
    saved = torch.load(tiny_weights["pt"], weights_only=True)
    loaded = model.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert not model.training
    assert info["arch"] == TINY_ARCH and info["dim"] == TINY_DIM
    assert info["weights_sha256"] == hashlib.sha256(tiny_weights[kind].read_bytes()).hexdigest()
    assert info["preprocess"]["size"] == [32, 32]


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_encodes_to_unit_rows_equal_to_a_direct_forward(tiny_weights: dict[str, Path], batch_size: int) -> None:
    model, preprocess, _ = load_image_model(TINY_ARCH, str(tiny_weights["safetensors"]))
    paths = sorted(SAMPLE_IMAGES.glob("*.png"))[:7]
    if not paths:
        pytest.skip(f"{SAMPLE_IMAGES} has no images")
    embeddings, bad, reasons = encode_images(model, preprocess, paths, batch_size=batch_size, decode_threads=2)
    assert embeddings.shape == (7, TINY_DIM) and embeddings.dtype == np.float32 and bad == [] and reasons == []
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    with torch.inference_mode():
        pixels = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths])
        expected = torch.nn.functional.normalize(model.encode_image(pixels), dim=-1).numpy()
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)


def test_unreadable_images_are_reported_and_left_zero(tiny_weights: dict[str, Path], tmp_path: Path) -> None:
    model, preprocess, _ = load_image_model(TINY_ARCH, str(tiny_weights["safetensors"]))
    good = _image(tmp_path / "good.jpg", (200, 30, 30))
    zero_byte = tmp_path / "zero.jpg"
    zero_byte.write_bytes(b"")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(_image(tmp_path / "full.jpg", (30, 60, 200), (128, 128)).read_bytes()[:300])
    not_image = tmp_path / "readme.png"
    not_image.write_text("hello")
    paths = [zero_byte, good, truncated, None, tmp_path / "absent.png", not_image, good]
    embeddings, bad, reasons = encode_images(model, preprocess, paths, batch_size=2)
    assert bad == [0, 2, 3, 4, 5]
    assert "empty file (0 bytes)" in reasons[0]
    assert "truncated.jpg" in reasons[1] and "no image path" == reasons[2]
    assert "file not found" in reasons[3] and "readme.png" in reasons[4]
    assert not embeddings[bad].any()
    np.testing.assert_allclose(embeddings[1], embeddings[6], atol=1e-6)
    assert np.linalg.norm(embeddings[1]) == pytest.approx(1.0, abs=1e-5)


def test_all_images_unreadable_gives_zero_rows_of_model_width(tiny_weights: dict[str, Path]) -> None:
    model, preprocess, _ = load_image_model(TINY_ARCH, str(tiny_weights["safetensors"]))
    embeddings, bad, _ = encode_images(model, preprocess, [None, None], batch_size=4)
    assert embeddings.shape == (2, TINY_DIM) and not embeddings.any() and bad == [0, 1]


def test_read_rgb_image_converts_mode(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    Image.new("L", (5, 4), 128).save(path)
    image, reason = read_rgb_image(path)
    assert reason == "" and image is not None and image.mode == "RGB" and image.size == (5, 4)


def test_missing_weights_refuse_random_encoder() -> None:
    with pytest.raises(UserError, match="--image-weights is required; recgoat never uses a randomly initialised"):
        load_image_model("ViT-B-32", None)


def test_unknown_arch_lists_valid_ones() -> None:
    with pytest.raises(UserError, match=r"'ViT-Q-99' is not an open_clip architecture; use one of ViT-B-32"):
        load_image_model("ViT-Q-99", "laion2b_s34b_b79k")


def test_uncached_tag_names_arch_tag_cache_and_flag(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        load_image_model("ViT-B-32", "laion2b_s34b_b79k", hub_cache_dir=tmp_path)
    message = str(caught.value)
    assert "ViT-B-32/laion2b_s34b_b79k" in message and str(tmp_path) in message
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message and "--image-weights /path/to/file" in message


def test_unknown_tag_lists_tags() -> None:
    with pytest.raises(UserError, match=r"'no-such-tag' is neither a file nor an open_clip pretrained tag .*openai"):
        load_image_model("ViT-B-32", "no-such-tag")


def test_cached_tag_is_found_in_hub_cache_layout(tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"stand-in")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    found, looked = find_cached_tag_weights("ViT-B-32", "laion2b_s34b_b79k", hub_cache_dir=tmp_path)
    assert found is not None and Path(found) == snapshot / "open_clip_model.safetensors"
    assert str(tmp_path) in looked[0]


def test_weights_of_another_architecture_are_refused(tiny_weights: dict[str, Path]) -> None:
    with pytest.raises(UserError, match=rf"tiny\.safetensors could not be loaded into open_clip {OTHER_TINY_ARCH}"):
        load_image_model(OTHER_TINY_ARCH, str(tiny_weights["safetensors"]))


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--image-weights file .*absent\.safetensors does not exist"):
        load_image_model("ViT-B-32", str(tmp_path / "absent.safetensors"))


def test_pickled_object_weights_are_refused(tiny_weights: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "object.pt"
    torch.save({"state_dict": NotATensor()}, path)
    with pytest.raises(UserError, match=r"object\.pt is not a plain tensor state dict"):
        load_image_model(TINY_ARCH, str(path))


def test_corrupt_weights_file_is_refused(tiny_weights: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(tiny_weights["safetensors"].read_bytes()[:100])
    with pytest.raises(UserError, match=r"corrupt\.safetensors could not be loaded"):
        load_image_model(TINY_ARCH, str(path))
