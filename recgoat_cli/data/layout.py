"""The names of the MMRec dataset layout, written once: file names, split codes, image suffixes.

A prepared dataset folder ``<root>/`` holds::

    <name>.inter        tab separated, header userID itemID x_label [timestamp] [rating]
    u_id_mapping.csv    user_id,userID  (original id -> new id)
    i_id_mapping.csv    item_id,itemID
    items.tsv           itemID + side-info columns (optional)
    images/<itemID>.<ext>   one of IMAGE_SUFFIXES (optional)
    <modality>_feat.npy precomputed item features, row i = item i (optional)
    prepare.json        what ``recgoat prepare`` did (only in folders it wrote)

``recgoat prepare`` writes these names, the loader (``data/dataset.py``) and ``recgoat embed`` read them.
"""

from __future__ import annotations

from pathlib import Path

INTER_SUFFIX = ".inter"
USER_MAPPING_FILE = "u_id_mapping.csv"
ITEM_MAPPING_FILE = "i_id_mapping.csv"
ITEMS_FILE = "items.tsv"
IMAGES_DIR = "images"
FEATURE_SUFFIX = "_feat.npy"
PREPARE_MANIFEST_FILE = "prepare.json"

#: header of the interaction file; ``timestamp`` and ``rating`` follow when the data has them
USER_COLUMN, ITEM_COLUMN, SPLIT_COLUMN = "userID", "itemID", "x_label"
REQUIRED_COLUMNS = (USER_COLUMN, ITEM_COLUMN, SPLIT_COLUMN)
TIMESTAMP_COLUMN = "timestamp"
RATING_COLUMN = "rating"
#: headers of the id mapping files: original id, new id
USER_MAPPING_HEADER = ("user_id", USER_COLUMN)
ITEM_MAPPING_HEADER = ("item_id", ITEM_COLUMN)

#: x_label codes; ``SPLITS[code]`` is the split's name
TRAIN, VALID, TEST = 0, 1, 2
SPLITS = ("train", "valid", "test")

#: The one list of item image suffixes: ``prepare`` copies these, the loader and ``embed`` read them. When one item
#: has several images (e.g. 12.jpg and 12.png), the first suffix listed wins, everywhere.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def is_preferred_image(candidate: Path, current: Path | None) -> bool:
    """Whether ``candidate`` replaces ``current`` as an item's image: its suffix comes first in ``IMAGE_SUFFIXES``.

    Both suffixes must be in ``IMAGE_SUFFIXES`` (any case).
    """
    if current is None:
        return True
    return IMAGE_SUFFIXES.index(candidate.suffix.lower()) < IMAGE_SUFFIXES.index(current.suffix.lower())


def inter_file_name(name: str) -> str:
    """``<name>.inter``: the interaction file of dataset ``name``."""
    return f"{name}{INTER_SUFFIX}"

