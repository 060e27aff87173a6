"""Tests for recgoat_cli/encoders/descriptor.py: the colour-histogram+HOG descriptor."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recgoat_cli.encoders.descriptor import (
    COLOUR_DIM,
    DESCRIPTOR_DIM,
    SHAPE_DIM,
    colour_histogram,
    describe_image,
    describe_images,
    orientation_histogram,
)

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"


def _save(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30), shape: str = "") -> Path:
    image = Image.new("RGB", size, (235, 235, 235))
    draw = ImageDraw.Draw(image)
    inset_x, inset_y = size[0] // 10, size[1] // 10
    if shape == "disc":
        draw.ellipse((inset_x, inset_y, size[0] - inset_x, size[1] - inset_y), fill=colour)
    elif shape == "bars":
        for x in range(0, size[0], 8):
            draw.rectangle((x, 0, x + 3, size[1]), fill=colour)
    else:
        draw.rectangle((inset_x, inset_y, size[0] - inset_x, size[1] - inset_y), fill=colour)
    image.save(path)
    return path


def test_dimensions_and_unit_norm(tmp_path: Path) -> None:
    assert (COLOUR_DIM, SHAPE_DIM, DESCRIPTOR_DIM) == (128, 144, 272)
    features, bad, reasons = describe_images([_save(tmp_path / "a.png", (200, 30, 30))])
    assert features.shape == (1, 272) and features.dtype == np.float32 and bad == [] and reasons == []
    assert np.linalg.norm(features[0]) == pytest.approx(1.0, abs=1e-6)


def test_flat_image_has_one_colour_bin_and_no_gradient() -> None:
    # Pure red in Pillow's HSV is (0, 255, 255): hue bin 0, saturation bin 3, value bin 3 -> joint bin 15.
    red = Image.new("RGB", (64, 64), (255, 0, 0))
    expected_colour = np.zeros(128)
    expected_colour[(0 * 4 + 3) * 4 + 3] = 1.0
    np.testing.assert_allclose(colour_histogram(red), expected_colour)
    np.testing.assert_array_equal(orientation_histogram(red), np.zeros(144))
    expected = np.concatenate([expected_colour, np.zeros(144)]) / np.sqrt(2)
    np.testing.assert_allclose(describe_image(red), expected, atol=1e-7)


def test_vertical_edge_votes_horizontal_gradient_bin() -> None:
    # Left half black, right half white: gradient along +x, angle 0 -> orientation bin 0, in the cells that
    # straddle the edge (columns 1 and 2 of the 4x4 grid, 16 px each; the edge is at x = 32).
    image = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(image).rectangle((32, 0, 63, 63), fill=255)
    histogram = orientation_histogram(image.convert("RGB")).reshape(4, 4, 9)
    assert histogram[..., 1:].sum() == 0.0
    assert (histogram[:, 1, 0] > 0).all() and (histogram[:, 2, 0] > 0).all()
    assert histogram[:, 0, 0].sum() == 0.0 and histogram[:, 3, 0].sum() == 0.0


@pytest.mark.parametrize("size", [(16, 16), (40, 30), (185, 278)])
@pytest.mark.parametrize("shape", ["box", "disc"])
def test_same_colour_closer_than_different_colour(tmp_path: Path, size: tuple[int, int], shape: str) -> None:
    paths = [
        _save(tmp_path / "red.png", (200, 30, 30), size, shape=shape),
        _save(tmp_path / "other_red.png", (212, 40, 22), size, shape=shape),
        _save(tmp_path / "blue.png", (30, 60, 200), size, shape=shape),
    ]
    features, bad, _ = describe_images(paths)
    assert bad == []
    red, other_red, blue = features
    assert np.linalg.norm(red - other_red) < np.linalg.norm(red - blue)


@pytest.mark.parametrize("size", [(40, 30), (185, 278)])
def test_same_colour_other_shape_closer_than_other_colour_same_shape(tmp_path: Path, size: tuple[int, int]) -> None:
    paths = [
        _save(tmp_path / "red_box.png", (200, 30, 30), size),
        _save(tmp_path / "red_disc.png", (205, 35, 28), size, shape="disc"),
        _save(tmp_path / "blue_box.png", (30, 60, 200), size),
    ]
    red_box, red_disc, blue_box = describe_images(paths)[0]
    assert np.linalg.norm(red_box - red_disc) < np.linalg.norm(red_box - blue_box)


def test_same_shape_closer_than_different_shape_at_equal_colour(tmp_path: Path) -> None:
    paths = [
        _save(tmp_path / "bars1.png", (30, 60, 200), (64, 64), shape="bars"),
        _save(tmp_path / "bars2.png", (30, 60, 200), (64, 64), shape="bars"),
        _save(tmp_path / "disc.png", (30, 60, 200), (64, 64), shape="disc"),
    ]
    shape_part = describe_images(paths)[0][:, COLOUR_DIM:]
    assert np.linalg.norm(shape_part[0] - shape_part[1]) < np.linalg.norm(shape_part[0] - shape_part[2])


def test_deterministic(tmp_path: Path) -> None:
    paths = [_save(tmp_path / f"{i}.png", (40 * i, 100, 250 - 40 * i), shape="disc") for i in range(4)]
    first, _, _ = describe_images(paths)
    second, _, _ = describe_images(list(reversed(paths)))
    np.testing.assert_array_equal(first, second[::-1])


def test_bad_images_are_reported_not_raised(tmp_path: Path) -> None:
    good = _save(tmp_path / "good.png", (10, 200, 10), (64, 64))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:-40])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    paths = [good, empty, None, truncated, tmp_path / "absent.png", text]
    features, bad, reasons = describe_images(paths)
    assert bad == [1, 2, 3, 4, 5]
    assert "empty file" in reasons[0] and reasons[1] == "no image path"
    assert "truncated.png" in reasons[2] and "not found" in reasons[3] and "notes.png" in reasons[4]
    assert np.linalg.norm(features[0]) > 0 and not features[1:].any()


def test_sample_catalog_neighbours_share_colour() -> None:
    """On the shipped catalog the descriptor's nearest neighbour mostly has the same drawn colour (chance: 1/6)."""
    attributes = SAMPLE_DATA / "attributes.tsv"
    if not attributes.is_file():
        pytest.skip(f"{attributes} is absent")
    with open(attributes, newline="") as handle:
        colours = np.array([row["colour"] for row in csv.DictReader(handle, delimiter="\t")])
    features, bad, _ = describe_images([SAMPLE_DATA / "images" / f"{i}.png" for i in range(len(colours))])
    assert bad == []
    similarity = features @ features.T
    np.fill_diagonal(similarity, -np.inf)
    assert (colours[similarity.argmax(axis=1)] == colours).mean() > 0.6
