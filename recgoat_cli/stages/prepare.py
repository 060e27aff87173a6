"""Turn a raw interaction table into the MMRec dataset layout that the rest of recgoat reads.

``run_prepare(source, out, options)`` runs these steps in order; the counts after each go to ``prepare.json``:

1. **read** the interactions: CSV / TSV / Parquet (polars, chosen by suffix when ``fmt="auto"``) or a RecBole atomic
   folder ``<x>/`` holding ``<x>.inter`` (a single ``.inter`` file works too). RecBole header fields such as
   ``user_id:token`` lose their ``:type`` suffix. Ids are read as strings (whitespace stripped) and may be any text;
   an empty id is an error naming its line. Ratings and timestamps must be numbers (timestamps may also be ISO-8601
   datetimes, kept as Unix seconds). The rating and time columns are optional while they keep their default names
   (``rating``, ``timestamp``): a table without them simply has none. A column named explicitly must exist.
2. **dedupe** (user, item) pairs, keeping the latest interaction: the largest timestamp, ties and files without
   timestamps broken by the later line. The latest rating is the user's current opinion.
3. **rating threshold**: keep rows with ``rating >= rating_threshold``. It runs before the k-core so that the core
   is computed on the interactions that are kept.
4. **k-core**, iterated to a fixed point: rows of users with fewer than ``user_core`` items or of items with fewer
   than ``item_core`` users are dropped, then counted again, until both conditions hold at once for every row.
5. **remap ids** to contiguous integers from 0, in order of the sorted original id: numeric order when every id is
   an integer, string order otherwise. The order then depends only on the set of ids, not on the file's row order.
6. **split** each user's items (see ``split_sizes`` for the per-user counts):

   - ``random``: a seeded random order per user; the last ``n_test`` items go to test, the ``n_valid`` before them to
     valid. Random keys are drawn with ``numpy.random.Generator.random`` over the interactions sorted by (new user
     id, new item id), so the split depends only on the kept interactions and the seed.
   - ``temporal``: the same sizes, in timestamp order (ties by line): every test item is at least as late as every
     valid item, which is at least as late as every train item. Needs a time column.
   - ``loo`` (leave-one-out): the latest item goes to test and the second latest to valid (users with 2 items: one
     train, one test; users with 1 item: train only). Ratios are ignored. Without a time column the order is the
     seeded random order of ``random`` (recorded as ``"order": "random"`` in ``prepare.json``, with a warning).

   Every user keeps at least one train item, and no (user, item) pair is in two splits (pairs are unique after the
   dedupe). An item may end up only in valid/test; ``prepare.json`` counts such items.
7. **side information**: ``items.tsv`` from one or more item tables (CSV, TSV, Parquet, JSON list of objects or
   JSON Lines, RecBole ``.item``), and ``images/<itemID>.<ext>`` copied from a folder of images named by original
   item id.
8. **write atomically**: everything is built in a temporary folder next to ``out`` and renamed into place; on any
   error the temporary folder is removed and ``out`` is left as it was.

Output files (inside ``out``):

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
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

import recgoat_cli
from recgoat_cli.data.raw import (
    DEFAULT_RATING_COL,
    DEFAULT_TIME_COL,
    ROW_COLUMN,
    file_fingerprint,
    read_interactions,
    resolve_format,
)
from recgoat_cli.data.side_info import copy_images, items_tsv_text
from recgoat_cli.errors import UserError

logger = logging.getLogger(__name__)

__all__ = [
    "PrepareOptions", "run_prepare", "k_core_mask", "split_sizes",
    "loo_sizes", "assign_split_labels", "sorted_id_order",
]

PREPARE_SCHEMA_VERSION = 1
MANIFEST_FILE = "prepare.json"
USER_MAPPING_FILE = "u_id_mapping.csv"
ITEM_MAPPING_FILE = "i_id_mapping.csv"
ITEMS_FILE = "items.tsv"
IMAGES_DIR = "images"
TRAIN, VALID, TEST = 0, 1, 2
SPLIT_KINDS = ("random", "temporal", "loo")
_INTEGER_ID = re.compile(r"-?\d+")


@dataclass(frozen=True)
class PrepareOptions:
    """Everything ``run_prepare`` can be told; recorded verbatim in ``prepare.json``.

    ``item_text`` is one item table or several merged on the item id (later tables fill in and override earlier
    ones where they have a non-empty value). ``item_text_key`` names the column that holds the original item id:
    one name for every table, one name per table, or None to use ``item_col`` (or ``item_id``) where present.
    """

    name: str
    fmt: str = "auto"
    user_col: str = "user_id"
    item_col: str = "item_id"
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
# Pure steps: arrays in, arrays out. Tested directly and through run_prepare.
# ----------------------------------------------------------------------------------------------------------------


def k_core_mask(users: np.ndarray, items: np.ndarray, user_core: int, item_core: int) -> tuple[np.ndarray, int]:
    """Rows kept by the (user_core, item_core)-core of a bipartite graph of unique (user, item) pairs.

    Repeats "drop every row whose user has < user_core kept rows or whose item has < item_core kept rows" until
    nothing changes, so at the end both conditions hold together. The result is the largest such sub-graph: a row
    is dropped only when it cannot be part of any core. Returns ``(mask, passes)``; ``passes`` counts the rounds
    that dropped something.

    Shapes:
        users, items: (n,) non-negative integer codes; mask: (n,) bool
    """
    keep = np.ones(len(users), dtype=bool)
    if user_core <= 1 and item_core <= 1:
        return keep, 0
    n_users = int(users.max()) + 1 if len(users) else 0
    n_items = int(items.max()) + 1 if len(items) else 0
    passes = 0
    while True:
        user_degree = np.bincount(users[keep], minlength=n_users)
        item_degree = np.bincount(items[keep], minlength=n_items)
        drop = keep & ((user_degree[users] < user_core) | (item_degree[items] < item_core))
        if not drop.any():
            return keep, passes
        keep &= ~drop
        passes += 1


def split_sizes(n: int, ratios: Sequence[float]) -> tuple[int, int, int]:
    """(n_train, n_valid, n_test) for a user with ``n`` items under ``(r_train, r_valid, r_test)``.

    Rule: ``n_valid = round(n * r_valid)`` and ``n_test = round(n * r_test)``, rounded half up; each is at least 1
    when its ratio is > 0; then, while fewer than one item is left for train, the larger of valid/test (valid on a
    tie) gives one back. Consequences with 8:1:1: n=1 -> 1/0/0, n=2 -> 1/0/1, n=3..14 -> (n-2)/1/1, n=15 -> 11/2/2.
    Every user keeps >= 1 train item, and users with >= 3 items get >= 1 valid and >= 1 test item.
    """
    _, r_valid, r_test = ratios
    # The epsilon keeps products like 25 * 0.1 = 2.4999999999999996 rounding up like the 2.5 they stand for.
    n_valid = math.floor(n * r_valid + 0.5 + 1e-9)
    n_test = math.floor(n * r_test + 0.5 + 1e-9)
    if r_valid > 0:
        n_valid = max(n_valid, 1)
    if r_test > 0:
        n_test = max(n_test, 1)
    while n - n_valid - n_test < 1 and (n_valid > 0 or n_test > 0):
        if n_valid >= n_test and n_valid > 0:
            n_valid -= 1
        else:
            n_test -= 1
    return n - n_valid - n_test, n_valid, n_test


def loo_sizes(n: int) -> tuple[int, int, int]:
    """(n_train, n_valid, n_test) for leave-one-out: one test from 2 items up, one valid from 3 items up."""
    n_test = 1 if n >= 2 else 0
    n_valid = 1 if n >= 3 else 0
    return n - n_valid - n_test, n_valid, n_test


def assign_split_labels(
    users: np.ndarray, order_keys: Sequence[np.ndarray], sizes: Callable[[int], tuple[int, int, int]]
) -> np.ndarray:
    """x_label per row: within each user, rows sorted by ``order_keys`` (primary key first) are labelled
    train for the first ``n_train``, then valid, then test, with ``sizes(n) = (n_train, n_valid, n_test)``.

    Shapes:
        users: (n,) integer codes; each order key: (n,); result: (n,) int8 in {0, 1, 2}
    """
    n_rows = len(users)
    labels = np.zeros(n_rows, dtype=np.int8)
    if n_rows == 0:
        return labels
    # np.lexsort sorts by its last key first: users, then the order keys in the given priority.
    order = np.lexsort(tuple(reversed(order_keys)) + (users,))
    sorted_users = users[order]
    counts = np.bincount(sorted_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(n_rows) - starts[sorted_users]
    distinct_counts, count_index = np.unique(counts, return_inverse=True)
    size_table = np.array([sizes(int(c)) for c in distinct_counts], dtype=np.int64).reshape(-1, 3)
    n_train = size_table[count_index, 0][sorted_users]
    n_valid = size_table[count_index, 1][sorted_users]
    sorted_labels = np.where(position < n_train, TRAIN, np.where(position < n_train + n_valid, VALID, TEST))
    labels[order] = sorted_labels
    return labels


def sorted_id_order(original_ids: Sequence[str]) -> list[str]:
    """Original ids in the order that defines the new ids: numeric when all are integers, else as strings."""
    ids = list(original_ids)
    if all(_INTEGER_ID.fullmatch(i) for i in ids):
        return sorted(ids, key=lambda i: (int(i), i))
    return sorted(ids)


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    if any(out.iterdir()) and not (out / MANIFEST_FILE).is_file():
        raise UserError(
            f"--out {out} is a non-empty folder without {MANIFEST_FILE}; --force replaces only an earlier prepared "
            "dataset, so pass an empty or new folder."
        )


def _move_into_place(staging: Path, out: Path, force: bool) -> None:
    if out.exists():
        if not force:
            raise UserError(f"--out {out} appeared while preparing; pass --force to replace it.")
        retired = staging.with_name(staging.name + ".old")
        os.replace(out, retired)
        try:
            os.replace(staging, out)
        except OSError:
            os.replace(retired, out)
            raise
        shutil.rmtree(retired)
        return
    try:
        os.rename(staging, out)
    except OSError as error:
        if out.exists():
            raise UserError(f"--out {out} appeared while preparing; pass --force to replace it.") from error
        raise


# ----------------------------------------------------------------------------------------------------------------
# The whole step
# ----------------------------------------------------------------------------------------------------------------


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


def _counts(users: np.ndarray, items: np.ndarray) -> dict[str, int]:
    return {"interactions": int(len(users)), "users": int(len(np.unique(users))), "items": int(len(np.unique(items)))}


def run_prepare(source: Path, out: Path, options: PrepareOptions) -> dict[str, Any]:
    """Read ``source``, filter, remap, split and write the MMRec layout into ``out``; return the ``prepare.json`` dict.

    See the module docstring for every rule. Raises ``UserError`` for anything the user can fix; on any error
    ``out`` is untouched and no temporary folder is left behind.
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
    frame = interactions.frame
    has_rating = interactions.rating_col is not None
    has_time = interactions.time_col is not None
    if options.rating_threshold is not None and not has_rating:
        raise UserError(
            f"--rating-threshold needs a rating column, but {interactions.path} has no {options.rating_col!r} "
            f"(columns were read as: {', '.join(c for c in frame.columns if c != ROW_COLUMN)}); pass --rating-col."
        )
    if options.split == "temporal" and not has_time:
        raise UserError(
            f"--split temporal needs timestamps, but {interactions.path} has no column {options.time_col!r}; "
            "pass --time-col or use --split random."
        )

    # Codes in string order for the filtering steps; the final ids are assigned after filtering.
    user_codes = frame["user"].rank("dense").cast(pl.Int64).to_numpy() - 1
    item_codes = frame["item"].rank("dense").cast(pl.Int64).to_numpy() - 1
    rows = frame[ROW_COLUMN].to_numpy()
    times = frame["time"].to_numpy() if has_time else None
    ratings = frame["rating"].to_numpy() if has_rating else None
    steps: list[dict[str, Any]] = [{"step": "read", **_counts(user_codes, item_codes)}]

    # Dedupe: the last row in (user, item, time, line) order is the latest interaction of its pair.
    keys = (rows, times, item_codes, user_codes) if has_time else (rows, item_codes, user_codes)
    order = np.lexsort(keys)
    pair_u, pair_i = user_codes[order], item_codes[order]
    last_of_pair = np.ones(len(order), dtype=bool)
    last_of_pair[:-1] = (pair_u[1:] != pair_u[:-1]) | (pair_i[1:] != pair_i[:-1])
    keep = np.sort(order[last_of_pair])  # back to file order
    removed = len(rows) - len(keep)
    user_codes, item_codes, rows = user_codes[keep], item_codes[keep], rows[keep]
    times = times[keep] if times is not None else None
    ratings = ratings[keep] if ratings is not None else None
    steps.append({"step": "dedupe", "rule": "keep the latest (largest timestamp, then later line)",
                  "removed": removed, **_counts(user_codes, item_codes)})

    if options.rating_threshold is not None:
        assert ratings is not None
        keep = ratings >= options.rating_threshold
        user_codes, item_codes, rows, ratings = user_codes[keep], item_codes[keep], rows[keep], ratings[keep]
        times = times[keep] if times is not None else None
        steps.append({"step": "rating_threshold", "threshold": options.rating_threshold,
                      "removed": int((~keep).sum()), **_counts(user_codes, item_codes)})
        if len(rows) == 0:
            raise UserError(
                f"--rating-threshold {options.rating_threshold} removed every interaction of {interactions.path}; "
                "lower the threshold."
            )

    if options.user_core > 1 or options.item_core > 1:
        keep, passes = k_core_mask(user_codes, item_codes, options.user_core, options.item_core)
        user_codes, item_codes, rows = user_codes[keep], item_codes[keep], rows[keep]
        times = times[keep] if times is not None else None
        ratings = ratings[keep] if ratings is not None else None
        steps.append({"step": "k_core", "user_core": options.user_core, "item_core": options.item_core,
                      "passes": passes, "removed": int((~keep).sum()), **_counts(user_codes, item_codes)})
        if len(rows) == 0:
            raise UserError(
                f"k-core (--user-core {options.user_core}, --item-core {options.item_core}) removed every interaction "
                f"of {interactions.path}; lower --user-core or --item-core."
            )

    # Final ids: sorted original ids (numeric order when all ids are integers).
    user_strings = frame["user"].to_numpy()[rows]
    item_strings = frame["item"].to_numpy()[rows]
    user_originals = sorted_id_order(set(user_strings.tolist()))
    item_originals = sorted_id_order(set(item_strings.tolist()))
    user_index = {u: i for i, u in enumerate(user_originals)}
    item_index = {v: i for i, v in enumerate(item_originals)}
    users = np.fromiter((user_index[u] for u in user_strings), dtype=np.int64, count=len(user_strings))
    items = np.fromiter((item_index[v] for v in item_strings), dtype=np.int64, count=len(item_strings))

    # Order within each user: time (then line) for temporal and for loo with timestamps, else seeded random keys.
    rng = np.random.default_rng(options.seed)
    use_time_order = options.split == "temporal" or (options.split == "loo" and has_time)
    if use_time_order:
        assert times is not None
        order_keys: list[np.ndarray] = [times, rows]
    else:
        canonical = np.lexsort((items, users))
        random_keys = np.empty(len(users))
        random_keys[canonical] = rng.random(len(users))
        order_keys = [random_keys, items]
    if options.split == "loo" and not has_time:
        warnings.warn(
            f"--split loo without a time column in {interactions.path}: each user's held-out items are chosen in a "
            f"random order seeded by --seed {options.seed}.",
            stacklevel=2,
        )
    sizes = loo_sizes if options.split == "loo" else (lambda n: split_sizes(n, options.ratios))
    labels = assign_split_labels(users, order_keys, sizes)

    result_order = np.lexsort((items, labels, users))
    users, items, labels, rows = users[result_order], items[result_order], labels[result_order], rows[result_order]
    times = times[result_order] if times is not None else None
    ratings = ratings[result_order] if ratings is not None else None

    train_items = np.unique(items[labels == TRAIN])
    split_counts = {
        "train": int((labels == TRAIN).sum()),
        "valid": int((labels == VALID).sum()),
        "test": int((labels == TEST).sum()),
        "users_with_valid": int(len(np.unique(users[labels == VALID]))),
        "users_with_test": int(len(np.unique(users[labels == TEST]))),
        "items_without_train": int(len(item_originals) - len(train_items)),
    }

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

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        header = ["userID", "itemID", "x_label"]
        columns_text: list[list[str]] = [
            [str(v) for v in users.tolist()], [str(v) for v in items.tolist()], [str(v) for v in labels.tolist()]
        ]
        if times is not None:
            header.append("timestamp")
            columns_text.append(_number_text(times))
        if ratings is not None:
            header.append("rating")
            columns_text.append(_number_text(ratings))
        lines = ["\t".join(header)] + ["\t".join(fields) for fields in zip(*columns_text)]
        _write_text(staging / f"{options.name}.inter", "\n".join(lines) + "\n")
        _write_id_mapping(staging / USER_MAPPING_FILE, ("user_id", "userID"), user_originals)
        _write_id_mapping(staging / ITEM_MAPPING_FILE, ("item_id", "itemID"), item_originals)

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

        outputs = {p.name: _sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
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
            "steps": steps,
            "counts": {"users": len(user_originals), "items": len(item_originals), "interactions": int(len(users))},
            "split": {"kind": options.split,
                      "ratios": None if options.split == "loo" else list(options.ratios),
                      "order": "timestamp" if use_time_order else "random",
                      **split_counts},
            "items_tsv": items_report,
            "images": None if images_report is None else
            {k: images_report[k] for k in ("items_with_image", "items_without_image")},
            "outputs": outputs,
        }
        _write_text(staging / MANIFEST_FILE, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        _move_into_place(staging, out, options.force)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    logger.info("prepared %s: %d users, %d items, %d interactions (train %d / valid %d / test %d) in %s",
                options.name, len(user_originals), len(item_originals), len(users), split_counts["train"],
                split_counts["valid"], split_counts["test"], out)
    return summary
