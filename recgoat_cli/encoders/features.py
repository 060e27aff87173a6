"""Precomputed item features (``--feature NAME=path.npy``): parsing the flag and validating the file.

A feature file is a plain ``.npy`` array (``numpy.save``) of shape ``[n_items, d]`` whose row ``i`` belongs to
item id ``i``. It is read with ``allow_pickle=False``: object arrays and pickles are refused. Float arrays of
any width, integer and boolean arrays (counts, one-hot tags) are accepted and converted to float32; anything
else (strings, complex, structured) is refused. Every value must be finite after the conversion, so a float64
value beyond float32's range is an error, not a silent ``inf``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from recgoat_cli.errors import UserError
from recgoat_cli.limits import check_npy_size, read_npy_header, require_memory

FEATURE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
ACCEPTED_KINDS = {"f": "float", "i": "integer", "u": "unsigned integer", "b": "boolean"}


def parse_feature_spec(spec: str) -> tuple[str, Path]:
    """Split a ``--feature`` value ``NAME=path`` into ``(NAME, Path(path))``.

    ``NAME`` is letters, digits, ``_`` and ``-``; the path is not checked here (``load_feature_file`` does).
    """
    name, sep, path = spec.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not name or not path:
        raise UserError(f"--feature {spec!r} is not NAME=path; write it like `--feature audio=data/audio_feat.npy`.")
    if not FEATURE_NAME.match(name):
        raise UserError(
            f"--feature name {name!r} may contain only letters, digits, '_' and '-'; write it like "
            f"`--feature audio=data/audio_feat.npy`."
        )
    return name, Path(path).expanduser()


def load_feature_file(path: str | Path, n_items: int, name: str) -> np.ndarray:
    """Load and validate feature ``name`` from ``path``: float32 ``[n_items, d]``, all values finite.

    Raises:
        UserError: missing or unreadable file, pickled or object data, an ``.npz`` archive, not 2-D, a refused
            dtype, the wrong number of rows, no columns, or a non-finite value (naming its first row).
    """
    path = Path(path)
    label = f"feature {name!r} file {path}"
    if not path.is_file():
        raise UserError(f"{label} does not exist; pass `--feature {name}=PATH` with an existing .npy file.")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic.startswith(b"PK"):
        raise UserError(f"{label} is an .npz archive; save the single [items, dims] array with numpy.save as .npy.")
    if not magic:
        raise UserError(f"{label} is empty (0 bytes); save a numeric array with numpy.save.")
    if magic[:1] == b"\x80":  # the opcode every pickle of protocol 2 or later starts with
        raise UserError(
            f"{label} is a pickle, not a plain .npy array (pickled objects are refused); save a numeric array with "
            f"numpy.save."
        )
    if magic != b"\x93NUMPY":
        # Without the .npy magic numpy would try to unpickle the file; say what it is instead.
        raise UserError(f"{label} is not an .npy file (no .npy header); save a numeric array with numpy.save.")
    # Everything below is decided from the header alone: a header may declare 10^12 x 4096 over a few bytes.
    shape, _, dtype, offset = read_npy_header(path, label)
    if dtype.hasobject:
        raise UserError(
            f"{label} is not a plain .npy array (pickled objects are refused); save a numeric array with numpy.save."
        )
    if dtype.kind not in ACCEPTED_KINDS:
        raise UserError(
            f"{label} has dtype {dtype}; only float, integer and boolean arrays are accepted (converted to float32)."
        )
    if len(shape) != 2:
        raise UserError(
            f"{label} has shape {shape}; it must be 2-D [items, dims] with row i for item id i "
            f"(reshape a 1-D array to [items, 1])."
        )
    if shape[0] != n_items:
        raise UserError(f"{label} has {shape[0]} rows but the dataset has {n_items} items; row i must belong to item id i.")
    if shape[1] == 0:
        raise UserError(f"{label} has 0 columns; a feature needs at least one dimension.")
    declared = check_npy_size(path, label, shape, dtype, offset)
    # the file is mapped, not read; the float32 copy and the finiteness mask are what take memory
    require_memory({f"{label} ({shape[0]} x {shape[1]} {dtype})": declared + shape[0] * shape[1] * (4 + 1)}, "to load",
                   fix="reduce its dimensions or use a machine with more memory")
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"{label} is not a readable .npy array ({err}); save it with numpy.save.") from err
    with np.errstate(over="ignore"):  # a copy even when the file is float32 already: nothing keeps the file mapped
        features = np.array(array, dtype=np.float32, order="C", copy=True)
    finite_rows = np.isfinite(features).all(axis=1)
    if not finite_rows.all():
        first_bad = int(np.flatnonzero(~finite_rows)[0])
        beyond_float32 = np.isfinite(array[first_bad].astype(np.float64)).all()
        what = "values beyond float32 range" if beyond_float32 else "NaN or infinite values"
        raise UserError(
            f"{label} has {what} in row {first_bad} (item id {first_bad}) and {int((~finite_rows).sum())} such rows "
            f"in all; fix or impute them before embedding."
        )
    return features
