"""Tests for recgoat_cli/graphs/item_knn.py: blockwise top-k equals a dense reference, graph construction."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from recgoat_cli.graphs.item_knn import (
    NeighbourCountError,
    blockwise_topk_cosine,
    knn_graph,
    tile_side_for_budget,
)


def dense_reference_topk(x: np.ndarray, k: int, exclude_self: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Full N x N cosine matrix in float64, each row sorted by (-similarity, column index)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms > 0, norms, 1.0)
    similarity = unit @ unit.T
    if exclude_self:
        np.fill_diagonal(similarity, -np.inf)
    columns = np.arange(x.shape[0])
    indices = np.stack([np.lexsort((columns, -row))[:k] for row in similarity])
    return indices, np.take_along_axis(similarity, indices, axis=1)


def exact_arithmetic_vectors(n: int, d: int, seed: int) -> np.ndarray:
    """Rows with exactly four entries of +-1: every norm is 2 and every cosine a multiple of 1/4, so float32
    products are exact whatever the summation order, and ties are exact ties."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, d), dtype=np.float32)
    for row in x:
        row[rng.choice(d, size=4, replace=False)] = rng.choice([-1.0, 1.0], size=4)
    return x


def dense_adjacency(rows, cols, weights, n):
    a = np.zeros((n, n), dtype=np.float64)
    a[rows, cols] = weights
    return a


# Single-row tiles cost about a millisecond each in Python overhead, so they get the smaller sizes.
SIZES_AND_TILES = [(n, b) for n in (2, 5, 17) for b in (None, 1, 3, 8)] + [(64, b) for b in (None, 9, 64)]


@pytest.mark.parametrize(("n", "block_size"), SIZES_AND_TILES)
@pytest.mark.parametrize("d", [3, 16])
def test_blockwise_topk_matches_dense_reference(n, d, block_size):
    x = np.random.default_rng(n * 100 + d).standard_normal((n, d)).astype(np.float32)
    for k in sorted({1, min(4, n - 1), n - 1}):
        indices, values = blockwise_topk_cosine(x, k, block_size=block_size)
        expected_indices, expected_values = dense_reference_topk(x, k)
        np.testing.assert_array_equal(indices, expected_indices)
        np.testing.assert_allclose(values, expected_values, atol=1e-6)
        assert indices.dtype == np.int64 and values.dtype == np.float32


@pytest.mark.parametrize("block_size", [None, 1, 2, 5, 16])
@pytest.mark.parametrize("k", [1, 3, 7])
def test_exact_ties_are_broken_by_lower_column_index(block_size, k):
    x = exact_arithmetic_vectors(20, 6, seed=k)
    # Duplicated rows give similarity 1 ties; with d = 6 many other similarities tie as well.
    x = np.concatenate([x, x[[3, 3, 11]], x[:4]])
    indices, values = blockwise_topk_cosine(x, k, block_size=block_size)
    expected_indices, expected_values = dense_reference_topk(x, k)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(values, expected_values.astype(np.float32))


def test_one_dimensional_features_tie_everywhere():
    x = np.array([[2.0], [-1.0], [3.0], [0.5], [-4.0], [1.0]], dtype=np.float32)
    indices, values = blockwise_topk_cosine(x, 3, block_size=2)
    # Cosines are +-1: positive rows {0, 2, 3, 5}, negative rows {1, 4}.
    np.testing.assert_array_equal(indices[0], [2, 3, 5])
    np.testing.assert_array_equal(indices[1], [4, 0, 2])
    np.testing.assert_array_equal(values[1], [1.0, -1.0, -1.0])
    np.testing.assert_array_equal(indices[5], [0, 2, 3])


@pytest.mark.parametrize("budget", [1, 16 * 9, 16 * 50])
def test_tiny_memory_budget_tiles_rows_and_columns(budget):
    x = exact_arithmetic_vectors(23, 8, seed=1)
    side = tile_side_for_budget(23, budget)
    calls = []
    indices, values = blockwise_topk_cosine(
        x, 5, memory_budget_bytes=budget, progress=lambda done, total: calls.append((done, total))
    )
    n_blocks = -(-23 // side)
    assert side < 23
    assert calls[-1] == (n_blocks * (n_blocks + 1) // 2,) * 2
    expected_indices, expected_values = dense_reference_topk(x, 5)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(values, expected_values.astype(np.float32))


def test_tile_side_for_budget():
    assert tile_side_for_budget(10, 0) == 1
    assert tile_side_for_budget(10, 16 * 9) == 3
    assert tile_side_for_budget(10, 10**9) == 10
    assert tile_side_for_budget(100_000, 512 * 1024 * 1024) == 5792


def test_exclude_self_false_includes_the_row_itself():
    x = exact_arithmetic_vectors(12, 10, seed=3)
    x[7] = x[2]
    indices, values = blockwise_topk_cosine(x, 12, block_size=5, exclude_self=False)
    expected_indices, _ = dense_reference_topk(x, 12, exclude_self=False)
    np.testing.assert_array_equal(indices, expected_indices)
    assert indices[0, 0] == 0 and values[0, 0] == 1.0
    # Row 7 duplicates row 2: both have similarity 1, the lower index comes first.
    np.testing.assert_array_equal(indices[7, :2], [2, 7])


@pytest.mark.parametrize("block_size", [None, 10, 13])
def test_identical_rows_take_the_lowest_indices(block_size):
    # Every similarity is 1, so every row of every tile has boundary ties (resolved in several chunks).
    indices, values = blockwise_topk_cosine(np.ones((30, 4), dtype=np.float32), 5, block_size=block_size)
    np.testing.assert_array_equal(values, 1.0)
    np.testing.assert_array_equal(indices[0], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(indices[3], [0, 1, 2, 4, 5])
    np.testing.assert_array_equal(indices[29], [0, 1, 2, 3, 4])


def test_zero_rows_have_zero_similarity_and_no_nan():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], dtype=np.float32)
    indices, values = blockwise_topk_cosine(x, 3)
    assert np.isfinite(values).all()
    np.testing.assert_array_equal(indices[0], [1, 2, 3])
    np.testing.assert_array_equal(values[0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(indices[1], [0, 2, 3])


def test_similarity_is_bitwise_symmetric_across_tiles():
    x = np.random.default_rng(0).standard_normal((40, 7)).astype(np.float32)
    indices, values = blockwise_topk_cosine(x, 39, block_size=6)
    lookup = np.zeros((40, 40), dtype=np.float32)
    np.put_along_axis(lookup, indices, values, axis=1)
    off_diagonal = ~np.eye(40, dtype=bool)
    np.testing.assert_array_equal(lookup[off_diagonal], lookup.T[off_diagonal])


def test_read_only_memory_mapped_features(tmp_path):
    x = np.random.default_rng(2).standard_normal((20, 5)).astype(np.float32)
    np.save(tmp_path / "features.npy", x)
    mapped = np.load(tmp_path / "features.npy", mmap_mode="r", allow_pickle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        indices, _ = blockwise_topk_cosine(mapped, 3, block_size=6)
    np.testing.assert_array_equal(indices, dense_reference_topk(x, 3)[0])


def test_torch_input_gives_torch_output():
    x = torch.randn(15, 4, dtype=torch.float64)
    indices, values = blockwise_topk_cosine(x, 3, block_size=4)
    assert isinstance(indices, torch.Tensor) and indices.dtype == torch.int64
    assert values.dtype == torch.float32
    expected_indices, _ = dense_reference_topk(x.numpy(), 3)
    np.testing.assert_array_equal(indices.numpy(), expected_indices)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x = torch.from_numpy(exact_arithmetic_vectors(300, 16, seed=5))
    x = torch.cat([x, x[:40]])
    cpu_indices, cpu_values = blockwise_topk_cosine(x, 10, block_size=64)
    cuda_indices, cuda_values = blockwise_topk_cosine(x.cuda(), 10, block_size=64)
    assert cuda_indices.device.type == "cuda"
    torch.testing.assert_close(cuda_indices.cpu(), cpu_indices)
    torch.testing.assert_close(cuda_values.cpu(), cpu_values)


@pytest.mark.parametrize(
    ("n", "k", "exclude_self", "limit"), [(5, 5, True, 4), (5, 9, True, 4), (5, 0, True, 4), (5, 6, False, 5), (1, 1, True, 0)]
)
def test_bad_k_is_a_neighbour_count_error(n, k, exclude_self, limit):
    with pytest.raises(NeighbourCountError) as caught:
        blockwise_topk_cosine(np.ones((n, 3), dtype=np.float32), k, exclude_self=exclude_self)
    assert (caught.value.k, caught.value.n, caught.value.limit, caught.value.entity) == (k, n, limit, "items")
    assert "--" not in str(caught.value)  # graph code knows no command-line flags


def test_k_equal_to_n_without_exclude_self_is_allowed():
    indices, _ = blockwise_topk_cosine(np.eye(4, dtype=np.float32), 4, exclude_self=False)
    np.testing.assert_array_equal(indices[:, 0], [0, 1, 2, 3])


# ----------------------------------------------------------------------------------------------- knn_graph


def test_knn_graph_hand_example_symmetrize_modes():
    # 0 -> 1 (0.9), 0 -> 2 (-0.1: dropped), 1 -> 0 (0.7), 1 -> 2 (0.3), 2 -> 1 (0.0: dropped), 2 -> 0 (slot -1)
    indices = np.array([[1, 2], [0, 2], [1, -1]])
    values = np.array([[0.9, -0.1], [0.7, 0.3], [0.0, 0.0]], dtype=np.float32)

    rows, cols, weights = knn_graph(indices, values, 3, symmetrize="none")
    np.testing.assert_array_equal(rows, [0, 1, 1])
    np.testing.assert_array_equal(cols, [1, 0, 2])
    np.testing.assert_allclose(weights, [0.9, 0.7, 0.3])

    rows, cols, weights = knn_graph(indices, values, 3, symmetrize="max")
    np.testing.assert_array_equal(rows, [0, 1, 1, 2])
    np.testing.assert_array_equal(cols, [1, 0, 2, 1])
    np.testing.assert_allclose(weights, [0.9, 0.9, 0.3, 0.3])

    rows, cols, weights = knn_graph(indices, values, 3, symmetrize="mean")
    np.testing.assert_array_equal(rows, [0, 1, 1, 2])
    np.testing.assert_array_equal(cols, [1, 0, 2, 1])
    np.testing.assert_allclose(weights, [0.8, 0.8, 0.15, 0.15])
    assert rows.dtype == np.int64 and cols.dtype == np.int64 and weights.dtype == np.float32


def test_knn_graph_min_similarity_and_self_pairs_dropped():
    indices = np.array([[0, 1], [0, 1]])
    values = np.array([[1.0, 0.4], [0.4, 1.0]], dtype=np.float32)
    rows, cols, weights = knn_graph(indices, values, 2)
    np.testing.assert_array_equal(np.stack([rows, cols]), [[0, 1], [1, 0]])
    rows, _, _ = knn_graph(indices, values, 2, min_similarity=0.5)
    assert rows.size == 0


def test_knn_graph_self_loops_and_random_walk_rows_sum_to_one():
    # Path 0 - 1 - 2 with weights 0.5 and 0.8; node 3 has no positive neighbour.
    indices = np.array([[1], [2], [1], [0]])
    values = np.array([[0.5], [0.8], [0.8], [-0.2]], dtype=np.float32)
    rows, cols, weights = knn_graph(indices, values, 4, self_loops=True, normalize="rw")
    a = dense_adjacency(rows, cols, weights, 4)
    expected = np.array(
        [
            [1 / 1.5, 0.5 / 1.5, 0, 0],
            [0.5 / 2.3, 1 / 2.3, 0.8 / 2.3, 0],
            [0, 0.8 / 1.8, 1 / 1.8, 0],
            [0, 0, 0, 1.0],
        ]
    )
    np.testing.assert_allclose(a, expected, rtol=1e-6)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-6)


def test_knn_graph_sym_normalisation_and_isolated_node():
    indices = np.array([[1], [2], [1], [0]])
    values = np.array([[0.5], [0.8], [0.8], [-0.2]], dtype=np.float32)
    rows, cols, weights = knn_graph(indices, values, 4, normalize="sym")
    assert np.isfinite(weights).all()
    assert 3 not in rows and 3 not in cols
    a = np.array([[0, 0.5, 0, 0], [0.5, 0, 0.8, 0], [0, 0.8, 0, 0], [0, 0, 0, 0]])
    d = a.sum(axis=1)
    inv_sqrt = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
    np.testing.assert_allclose(dense_adjacency(rows, cols, weights, 4), inv_sqrt[:, None] * a * inv_sqrt, rtol=1e-6)


def test_knn_graph_directed_sym_uses_out_and_in_degrees():
    # 0 -> 1 (0.5), 1 -> 2 (0.8), 2 -> 1 (0.4): out-degrees 0.5, 0.8, 0.4; in-degrees 0, 0.9, 0.8.
    indices = np.array([[1], [2], [1]])
    values = np.array([[0.5], [0.8], [0.4]], dtype=np.float32)
    rows, cols, weights = knn_graph(indices, values, 3, symmetrize="none", normalize="sym")
    np.testing.assert_array_equal(np.stack([rows, cols]), [[0, 1, 2], [1, 2, 1]])
    expected = [0.5 / np.sqrt(0.5 * 0.9), 0.8 / np.sqrt(0.8 * 0.8), 0.4 / np.sqrt(0.4 * 0.9)]
    np.testing.assert_allclose(weights, expected, rtol=1e-6)


@pytest.mark.parametrize("n", [10, 57])
@pytest.mark.parametrize("symmetrize", ["max", "mean"])
@pytest.mark.parametrize("normalize", ["none", "sym"])
def test_knn_graph_from_features_is_symmetric_sorted_and_deduplicated(n, symmetrize, normalize):
    x = np.random.default_rng(n).standard_normal((n, 5)).astype(np.float32)
    indices, values = blockwise_topk_cosine(x, 4, block_size=7)
    rows, cols, weights = knn_graph(indices, values, n, symmetrize=symmetrize, normalize=normalize)
    a = dense_adjacency(rows, cols, weights, n)
    np.testing.assert_array_equal(a, a.T)
    keys = rows * n + cols
    assert np.all(np.diff(keys) > 0)
    assert np.all(weights > 0) and np.all(rows != cols)


def test_knn_graph_accepts_torch_tensors():
    indices, values = blockwise_topk_cosine(torch.randn(9, 3), 2)
    rows, cols, weights = knn_graph(indices, values, 9)
    assert isinstance(rows, np.ndarray) and rows.dtype == np.int64


def test_knn_graph_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        knn_graph(np.zeros((3, 2), dtype=np.int64), np.zeros((3, 1), dtype=np.float32), 3)


# Tiles with at least k groups of 32 rows/columns take the grouped selection (group maxima, then only the
# entries reaching the k-th largest group maximum); sizes not divisible by 32 leave tail rows and columns,
# and tail tiles with fewer than k groups take the full-row selection.
@pytest.mark.parametrize(("n", "block_size"), [(640, None), (700, None), (700, 320), (700, 330)])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_grouped_selection_matches_dense_reference(n, block_size, k):
    x = np.random.default_rng(n + k).standard_normal((n, 12)).astype(np.float32)
    indices, values = blockwise_topk_cosine(x, k, block_size=block_size)
    expected_indices, expected_values = dense_reference_topk(x, k)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(values, expected_values, atol=1e-6)


@pytest.mark.parametrize("block_size", [None, 320])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_grouped_selection_breaks_exact_ties_by_lower_column_index(block_size, k):
    # Four +-1 entries per row: cosines are multiples of 1/4, so many similarities tie exactly.
    x = exact_arithmetic_vectors(600, 24, seed=k)
    x = np.concatenate([x, x[[3, 3, 200]], x[:60]])
    indices, values = blockwise_topk_cosine(x, k, block_size=block_size)
    expected_indices, expected_values = dense_reference_topk(x, k)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(values, expected_values.astype(np.float32))


@pytest.mark.parametrize("block_size", [None, 128])
def test_grouped_selection_falls_back_when_every_similarity_ties(block_size):
    # One-dimensional features: every cosine is +-1, so the candidate sets are whole rows and the tile
    # falls back to the full-row selection; the answer is still the lowest-index tied columns.
    x = np.where(np.arange(200) % 3 == 0, -1.0, 2.0).astype(np.float32)[:, None]
    indices, values = blockwise_topk_cosine(x, 4, block_size=block_size)
    expected_indices, expected_values = dense_reference_topk(x, 4)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(values, expected_values.astype(np.float32))
    np.testing.assert_array_equal(indices[0], [3, 6, 9, 12])
