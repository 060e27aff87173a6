"""Find a dataset folder by name and load it, checking the MMRec layout.

A dataset is a folder holding ``<name>.inter`` (tab separated, header ``userID itemID x_label``, with
0/1/2 = train/valid/test and ids that are contiguous integers from 0), and optionally ``items.tsv`` (item
text, header ``itemID`` + columns), ``*_feat.npy`` (precomputed item features, row i = item i), an
``images/`` folder (``<itemID>.<ext>``, one of ``layout.IMAGE_SUFFIXES``) and ``u_id_mapping.csv`` / ``i_id_mapping.csv`` (original id ->
new id).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recgoat_cli.artifacts.manifest import sha256_file
from recgoat_cli.data.layout import (
    FEATURE_SUFFIX,
    IMAGES_DIR,
    INTER_SUFFIX,
    ITEM_COLUMN,
    ITEM_MAPPING_FILE,
    ITEMS_FILE,
    REQUIRED_COLUMNS,
    SPLIT_COLUMN,
    SPLITS,
    TEST,
    TIMESTAMP_COLUMN,
    TRAIN,
    USER_COLUMN,
    USER_MAPPING_FILE,
    VALID,
    inter_file_name,
)
from recgoat_cli.errors import UserError
from recgoat_cli.limits import check_id_range


def sample_data_dir() -> Path:
    """The shipped ``sample_data/`` next to the package (a source checkout or an editable install)."""
    return Path(__file__).resolve().parents[2] / "sample_data"


def default_data_root() -> Path:
    return Path(os.environ.get("RECGOAT_DATA", "data"))


def resolve_dataset(name: str, data_root: Path | None = None) -> Path:
    """``sample`` -> shipped sample data; an existing path -> itself; otherwise ``<data_root>/<name>``."""
    if name == "sample":
        path = sample_data_dir()
        if not path.is_dir():
            raise UserError(f"the shipped sample data is not at {path}; run recgoat from a source checkout.")
        return path
    root = data_root if data_root is not None else default_data_root()
    for path in (root / name, Path(name).expanduser()):
        if path.is_dir():
            return path.resolve()
    raise UserError(
        f"dataset '{name}' not found: {root / name} does not exist; pass --data-root (or set RECGOAT_DATA), "
        "a path to the folder, or create it with `recgoat prepare`."
    )


def dataset_key(path: Path) -> str:
    """The name under which a dataset's artifacts are stored: the folder name (``sample`` for sample_data)."""
    return "sample" if path.resolve() == sample_data_dir().resolve() else path.name


@dataclass
class Dataset:
    name: str
    root: Path
    inter_file: Path
    n_users: int
    n_items: int
    #: split name -> (users int64 [n], items int64 [n])
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    timestamps: dict[str, np.ndarray] | None = None
    item_table: Path | None = None
    feature_files: dict[str, Path] = field(default_factory=dict)
    image_dir: Path | None = None
    user_map: Path | None = None
    item_map: Path | None = None
    _input_hashes: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self.splits[name]

    def input_hashes(self) -> dict[str, str]:
        """sha256 of the interaction file and the id maps: what every stage's artifact id depends on.

        Hashed once per loaded dataset (every stage asks twice: for its artifact id and for its manifest);
        the caller gets its own copy to extend.
        """
        if self._input_hashes is None:
            files = [self.inter_file, self.user_map, self.item_map]
            self._input_hashes = {p.name: sha256_file(p) for p in files if p is not None}
        return dict(self._input_hashes)

    def summary(self) -> dict:
        counts = {s: int(len(self.splits[s][0])) for s in SPLITS}
        train_users = np.unique(self.splits["train"][0])
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": counts,
            "users_without_train": int(self.n_users - len(train_users)),
            "items_without_train": int(self.n_items - len(np.unique(self.splits["train"][1]))),
        }


def find_inter_file(root: Path) -> Path:
    preferred = root / inter_file_name(root.name)
    if preferred.is_file():
        return preferred
    found = sorted(root.glob(f"*{INTER_SUFFIX}"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise UserError(f"{root} holds no <name>.inter file; create the dataset with `recgoat prepare`.")
    raise UserError(f"{root} holds several .inter files ({', '.join(p.name for p in found)}); keep one per dataset folder.")


def first_malformed_line(path: Path, n_fields: int) -> str | None:
    """Where a tab-separated file stops being ``n_fields`` UTF-8 fields per line, said as "line N ...", or None.

    A parser reports a ragged row or a bad byte by offset or not at all; this names the line for the user.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                return f"line {number} is not UTF-8 text"
            if not line.strip():
                return f"line {number} is blank"
            fields = line.count("\t") + 1
            if fields != n_fields:
                return f"line {number} has {fields} tab-separated fields but the header has {n_fields}"
    return None


def _read_inter(path: Path):
    import polars as pl

    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty; it needs the header userID, itemID, x_label and one row per interaction.")
    try:
        with open(path, "rb") as handle:
            header = handle.readline().decode("utf-8").rstrip("\r\n").split("\t")
    except UnicodeDecodeError:
        raise UserError(f"{path} line 1 is not UTF-8 text; write the header userID, itemID, x_label.") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise UserError(f"{path} has no column {missing[0]} (header: {', '.join(header)}); the MMRec layout needs userID, itemID, x_label.")
    if len(set(header)) != len(header):
        raise UserError(f"{path} line 1 repeats a column name ({', '.join(header)}); keep each column once.")
    if (problem := first_malformed_line(path, len(header))) is not None:
        raise UserError(f"{path} {problem}; fix that row (one tab-separated value per header column).")
    try:
        frame = pl.read_csv(path, separator="\t", infer_schema_length=0, quote_char=None)
    except pl.exceptions.PolarsError as exc:
        line = str(exc).splitlines()[0]
        raise UserError(f"{path} cannot be parsed as a tab-separated table ({line}); fix the malformed row.") from None
    return frame


def _integer_column(frame, path: Path, column: str) -> np.ndarray:
    import polars as pl

    values = frame[column]
    parsed = values.str.strip_chars().cast(pl.Int64, strict=False)
    bad = (parsed.is_null()).arg_true()
    if len(bad):
        row = int(bad[0])
        value = values[row]
        if value is not None and value.strip().lstrip("+-").isdecimal() and value.strip().isascii():
            what = f"{value.strip()}, beyond the 64-bit integer range"
        else:
            what = "empty" if value is None or not value.strip() else f"'{value}', not an integer"
        raise UserError(f"{path} line {row + 2} column {column} is {what}; ids and x_label must be integers.")
    array = parsed.to_numpy().astype(np.int64)
    negative = np.flatnonzero(array < 0)
    if len(negative):
        row = int(negative[0])
        raise UserError(f"{path} line {row + 2} column {column} is negative ({array[row]}); ids start at 0.")
    return array


def _count_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        return max(sum(1 for line in handle if line.strip()) - 1, 0)


def load_dataset(root: Path, name: str | None = None) -> Dataset:
    """Load and validate a dataset folder; every problem is a ``UserError`` naming the file and line."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root} is not a dataset folder.")
    inter = find_inter_file(root)
    frame = _read_inter(inter)
    if frame.height == 0:
        raise UserError(f"{inter} has a header but no interactions.")
    users = _integer_column(frame, inter, USER_COLUMN)
    items = _integer_column(frame, inter, ITEM_COLUMN)
    labels = _integer_column(frame, inter, SPLIT_COLUMN)
    unknown = np.flatnonzero(~np.isin(labels, (TRAIN, VALID, TEST)))
    if len(unknown):
        row = int(unknown[0])
        raise UserError(f"{inter} line {row + 2} has x_label {labels[row]}; use 0 (train), 1 (valid) or 2 (test).")

    user_map = root / USER_MAPPING_FILE
    item_map = root / ITEM_MAPPING_FILE
    user_map = user_map if user_map.is_file() else None
    item_map = item_map if item_map.is_file() else None
    n_users = _count_rows(user_map) if user_map is not None else 0
    n_items = _count_rows(item_map) if item_map is not None else 0
    # before any array is sized by an id: a hostile id (10^12) must be an error here, not an allocation
    check_id_range(inter, USER_COLUMN, users, frame.height, user_map, n_users)
    check_id_range(inter, ITEM_COLUMN, items, frame.height, item_map, n_items)
    n_users = max(n_users, int(users.max()) + 1)
    n_items = max(n_items, int(items.max()) + 1)

    keys = users * n_items + items
    order = np.argsort(keys, kind="stable")
    dup = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if len(dup):
        first, second = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        raise UserError(
            f"{inter} lines {first + 2} and {second + 2} repeat the interaction user {users[first]} item {items[first]}; "
            "keep each (user, item) once (recgoat prepare deduplicates)."
        )

    _check_contiguous(inter, USER_COLUMN, users, n_users, user_map)
    _check_contiguous(inter, ITEM_COLUMN, items, n_items, item_map)

    splits = {s: (users[labels == code], items[labels == code]) for code, s in enumerate(SPLITS)}
    if len(splits["train"][0]) == 0:
        raise UserError(f"{inter} has no train interactions (x_label 0); every model needs a train split.")
    timestamps = None
    if TIMESTAMP_COLUMN in frame.columns:
        import polars as pl

        ts = frame[TIMESTAMP_COLUMN].cast(pl.Float64, strict=False).to_numpy()
        timestamps = {s: ts[labels == code] for code, s in enumerate(SPLITS)}

    features = {p.name[: -len(FEATURE_SUFFIX)]: p for p in sorted(root.glob(f"*{FEATURE_SUFFIX}"))}
    images = root / IMAGES_DIR
    items_tsv = root / ITEMS_FILE
    return Dataset(
        name=name or root.name,
        root=root,
        inter_file=inter,
        n_users=n_users,
        n_items=n_items,
        splits=splits,
        timestamps=timestamps,
        item_table=items_tsv if items_tsv.is_file() else None,
        feature_files=features,
        image_dir=images if images.is_dir() else None,
        user_map=user_map,
        item_map=item_map,
    )


def _check_contiguous(path: Path, column: str, ids: np.ndarray, n: int, mapping: Path | None) -> None:
    if mapping is not None:  # ids within the map's rows were checked by check_id_range; the map may hold more
        return
    present = np.zeros(n, dtype=bool)
    present[ids] = True
    if not present.all():
        gap = int(np.flatnonzero(~present)[0])
        raise UserError(
            f"{path} column {column} skips id {gap} (ids must be contiguous from 0 to {n - 1}); "
            "remap the ids with `recgoat prepare`."
        )


def read_id_map(path: Path | None, n: int) -> np.ndarray:
    """Original ids (as strings) indexed by new id; the new id itself when there is no mapping file."""
    if path is None:
        return np.arange(n).astype(str)
    import polars as pl

    with open(path, encoding="utf-8") as handle:
        separator = "\t" if "\t" in handle.readline() else ","
    frame = pl.read_csv(path, separator=separator, infer_schema_length=0, quote_char=None)
    new_col = frame.columns[-1]
    orig_col = frame.columns[0]
    new_ids = frame[new_col].cast(pl.Int64, strict=False)
    if new_ids.null_count():
        raise UserError(f"{path} column {new_col} holds a non-integer id; regenerate it with `recgoat prepare`.")
    if len(new_ids) and (new_ids.min() < 0 or new_ids.max() >= n):
        raise UserError(f"{path} column {new_col} holds id {new_ids.max() if new_ids.max() >= n else new_ids.min()}, outside 0 to {n - 1}; regenerate it with `recgoat prepare`.")
    # an object array until the end: a fixed-width str array would truncate longer ids on assignment
    originals = np.array([str(i) for i in range(n)], dtype=object)
    originals[new_ids.to_numpy()] = frame[orig_col].to_numpy().astype(str)
    return originals.astype(str)
