"""The dataset loader accepts the MMRec layout and names the file and line of every problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recgoat_cli.data.dataset import load_dataset, resolve_dataset, sample_data_dir
from recgoat_cli.errors import UserError

GOOD = "userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n1\t1\t0\n1\t2\t2\n2\t0\t0\n"


def _dataset(tmp_path: Path, text: str, name: str = "toy") -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / f"{name}.inter").write_text(text)
    return root


def test_loads_splits_and_sizes(tmp_path):
    ds = load_dataset(_dataset(tmp_path, GOOD))
    assert (ds.n_users, ds.n_items) == (3, 3)
    assert ds.split("train")[0].tolist() == [0, 1, 2]
    assert ds.split("train")[1].tolist() == [0, 1, 0]
    assert ds.split("valid")[1].tolist() == [1]
    assert ds.split("test")[0].tolist() == [1]
    assert ds.summary()["interactions"] == {"train": 3, "valid": 1, "test": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("userID\titemID\n0\t0\n", "no column x_label"),
        ("userID\titemID\tx_label\n0\tabc\t0\n", "line 2 column itemID is 'abc'"),
        ("userID\titemID\tx_label\n0\t0\t0\n-1\t0\t0\n", "line 3 column userID is negative"),
        ("userID\titemID\tx_label\n0\t0\t0\n1\t1\t7\n", "line 3 has x_label 7"),
        ("userID\titemID\tx_label\n0\t0\t1\n1\t1\t2\n", "no train interactions"),
        ("userID\titemID\tx_label\n0\t0\t0\n0\t0\t2\n", "lines 2 and 3 repeat the interaction"),
        ("userID\titemID\tx_label\n0\t0\t0\n2\t1\t0\n", "column userID skips id 1"),
        ("userID\titemID\tx_label\n", "no interactions"),
        ("", "is empty"),
        ("userID\titemID\titemID\tx_label\n0\t0\t0\t0\n", "repeats a column name"),
    ],
)
def test_bad_inter_files_are_user_errors(tmp_path, text, expected):
    with pytest.raises(UserError, match=expected.replace("(", r"\(")):
        load_dataset(_dataset(tmp_path, text))


def test_resolve_sample_and_paths(tmp_path, monkeypatch):
    assert resolve_dataset("sample") == sample_data_dir()
    root = _dataset(tmp_path, GOOD)
    assert resolve_dataset(str(root)) == root.resolve()
    assert resolve_dataset("toy", data_root=tmp_path) == root.resolve()
    monkeypatch.setenv("RECGOAT_DATA", str(tmp_path))
    assert resolve_dataset("toy") == root.resolve()
    with pytest.raises(UserError, match="dataset 'nope' not found"):
        resolve_dataset("nope", data_root=tmp_path)


def test_sample_data_loads():
    ds = load_dataset(sample_data_dir(), "sample")
    assert ds.n_users > 100 and ds.n_items > 100
    assert ds.item_table is not None and ds.image_dir is not None
    train = set(zip(*ds.split("train")))
    test = set(zip(*ds.split("test")))
    assert not train & test
    assert np.unique(ds.split("train")[0]).size == ds.n_users


def test_id_maps_keep_long_original_ids():
    from recgoat_cli.data.dataset import read_id_map

    ds = load_dataset(sample_data_dir(), "sample")
    users = read_id_map(ds.user_map, ds.n_users)
    items = read_id_map(ds.item_map, ds.n_items)
    assert len(set(users)) == ds.n_users and len(set(items)) == ds.n_items
    assert users[7] == "u0119" and items[42] == "sku-0905"  # rows 9 and 44 of the shipped maps


def test_id_maps_tab_separated_like_mmrec(tmp_path):
    from recgoat_cli.data.dataset import read_id_map

    path = tmp_path / "i_id_mapping.csv"
    path.write_text("asin\titemID\n097293751X\t1\nB00LONGASIN\t0\n")
    assert read_id_map(path, 2).tolist() == ["B00LONGASIN", "097293751X"]
