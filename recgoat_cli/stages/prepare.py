"""``recgoat prepare`` as a stage: a raw interaction table -> a dataset folder in the MMRec layout.

``run_prepare(source, out, options)`` reads the interactions (``data/raw.py``), dedupes, filters, remaps and splits
them (``data/split.py``, whose docstring gives every rule), adds side information (``data/side_info.py``) and
publishes the folder atomically (``artifacts/store.publish_folder``): everything is built in a temporary folder
next to ``out`` and renamed into place; on any error the temporary folder is removed and ``out`` is left as it was.

Output files (inside ``out``; names from ``data/layout.py``):

- ``<name>.inter``: tab separated, header ``userID  itemID  x_label`` plus ``timestamp`` and ``rating`` when the input
  had them; ``x_label`` 0/1/2 = train/valid/test; rows sorted by (userID, x_label, itemID).
- ``u_id_mapping.csv`` (``user_id,userID``) and ``i_id_mapping.csv`` (``item_id,itemID``): comma separated, original
  id -> new id, quoted by the CSV rules when an id holds a comma or quote.
- ``items.tsv``: tab separated, header ``itemID`` plus the kept side-info columns, one row per itemID, UTF-8, no
  quoting; tabs, carriage returns and newlines inside fields are replaced by spaces. Items without side info have
  empty fields.
- ``images/<itemID>.<ext>``: only for items that have an image.
- ``prepare.json``: sources with sha256, options, seed, counts after every step, split counts, output hashes and the
  recgoat version.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import recgoat_cli
from recgoat_cli.artifacts.manifest import sha256_file
from recgoat_cli.artifacts.store import publish_folder
from recgoat_cli.data.layout import (
    IMAGES_DIR,
    ITEM_MAPPING_FILE,
    ITEM_MAPPING_HEADER,
    ITEMS_FILE,
    PREPARE_MANIFEST_FILE,
    RATING_COLUMN,
    REQUIRED_COLUMNS,
    TIMESTAMP_COLUMN,
    USER_MAPPING_FILE,
    USER_MAPPING_HEADER,
    inter_file_name,
)
from recgoat_cli.data.raw import (
    DEFAULT_ITEM_COL,
    DEFAULT_RATING_COL,
    DEFAULT_TIME_COL,
    DEFAULT_USER_COL,
    ROW_COLUMN,
    file_fingerprint,
    read_interactions,
    resolve_format,
)
from recgoat_cli.data.side_info import copy_images, items_tsv_text
from recgoat_cli.data.split import SPLIT_KINDS, SplitInteractions, split_interactions
from recgoat_cli.errors import UserError

logger = logging.getLogger(__name__)

PREPARE_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class PrepareOptions:
    """Everything ``run_prepare`` can be told; recorded verbatim in ``prepare.json``.

    ``item_text`` is one item table or several merged on the item id (later tables fill in and override earlier
    ones where they have a non-empty value). ``item_text_key`` names the column that holds the original item id:
    one name for every table, one name per table, or None to use ``item_col`` (or ``item_id``) where present.
    """

    name: str
    fmt: str = "auto"
    user_col: str = DEFAULT_USER_COL
    item_col: str = DEFAULT_ITEM_COL
    rating_col: str | None = DEFAULT_RATING_COL
    time_col: str | None = DEFAULT_TIME_COL
    sep: str | None = None
    rating_threshold: float | None = None
    user_core: int = 0
    item_core: int = 0
    split: str = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 2024
    item_text: Path | tuple[Path, ...] | None = None
    item_text_key: str | tuple[str, ...] | None = None
    item_text_columns: tuple[str, ...] = ()
    images: Path | None = None
    force: bool = False

    def __post_init__(self) -> None:
        # Lists from a caller become tuples so that the frozen options stay hashable and compare by value.
        if isinstance(self.item_text, (list, tuple)):
            object.__setattr__(self, "item_text", tuple(Path(p) for p in self.item_text))
        elif self.item_text is not None:
            object.__setattr__(self, "item_text", Path(self.item_text))
        if isinstance(self.item_text_key, list):
            object.__setattr__(self, "item_text_key", tuple(self.item_text_key))
        object.__setattr__(self, "item_text_columns", tuple(self.item_text_columns))
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        if self.images is not None:
            object.__setattr__(self, "images", Path(self.images))

    def to_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            return value

        return {name: plain(getattr(self, name)) for name in self.__dataclass_fields__}


# ----------------------------------------------------------------------------------------------------------------
# Writing the MMRec files
# ----------------------------------------------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def _write_id_mapping(path: Path, header: tuple[str, str], original_ids: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows((original, new) for new, original in enumerate(original_ids))
    _write_text(path, buffer.getvalue())


def _number_text(values: np.ndarray) -> list[str]:
    """Numbers as text: integers without a decimal point when every value is integral (ml-100k's 3, not 3.0)."""
    if np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        return [str(v) for v in values.astype(np.int64).tolist()]
    return [repr(float(v)) for v in values.tolist()]


def _inter_text(result: SplitInteractions) -> str:
    """``<name>.inter``: header userID itemID x_label [timestamp] [rating], rows as sorted in ``result``."""
    header = list(REQUIRED_COLUMNS)
    columns_text: list[list[str]] = [
        [str(v) for v in result.users.tolist()], [str(v) for v in result.items.tolist()],
        [str(v) for v in result.labels.tolist()],
    ]
    if result.times is not None:
        header.append(TIMESTAMP_COLUMN)
        columns_text.append(_number_text(result.times))
    if result.ratings is not None:
        header.append(RATING_COLUMN)
        columns_text.append(_number_text(result.ratings))
    lines = ["\t".join(header)] + ["\t".join(fields) for fields in zip(*columns_text)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------------------
# The stage
# ----------------------------------------------------------------------------------------------------------------


def _check_out(out: Path, force: bool, inputs: Sequence[Path]) -> None:
    out_resolved = out.resolve()
    for path in inputs:
        resolved = path.resolve()
        if resolved == out_resolved or out_resolved in resolved.parents:
            raise UserError(f"--out {out} holds the input {path}; write the prepared dataset to another folder.")
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder path for the prepared dataset.")
    if not force:
        raise UserError(f"--out {out} already exists; pass --force to replace it.")
    # --force replaces only an earlier prepared dataset or an empty folder, so a mistyped --out cannot wipe files.
    if any(out.iterdir()) and not (out / PREPARE_MANIFEST_FILE).is_file():
        raise UserError(
            f"--out {out} is a non-empty folder without {PREPARE_MANIFEST_FILE}; --force replaces only an earlier prepared "
            "dataset, so pass an empty or new folder."
        )


def _validate_options(options: PrepareOptions) -> None:
    name = options.name
    if not name or name in (".", "..") or "/" in name or "\\" in name or name != name.strip():
        raise UserError(f"--name {name!r} is not a plain file name; use something like 'ml-100k'.")
    if options.split not in SPLIT_KINDS:
        raise UserError(f"--split {options.split!r} is not known; use one of {', '.join(SPLIT_KINDS)}.")
    if options.user_core < 0 or options.item_core < 0:
        raise UserError("--user-core and --item-core must be 0 or more (0 or 1 keeps everything).")
    ratios = options.ratios
    if options.split != "loo":
        if len(ratios) != 3 or not all(math.isfinite(r) and r >= 0 for r in ratios):
            raise UserError(f"--ratios {list(ratios)} must be three non-negative numbers train,valid,test like 0.8,0.1,0.1.")
        if abs(sum(ratios) - 1.0) > 1e-6 or ratios[0] <= 0:
            raise UserError(
                f"--ratios {list(ratios)} must sum to 1 with a positive train share, like 0.8,0.1,0.1."
            )
    if options.rating_threshold is not None and not math.isfinite(options.rating_threshold):
        raise UserError(f"--rating-threshold {options.rating_threshold} must be a finite number.")
    if options.rating_threshold is not None and options.rating_col is None:
        raise UserError("--rating-threshold needs a rating column; pass --rating-col.")
    if options.split == "temporal" and options.time_col is None:
        raise UserError("--split temporal needs timestamps; pass --time-col or use --split random.")


def _item_text_paths(options: PrepareOptions, recbole_item: Path | None) -> tuple[Path, ...]:
    if options.item_text is None:
        return (recbole_item,) if recbole_item is not None else ()
    if isinstance(options.item_text, tuple):
        return options.item_text
    return (options.item_text,)


def run_prepare(source: Path, out: Path, options: PrepareOptions) -> dict[str, Any]:
    """Read ``source``, filter, remap, split and write the MMRec layout into ``out``; return the ``prepare.json`` dict.

    See ``data/split.py`` for every rule. Raises ``UserError`` for anything the user can fix; on any error ``out`` is
    untouched and no temporary folder is left behind.
    """
    source, out = Path(source), Path(out)
    _validate_options(options)
    image_inputs = [options.images] if options.images is not None else []
    explicit_item_text = list(_item_text_paths(options, None))
    _check_out(out, options.force, [source, *explicit_item_text, *image_inputs])
    # Fail before the slow steps when a named side-info input is missing.
    for path in explicit_item_text:
        if not path.is_file():
            raise UserError(f"item side-info file {path} does not exist; check --item-text.")
    if options.images is not None and not options.images.is_dir():
        raise UserError(f"image folder {options.images} does not exist or is not a folder; check --images.")

    interactions, recbole_item = read_interactions(
        source, fmt=options.fmt, sep=options.sep, user_col=options.user_col, item_col=options.item_col,
        rating_col=options.rating_col, time_col=options.time_col,
    )
    if options.rating_threshold is not None and interactions.rating_col is None:
        raise UserError(
            f"--rating-threshold needs a rating column, but {interactions.path} has no {options.rating_col!r} "
            f"(columns were read as: {', '.join(c for c in interactions.frame.columns if c != ROW_COLUMN)}); "
            "pass --rating-col."
        )
    if options.split == "temporal" and interactions.time_col is None:
        raise UserError(
            f"--split temporal needs timestamps, but {interactions.path} has no column {options.time_col!r}; "
            "pass --time-col or use --split random."
        )

    result = split_interactions(
        interactions, rating_threshold=options.rating_threshold, user_core=options.user_core,
        item_core=options.item_core, split=options.split, ratios=options.ratios, seed=options.seed,
    )

    item_text_paths = _item_text_paths(options, recbole_item)
    key_option = options.item_text_key
    if isinstance(key_option, tuple):
        if len(key_option) != len(item_text_paths):
            raise UserError(
                f"--item-text-key names {len(key_option)} columns for {len(item_text_paths)} item tables; "
                "give one key for all tables or one per table."
            )
        keys_per_table: list[str | None] = list(key_option)
    else:
        keys_per_table = [key_option] * len(item_text_paths)

    source_report: dict[str, Any] = {
        "interactions": {"path": str(interactions.path), "format": resolve_format(source, options.fmt),
                         **file_fingerprint(interactions.path)},
    }
    users, user_originals, item_originals = result.users, result.user_originals, result.item_originals
    try:
        with publish_folder(out, replace=options.force) as staging:
            _write_text(staging / inter_file_name(options.name), _inter_text(result))
            _write_id_mapping(staging / USER_MAPPING_FILE, USER_MAPPING_HEADER, user_originals)
            _write_id_mapping(staging / ITEM_MAPPING_FILE, ITEM_MAPPING_HEADER, item_originals)

            items_report = None
            if item_text_paths:
                items_text, items_report, source_report["item_text"] = items_tsv_text(
                    item_originals, item_text_paths, keys_per_table, options.item_col, options.item_text_columns
                )
                _write_text(staging / ITEMS_FILE, items_text)

            images_report = None
            if options.images is not None:
                images_report = copy_images(options.images, item_originals, staging / IMAGES_DIR)
                source_report["images"] = images_report

            outputs = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
            summary: dict[str, Any] = {
                "schema_version": PREPARE_SCHEMA_VERSION,
                "stage": "prepare",
                "recgoat_version": recgoat_cli.__version__,
                "name": options.name,
                "sources": source_report,
                "options": options.to_json(),
                "seed": options.seed,
                "columns": {"user": options.user_col, "item": options.item_col, "rating": interactions.rating_col,
                            "timestamp": interactions.time_col, "timestamp_parsed_from_datetime":
                                interactions.time_was_datetime},
                "steps": result.steps,
                "counts": {"users": len(user_originals), "items": len(item_originals), "interactions": int(len(users))},
                "split": {"kind": options.split,
                          "ratios": None if options.split == "loo" else list(options.ratios),
                          "order": result.order,
                          **result.split_counts},
                "items_tsv": items_report,
                "images": None if images_report is None else
                {k: images_report[k] for k in ("items_with_image", "items_without_image")},
                "outputs": outputs,
            }
            _write_text(staging / PREPARE_MANIFEST_FILE, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    except FileExistsError as error:
        raise UserError(f"--out {out} appeared while preparing; pass --force to replace it.") from error
    split_counts = result.split_counts
    logger.info("prepared %s: %d users, %d items, %d interactions (train %d / valid %d / test %d) in %s",
                options.name, len(user_originals), len(item_originals), len(users), split_counts["train"],
                split_counts["valid"], split_counts["test"], out)
    return summary
