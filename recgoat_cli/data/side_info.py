"""Item side information for ``recgoat prepare``: ``items.tsv`` from item tables, ``images/`` from a folder.

Item tables may be CSV, TSV, Parquet, a JSON list of objects, JSON Lines or a RecBole ``.item`` file; several are
merged on the original item id (later tables fill in and override earlier ones where they have a non-empty value).
``items.tsv`` is tab separated, header ``itemID`` plus the kept side-info columns, one row per new item id, UTF-8,
no quoting; tabs, carriage returns and newlines inside fields become spaces, and items without side info have
empty fields. Images are copied from a folder of files named ``<original item id>.<ext>`` to ``<itemID>.<ext>``.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from recgoat_cli.data.layout import IMAGE_SUFFIXES, ITEM_COLUMN, is_preferred_image
from recgoat_cli.data.raw import DEFAULT_ITEM_COL, RECBOLE_ITEM_SUFFIX, file_fingerprint, read_raw_table, row_location
from recgoat_cli.errors import UserError


def _json_text(value: Any) -> str:
    """A JSON value as one line of text: lists of scalars joined by ", ", integral floats without ".0"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float, bool)) or v is None for v in value):
        return ", ".join(_json_text(v) for v in value if v is not None)
    return json.dumps(value, ensure_ascii=False)


def _item_table_rows(path: Path) -> tuple[list[str], list[dict[str, str]], Callable[[int], str]]:
    """(columns, rows as column -> text, where(row) -> location) of one item table."""
    if not path.is_file():
        raise UserError(f"item side-info file {path} does not exist; check --item-text.")
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl", ".ndjson"):
        try:
            text = path.read_text(encoding="utf-8")
            if suffix == ".json":
                records = json.loads(text)
            else:
                records = [json.loads(line) for line in text.splitlines() if line.strip()]
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"cannot parse item side-info file {path} as JSON ({error}); check the file.") from error
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise UserError(f"item side-info file {path} must hold a JSON list of objects, one per item.")
        if not records:
            raise UserError(f"item side-info file {path} holds no objects; it needs one per item.")
        columns: list[str] = []
        seen: set[str] = set()
        for record in records:
            for key in record:
                if key not in seen:
                    seen.add(key)
                    columns.append(key)
        rows = [{k: _json_text(v) for k, v in record.items()} for record in records]
        return columns, rows, lambda row: f"{path}, object {row + 1}"
    by_suffix = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", RECBOLE_ITEM_SUFFIX: "recbole",
                 ".parquet": "parquet", ".pq": "parquet"}
    if suffix not in by_suffix:
        raise UserError(
            f"cannot tell the format of item side-info file {path} from its suffix {suffix!r}; "
            "use .csv, .tsv, .json, .jsonl, .parquet or a RecBole .item file."
        )
    # Each item table is read with its own format's separator: --sep describes the interaction file only.
    frame, has_header = read_raw_table(path, by_suffix[suffix], None, "item side-info file")
    if frame.height == 0:
        raise UserError(f"item side-info file {path} has a header but no rows.")
    frame = frame.with_columns(pl.all().cast(pl.String))
    rows = [{k: ("" if v is None else v) for k, v in row.items()} for row in frame.iter_rows(named=True)]
    return list(frame.columns), rows, lambda row: row_location(path, row, has_header)


def _table_key(path: Path, columns: Sequence[str], explicit: str | None, item_col: str) -> str:
    if explicit is not None:
        if explicit not in columns:
            raise UserError(
                f"item side-info file {path} has no column {explicit!r} (columns: {', '.join(columns)}); "
                "pass --item-text-key with one of them."
            )
        return explicit
    for candidate in (item_col, DEFAULT_ITEM_COL):
        if candidate in columns:
            return candidate
    raise UserError(
        f"item side-info file {path} has neither {item_col!r} nor 'item_id' (columns: {', '.join(columns)}); "
        "pass --item-text-key naming the column with the original item id."
    )


def read_item_side_info(
    paths: Sequence[Path], keys: Sequence[str | None], item_col: str
) -> tuple[list[str], dict[str, dict[str, str]], list[dict[str, Any]]]:
    """Merge item tables on the original item id: (columns, id -> column -> text, per-table report).

    Ids of all tables are united; a later table fills in and overrides an earlier one where its value is non-empty.
    Columns keep the order of first appearance; each table's key column is not a side-info column. A repeated id
    inside one table keeps its first row (with a warning and a count in the report).
    """
    columns: list[str] = []
    merged: dict[str, dict[str, str]] = {}
    report = []
    for path, explicit_key in zip(paths, keys, strict=True):
        table_columns, rows, where = _item_table_rows(path)
        key = _table_key(path, table_columns, explicit_key, item_col)
        seen_here: set[str] = set()
        duplicates = 0
        for index, row in enumerate(rows):
            item_id = row.get(key, "").strip()
            if not item_id:
                raise UserError(f"{where(index)}: column {key!r} has an empty item id; every row needs one.")
            if item_id in seen_here:
                duplicates += 1
                continue
            seen_here.add(item_id)
            target = merged.setdefault(item_id, {})
            for column, value in row.items():
                if column != key and value != "":
                    target[column] = value
        for column in table_columns:
            if column != key and column not in columns:
                columns.append(column)
        if duplicates:
            warnings.warn(f"{path}: {duplicates} rows repeat an item id already seen in that file; kept the first.",
                          stacklevel=2)
        report.append({"path": str(path), "key": key, "rows": len(rows), "duplicate_ids_skipped": duplicates,
                       **file_fingerprint(path)})
    return columns, merged, report


def _clean_field(text: str) -> str:
    return text.replace("\r\n", " ").replace("\t", " ").replace("\r", " ").replace("\n", " ")


def items_tsv_text(
    item_original_ids: Sequence[str], paths: Sequence[Path], keys: Sequence[str | None], item_col: str,
    keep_columns: Sequence[str],
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """(``items.tsv`` text, its report for ``prepare.json``, the per-table report) for the kept items.

    ``keep_columns`` (``--item-text-columns``) selects and orders the side-info columns; empty keeps them all. A side
    column named ``itemID`` is written as ``source_itemID``.
    """
    side_columns, side_info, tables = read_item_side_info(paths, keys, item_col)
    if keep_columns:
        missing = [c for c in keep_columns if c not in side_columns]
        if missing:
            raise UserError(
                f"--item-text-columns {', '.join(missing)} not found in "
                f"{', '.join(str(p) for p in paths)} (columns: {', '.join(side_columns)})."
            )
        side_columns = list(keep_columns)
    with_info = sum(1 for original in item_original_ids if original in side_info)
    if with_info == 0:
        raise UserError(
            f"no item id of the interactions (e.g. {item_original_ids[0]!r}) occurs in the key column of "
            f"{', '.join(str(p) for p in paths)} (e.g. {next(iter(side_info))!r}); "
            "check --item-text-key."
        )
    out_columns = ["source_itemID" if c == ITEM_COLUMN else c for c in side_columns]
    item_lines = ["\t".join([ITEM_COLUMN, *(_clean_field(c) for c in out_columns)])]
    for new, original in enumerate(item_original_ids):
        values = side_info.get(original, {})
        item_lines.append("\t".join([str(new), *(_clean_field(values.get(c, "")) for c in side_columns)]))
    report = {"columns": out_columns, "items_with_side_info": with_info,
              "items_without_side_info": len(item_original_ids) - with_info}
    return "\n".join(item_lines) + "\n", report, tables


def copy_images(image_dir: Path, item_original_ids: Sequence[str], target: Path) -> dict[str, Any]:
    """Copy the image of every item that has one to ``target/<itemID>.<ext>``; the report for ``prepare.json``.

    Of several files of one item (``12.jpg``, ``12.png``) the suffix listed first in ``IMAGE_SUFFIXES`` wins.
    """
    if not image_dir.is_dir():
        raise UserError(f"image folder {image_dir} does not exist or is not a folder; check --images.")
    by_stem: dict[str, Path] = {}
    for path in sorted(image_dir.iterdir()):
        suffix = path.suffix.lower()
        if path.name.startswith(".") or suffix not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if is_preferred_image(path, by_stem.get(path.stem)):
            by_stem[path.stem] = path
    matched = [(new, by_stem[original]) for new, original in enumerate(item_original_ids) if original in by_stem]
    if not matched:
        example = item_original_ids[0] if item_original_ids else "?"
        raise UserError(
            f"image folder {image_dir} has no image named by an original item id (e.g. {example}.jpg) for any of the "
            f"{len(item_original_ids)} items; name images <original item id>.<ext>."
        )
    target.mkdir()
    digest = hashlib.sha256()
    for new, source in matched:
        data = source.read_bytes()
        (target / f"{new}{source.suffix.lower()}").write_bytes(data)
        # The folder digest covers which file became which id and the file's bytes.
        digest.update(f"{source.name}\t{new}\t{hashlib.sha256(data).hexdigest()}\n".encode())
    return {
        "path": str(image_dir),
        "images_found": len(by_stem),
        "items_with_image": len(matched),
        "items_without_image": len(item_original_ids) - len(matched),
        "sha256_of_used_images": digest.hexdigest(),
    }
