"""Tests of recgoat_cli/data/layout.py: the one rule for which of an item's images wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from recgoat_cli.data.layout import IMAGE_SUFFIXES, SPLITS, TEST, TRAIN, VALID, inter_file_name, is_preferred_image


@pytest.mark.parametrize(
    ("candidate", "current", "wins"),
    [("3.png", None, True), ("3.jpg", "3.png", True), ("3.png", "3.jpg", False), ("3.GIF", "3.tif", True),
     ("3.tiff", "3.TIF", False), ("3.jpeg", "3.JPG", False)],
)
def test_the_suffix_listed_first_wins(candidate, current, wins):
    assert is_preferred_image(Path(candidate), None if current is None else Path(current)) is wins


def test_split_codes_name_their_splits():
    assert [SPLITS[code] for code in (TRAIN, VALID, TEST)] == ["train", "valid", "test"]
    assert inter_file_name("ml-100k") == "ml-100k.inter"
    assert IMAGE_SUFFIXES[0] == ".jpg" and len(set(IMAGE_SUFFIXES)) == len(IMAGE_SUFFIXES)
