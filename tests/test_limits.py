"""Tests for recgoat_cli/limits.py: sizes from input are compared with what the input justifies and with free memory,
with hand-computed estimates; sizes far beyond any machine (10^18 bytes and more) make the refusals deterministic."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from recgoat_cli import limits
from recgoat_cli.config import TrainConfig
from recgoat_cli.errors import UserError

BEYOND_ANY_MACHINE = 10**21  # bytes: a zebibyte


@pytest.mark.parametrize(("n", "text"), [(0, "0 bytes"), (1023, "1023 bytes"), (1536, "1.5 KiB"), (931 * 2**30, "931.0 GiB"), (2**70, "1,024.0 EiB")])
def test_human_bytes(n, text):
    assert limits.human_bytes(n) == text


def test_available_memory_is_memavailable_of_proc_meminfo():
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        pytest.skip("no /proc/meminfo on this system")
    available = limits.available_memory_bytes()
    line = next(l for l in meminfo.read_text().splitlines() if l.startswith("MemAvailable:"))
    assert available is not None and abs(available - int(line.split()[1]) * 1024) < 2**30  # it moves between reads


def test_require_memory_names_the_costliest_flag_and_passes_what_fits():
    limits.require_memory({"--dim 8": 1024, "--k 5": 2048}, "to do it")
    with pytest.raises(UserError, match=r"^--k 5 needs about 867.4 EiB to do it, but only .* of memory is free; pass a smaller --k\.$"):
        limits.require_memory({"--dim 8": 1024, "--k 5": BEYOND_ANY_MACHINE}, "to do it")


def test_train_memory_of_lightgcn_by_hand():
    config = TrainConfig(model="lightgcn", dim=64, n_layers=3, batch_size=2048)
    parts = limits.train_memory(config, n_users=100, n_items=50, n_train=1000)
    # 150 nodes x 64 x 4 bytes x (4 copies for Adam + 2 x 4 propagated layers); the batch is the 1000 train triples
    assert parts == {"--dim 64": 150 * 64 * 4 * (4 + 8), "--batch-size 2048": 1000 * (64 * 4 * 12 + 48)}


def test_cmcl_rows_and_ot_batch_beyond_the_data_cost_what_the_data_allows():
    """--cmcl-rows 10^12 and --ot-batch 10^12 on 100 users x 50 items: rows never exceed the batch's distinct ids."""
    config = TrainConfig(model="recgoat", dim=8, n_layers=1, batch_size=10**15, cmcl_rows=10**12, ot_batch=10**12)
    parts = limits.train_memory(config, n_users=100, n_items=50, n_train=1000, modality_widths=[16, 32])
    assert parts["--cmcl-rows 1000000000000"] == (50**2 * 2 + 100**2) * 4 * 3
    assert parts["--ot-batch 1000000000000"] == 50**2 * 4 * 8 * 2
    assert parts["--batch-size 1000000000000000"] == 1000 * (8 * 4 * 12 + 48)
    # one head of width 8 over the 16 + 32 LM columns (weights, gradient, Adam) and one layer's output on 150 nodes
    assert parts["--gat-heads 1"] == 1 * 8 * 4 * ((16 + 32) * 4 + 150 * 3 * 1)


@pytest.mark.parametrize(
    ("update", "named"),
    [
        ({"dim": 2_000_000_000}, "--dim 2000000000"),
        ({"batch_size": 10**15, "cmcl_rows": 10**9}, "--batch-size 1000000000000000"),
        ({"gat_heads": 10**9}, "--gat-heads 1000000000"),
        ({"n_layers": 10**9}, "--layers 1000000000"),
    ],
)
def test_check_training_names_the_flag_whose_default_would_fit(update, named):
    config = TrainConfig(model="recgoat", val_metric="recall@20", **update)
    with pytest.raises(UserError, match=rf"^{named} needs about .* to train recgoat on 10000000 users and 1000000 items"):
        limits.check_training(config, n_users=10**7, n_items=10**6, n_train=10**15, modality_widths=[384])


def test_check_training_refuses_a_validation_cutoff_beyond_the_catalogue():
    with pytest.raises(UserError, match=r"--val-metric recall@31: K 31 is larger than the catalogue \(30 items\); pass at most 30\."):
        limits.check_training(TrainConfig(val_metric="recall@31"), 40, 30, 160)
    limits.check_training(TrainConfig(val_metric="recall@30", dim=8), 40, 30, 160)


def test_cutoffs_are_refused_beyond_the_catalogue_never_clamped():
    limits.check_evaluation((10, 30), 40, 30)
    with pytest.raises(UserError, match=r"^--k 4000000000000 is larger than the catalogue \(30 items\); pass at most 30\.$"):
        limits.check_evaluation((10, 4_000_000_000_000), 40, 30)
    with pytest.raises(UserError, match=r"^--top-k 31 is larger"):
        limits.check_export(31, 40, 30)


def test_knn_flags_are_checked_against_the_entities_and_memory():
    from recgoat_cli.config import GraphConfig

    limits.check_graphs(GraphConfig(knn_k=29, user_knn_k=39), n_users=40, n_items=30, has_embed=True)
    with pytest.raises(UserError, match=r"^--knn-k 30 must be smaller than the number of items \(30\)\.$"):
        limits.check_graphs(GraphConfig(knn_k=30), n_users=40, n_items=30, has_embed=True)
    limits.check_graphs(GraphConfig(knn_k=10**12), n_users=40, n_items=30, has_embed=False)  # no item graph is built
    with pytest.raises(UserError, match=r"^--user-knn-k 10\^?.* needs about|^--user-knn-k 100000000000 needs about"):
        limits.check_knn("--user-knn-k", 10**11, 10**12, "users", 512)


def npy_with_header(shape, data: bytes, dtype: str = "<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def test_npy_header_is_read_without_the_data_and_compared_with_the_file(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.ones((5, 3), dtype=np.float32))
    shape, fortran, dtype, offset = limits.read_npy_header(good, "good")
    assert (shape, fortran, dtype, offset) == ((5, 3), False, np.dtype("<f4"), 128)
    assert limits.check_npy_size(good, "good", shape, dtype, offset) == 60

    hostile = tmp_path / "hostile.npy"
    hostile.write_bytes(npy_with_header((10**12, 4096), b"\0" * 16))
    shape, _, dtype, offset = limits.read_npy_header(hostile, "hostile")
    assert shape == (10**12, 4096)
    with pytest.raises(UserError, match=r"^hostile is not a readable \.npy array: its header declares shape \(1000000000000, 4096\) of float32 \(14\.6 PiB\) but the file holds only 16 bytes of data"):
        limits.check_npy_size(hostile, "hostile", shape, dtype, offset)


def test_a_damaged_npy_header_is_one_sentence(tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4'  \n")
    with pytest.raises(UserError, match=r"^x is not a readable \.npy array \(.*\); save it with numpy\.save\.$"):
        limits.read_npy_header(path, "x")


def test_ids_beyond_the_rows_are_refused_naming_the_first_gap_and_the_id():
    limits.check_id_range(Path("a.inter"), "userID", np.array([0, 1, 2]), 3, None, 0)
    with pytest.raises(UserError, match=r"^a\.inter column userID skips id 2 and has id 1000000000000, more than its 3 interactions can hold"):
        limits.check_id_range(Path("a.inter"), "userID", np.array([1, 0, 10**12]), 3, None, 0)
    limits.check_id_range(Path("a.inter"), "itemID", np.array([0, 7]), 2, Path("i_id_mapping.csv"), 8)  # the map justifies 8 ids
    with pytest.raises(UserError, match=r"column itemID has id 8, beyond the 8 ids of i_id_mapping\.csv"):
        limits.check_id_range(Path("a.inter"), "itemID", np.array([0, 8]), 2, Path("i_id_mapping.csv"), 8)


def test_images_are_refused_by_their_declared_pixels():
    assert limits.image_too_large((9459, 9459)) is None  # 89,472,681 pixels: just under the limit
    assert limits.image_too_large((10_000, 10_000)) == (
        "it declares 10000 x 10000 pixels (286.1 MiB as RGB), more than the 89478485 pixels an image may have"
    )


def test_an_encoder_batch_is_never_larger_than_the_rows():
    limits.check_encoder_batch(10**15, 30)  # 30 rows at most: 120 MiB
    with pytest.raises(UserError, match=r"^--batch-size 1000000000000000 needs about 3\.6 EiB to encode 1000000000000 rows per batch"):
        limits.check_encoder_batch(10**15, 10**12)
