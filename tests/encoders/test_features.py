"""Tests for recgoat_cli/encoders/features.py: the --feature flag and feature-file validation."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from recgoat_cli.encoders.features import load_feature_file, parse_feature_spec
from recgoat_cli.errors import UserError

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.mark.parametrize(
    ("spec", "name", "path"),
    [
        ("audio=data/audio_feat.npy", "audio", Path("data/audio_feat.npy")),
        ("image_v2=/abs/x.npy", "image_v2", Path("/abs/x.npy")),
        ("clip-L14=a=b.npy", "clip-L14", Path("a=b.npy")),  # only the first '=' splits
        (" text = t.npy ", "text", Path("t.npy")),
    ],
)
def test_parse_feature_spec_accepts_name_equals_path(spec: str, name: str, path: Path) -> None:
    assert parse_feature_spec(spec) == (name, path)


@pytest.mark.parametrize("spec", ["audio", "=x.npy", "audio=", "au dio=x.npy", "audio.v2=x.npy", "ä=x.npy"])
def test_parse_feature_spec_rejects_bad_syntax_or_name(spec: str) -> None:
    with pytest.raises(UserError, match="--feature"):
        parse_feature_spec(spec)


@pytest.mark.parametrize(("n_items", "dim"), [(1, 1), (5, 3), (40, 16)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64, np.uint8, np.bool_])
def test_numeric_arrays_load_as_float32(tmp_path: Path, n_items: int, dim: int, dtype: type) -> None:
    values = (np.arange(n_items * dim).reshape(n_items, dim) % 7).astype(dtype)
    path = tmp_path / "feat.npy"
    np.save(path, values)
    loaded = load_feature_file(path, n_items, "audio")
    assert loaded.dtype == np.float32 and loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, values.astype(np.float32))


def test_real_tiktok_features_load() -> None:
    folder = SHARED_DATA / "tiktok"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the shared real datasets exist only next to the developers' checkout")
    for name in ("image_feat", "audio_feat"):
        features = load_feature_file(folder / f"{name}.npy", 6710, name)
        assert features.shape == (6710, 128) and features.dtype == np.float32
        assert np.isfinite(features).all()


def _write(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def test_wrong_row_count_names_file_and_counts(tmp_path: Path) -> None:
    path = _write(tmp_path / "short.npy", np.zeros((4, 2), dtype=np.float32))
    with pytest.raises(UserError, match=r"short\.npy.* 4 rows .* 5 items"):
        load_feature_file(path, 5, "audio")


@pytest.mark.parametrize(("bad_value", "what"), [(np.nan, "NaN"), (np.inf, "infinite"), (1e300, "float32 range")])
def test_non_finite_value_names_first_bad_row(tmp_path: Path, bad_value: float, what: str) -> None:
    values = np.ones((6, 3), dtype=np.float64)
    values[2, 1] = bad_value
    values[4, 0] = bad_value
    path = _write(tmp_path / "nan.npy", values)
    with pytest.raises(UserError, match=rf"nan\.npy has .*{what}.* row 2 .*2 such rows"):
        load_feature_file(path, 6, "audio")


@pytest.mark.parametrize("shape", [(5,), (5, 2, 2), ()])
def test_not_two_dimensional_is_refused(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = _write(tmp_path / "flat.npy", np.zeros(shape, dtype=np.float32))
    with pytest.raises(UserError, match=r"flat\.npy has shape .* 2-D"):
        load_feature_file(path, 5, "audio")


def test_zero_columns_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty_cols.npy", np.zeros((5, 0), dtype=np.float32))
    with pytest.raises(UserError, match=r"empty_cols\.npy has 0 columns"):
        load_feature_file(path, 5, "audio")


def test_object_array_npy_is_refused_as_pickled(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([[1.0, None]] * 5, dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match=r"objects\.npy is not a plain \.npy array \(pickled objects are refused\)"):
        load_feature_file(path, 5, "audio")


def test_pickle_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "features.npy"
    path.write_bytes(pickle.dumps(np.zeros((5, 2))))
    with pytest.raises(UserError, match=r"features\.npy is a pickle.*pickled objects are refused"):
        load_feature_file(path, 5, "audio")


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"not numpy at all", "is not an .npy file"), (None, "is an .npz archive")],
)
def test_other_non_npy_files_are_refused(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "weird.npy"
    if content is None:
        with open(path, "wb") as handle:
            np.savez(handle, a=np.zeros((5, 2)))
    else:
        path.write_bytes(content)
    with pytest.raises(UserError, match=rf"weird\.npy {message}"):
        load_feature_file(path, 5, "audio")


def test_truncated_npy_is_refused(tmp_path: Path) -> None:
    full = _write(tmp_path / "full.npy", np.ones((50, 4), dtype=np.float32))
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(full.read_bytes()[:200])
    with pytest.raises(UserError, match=r"truncated\.npy is not a readable \.npy array"):
        load_feature_file(truncated, 50, "audio")


@pytest.mark.parametrize("array", [np.array([["a", "b"]] * 5), np.ones((5, 2), dtype=np.complex64)])
def test_non_numeric_dtype_is_refused(tmp_path: Path, array: np.ndarray) -> None:
    path = _write(tmp_path / "typed.npy", array)
    with pytest.raises(UserError, match=r"typed\.npy has dtype"):
        load_feature_file(path, 5, "audio")


def test_missing_file_names_flag(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"feature 'audio' file .*absent\.npy does not exist.*--feature audio="):
        load_feature_file(tmp_path / "absent.npy", 5, "audio")
