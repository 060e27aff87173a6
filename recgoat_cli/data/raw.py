"""Reading raw interaction and item tables: CSV / TSV / Parquet (polars) and RecBole atomic files.

The format is chosen by suffix when ``fmt="auto"``; a RecBole atomic folder ``<x>/`` holds ``<x>.inter`` (and maybe
``<x>.item``), and RecBole header fields such as ``user_id:token`` lose their ``:type`` suffix. Ids are read as
strings (whitespace stripped) and may be any text; an empty id is an error naming its line. Ratings and timestamps
must be numbers (timestamps may also be ISO-8601 datetimes, kept as Unix seconds). The rating and time columns are
optional while they keep their default names (``rating``, ``timestamp``): a table without them simply has none. A
column named explicitly must exist. Every problem is a ``UserError`` naming the file, line and flag.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recgoat_cli.artifacts.manifest import sha256_file
from recgoat_cli.data.layout import INTER_SUFFIX
from recgoat_cli.errors import UserError

FORMATS = ("auto", "csv", "tsv", "parquet", "recbole")
DEFAULT_USER_COL = "user_id"
DEFAULT_ITEM_COL = "item_id"
DEFAULT_RATING_COL = "rating"
DEFAULT_TIME_COL = "timestamp"
ROW_COLUMN = "__recgoat_row"  # position of a row in its file; a name no real table uses
RECBOLE_ITEM_SUFFIX = ".item"


@dataclass
class Interactions:
    """Interactions as read: string ids, optional float ratings / times, and each row's position in the file."""

    path: Path
    frame: pl.DataFrame  # columns: user, item, [rating], [time], ROW_COLUMN
    has_header_line: bool
    rating_col: str | None
    time_col: str | None
    time_was_datetime: bool = False

    def where(self, row: int) -> str:
        return row_location(self.path, row, self.has_header_line)


def row_location(path: Path, row: int, has_header_line: bool) -> str:
    if has_header_line:
        return f"{path}, line {row + 2}"  # line 1 is the header
    return f"{path}, row {row + 1}"


def resolve_format(source: Path, fmt: str) -> str:
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not known; use one of {', '.join(FORMATS)}.")
    if fmt != "auto":
        return fmt
    if source.is_dir():
        return "recbole"
    suffix = source.suffix.lower()
    by_suffix = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
                 INTER_SUFFIX: "recbole"}
    if suffix not in by_suffix:
        raise UserError(
            f"cannot tell the format of {source} from its suffix {suffix!r}; pass --format csv, tsv, parquet or recbole."
        )
    return by_suffix[suffix]


def _recbole_files(source: Path) -> tuple[Path, Path | None]:
    """The ``.inter`` file of a RecBole atomic dataset and its ``.item`` file when there is one."""
    if source.is_dir():
        inter = source / f"{source.name}{INTER_SUFFIX}"
        if not inter.is_file():
            found = sorted(p.name for p in source.glob(f"*{INTER_SUFFIX}"))
            hint = f" (found {', '.join(found)}; pass that file instead)" if found else ""
            raise UserError(f"RecBole folder {source} has no {inter.name}{hint}.")
    else:
        inter = source
    item = inter.with_suffix(RECBOLE_ITEM_SUFFIX)
    return inter, item if item.is_file() else None


def _strip_recbole_types(columns: Sequence[str]) -> list[str]:
    return [c.split(":", 1)[0] for c in columns]


def _read_text_table(path: Path, separator: str, quoted: bool, recbole: bool, what: str) -> pl.DataFrame:
    """All-string table from a delimited text file; polars errors become one-sentence UserErrors."""
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist; check the path.")
    if path.stat().st_size == 0:
        raise UserError(f"{what} {path} is empty; it needs a header line and at least one row.")
    try:
        frame = pl.read_csv(
            path,
            separator=separator,
            has_header=True,
            infer_schema=False,
            quote_char='"' if quoted else None,
            truncate_ragged_lines=False,
        )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"cannot read {what} {path} as {'RecBole atomic' if recbole else 'delimited'} text with separator "
            f"{separator!r} ({first_line}); check the file or pass --sep."
        ) from error
    if recbole:
        frame.columns = _strip_recbole_types(frame.columns)
    return frame


def read_raw_table(path: Path, fmt: str, sep: str | None, what: str) -> tuple[pl.DataFrame, bool]:
    """(table, has_header_line) for an interaction or item table in csv/tsv/parquet/recbole format."""
    if fmt == "parquet":
        if sep is not None:
            raise UserError(f"--sep applies to CSV/TSV/RecBole text, not to the Parquet file {path}; drop --sep.")
        if not path.is_file():
            raise UserError(f"{what} {path} does not exist; check the path.")
        try:
            return pl.read_parquet(path), False
        except (pl.exceptions.PolarsError, OSError) as error:
            raise UserError(f"cannot read {what} {path} as Parquet ({error}); check the file or pass --format.") from error
    default_sep = {"csv": ",", "tsv": "\t", "recbole": "\t"}[fmt]
    separator = sep if sep is not None else default_sep
    if len(separator) != 1:
        raise UserError(f"--sep must be a single character, got {separator!r}.")
    # CSV follows the quoting rules; TSV and RecBole files carry raw text, where a lone quote is just a character.
    frame = _read_text_table(path, separator, quoted=fmt == "csv", recbole=fmt == "recbole", what=what)
    return frame, True


def _require_column(frame: pl.DataFrame, column: str, path: Path, flag: str) -> None:
    if column not in frame.columns:
        raise UserError(
            f"{path} has no column {column!r} (columns: {', '.join(frame.columns)}); pass {flag} with one of them."
        )


def _string_ids(frame: pl.DataFrame, column: str, where: Callable[[int], str], what: str) -> pl.Series:
    series = frame[column]
    if series.dtype != pl.String:
        series = series.cast(pl.String)
    series = series.str.strip_chars()
    empty = series.is_null() | (series == "")
    if empty.any():
        row = int(empty.arg_max())
        raise UserError(f"{where(row)}: column {column!r} has an empty {what}; every interaction needs one.")
    return series


def _numeric_column(frame: pl.DataFrame, column: str, where: Callable[[int], str], what: str,
                    allow_datetime: bool) -> tuple[np.ndarray, bool]:
    """float64 values of a rating/time column and whether they were parsed from datetimes."""
    series = frame[column]
    if series.dtype.is_temporal() and allow_datetime:
        seconds = series.cast(pl.Datetime("us")).dt.epoch("us").cast(pl.Float64) / 1e6
        missing = seconds.is_null()
        if missing.any():
            raise UserError(f"{where(int(missing.arg_max()))}: column {column!r} has an empty {what}; fill it in.")
        return seconds.to_numpy(), True
    if series.dtype == pl.String:
        text = series.str.strip_chars()
        missing = text.is_null() | (text == "")
        if missing.any():
            raise UserError(f"{where(int(missing.arg_max()))}: column {column!r} has an empty {what}; fill it in.")
        numbers = text.cast(pl.Float64, strict=False)
        bad = numbers.is_null() | numbers.is_nan()
        if bad.any() and allow_datetime and bad.all():
            parsed = text.str.to_datetime(strict=False, time_unit="us")
            if parsed.is_not_null().all():
                return (parsed.dt.epoch("us").cast(pl.Float64) / 1e6).to_numpy(), True
        if bad.any():
            row = int(bad.arg_max())
            raise UserError(
                f"{where(row)}: column {column!r} holds {text[row]!r}, not a number; every {what} must be numeric."
            )
        return numbers.to_numpy(), False
    if series.dtype.is_numeric():
        numbers = series.cast(pl.Float64)
        bad = numbers.is_null() | numbers.is_nan()
        if bad.any():
            raise UserError(f"{where(int(bad.arg_max()))}: column {column!r} has an empty {what}; fill it in.")
        return numbers.to_numpy(), False
    raise UserError(f"column {column!r} has type {series.dtype}; a {what} must be a number.")


def _optional_column(frame: pl.DataFrame, column: str | None, default: str, path: Path, flag: str) -> str | None:
    """The column to use, or None: a default-named column may be absent; an explicitly named one must exist."""
    if column is None:
        return None
    if column in frame.columns:
        return column
    if column == default:
        return None
    _require_column(frame, column, path, flag)
    return None  # unreachable: _require_column raised


def read_interactions(
    source: Path, *, fmt: str, sep: str | None, user_col: str, item_col: str, rating_col: str | None,
    time_col: str | None,
) -> tuple[Interactions, Path | None]:
    """Interactions of ``source`` and, for RecBole input, its ``.item`` file when there is one.

    ``rating_col`` / ``time_col`` None means none; their default names may be absent from the table.
    """
    if not source.exists():
        raise UserError(f"interaction source {source} does not exist; check the path.")
    fmt = resolve_format(source, fmt)
    recbole_item = None
    path = source
    if fmt == "recbole":
        path, recbole_item = _recbole_files(source)
    elif source.is_dir():
        raise UserError(f"{source} is a folder; pass the interaction file itself, or --format recbole for a RecBole folder.")
    raw, has_header = read_raw_table(path, fmt, sep, "interaction file")
    if raw.height == 0:
        raise UserError(f"interaction file {path} has a header but no rows; it needs at least one interaction.")
    _require_column(raw, user_col, path, "--user-col")
    _require_column(raw, item_col, path, "--item-col")
    if item_col == user_col:
        raise UserError(f"--user-col and --item-col both name {user_col!r}; they must be different columns.")
    rating_col = _optional_column(raw, rating_col, DEFAULT_RATING_COL, path, "--rating-col")
    time_col = _optional_column(raw, time_col, DEFAULT_TIME_COL, path, "--time-col")

    def where(row: int) -> str:
        return row_location(path, row, has_header)

    columns = {
        "user": _string_ids(raw, user_col, where, "user id"),
        "item": _string_ids(raw, item_col, where, "item id"),
    }
    time_was_datetime = False
    if rating_col is not None:
        columns["rating"] = pl.Series(_numeric_column(raw, rating_col, where, "rating", allow_datetime=False)[0])
    if time_col is not None:
        times, time_was_datetime = _numeric_column(raw, time_col, where, "timestamp", allow_datetime=True)
        columns["time"] = pl.Series(times)
    columns[ROW_COLUMN] = pl.Series(np.arange(raw.height, dtype=np.int64))
    frame = pl.DataFrame(columns)
    return Interactions(path, frame, has_header, rating_col, time_col, time_was_datetime), recbole_item


def file_fingerprint(path: Path) -> dict[str, Any]:
    """sha256 and size of an input file, for the record of what was read."""
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}

