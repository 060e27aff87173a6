"""Tests for recgoat_cli/topk.py: the exact top-k and its tie rule (score descending, then column ascending)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recgoat_cli.topk import (
    exact_topk,
    exact_topk_set,
    grouped_topk,
    kth_largest,
    rank_keys,
    rank_keys_numpy,
    row_score_order,
    row_score_order_numpy,
    unpack_rank_keys,
)

INF = float("inf")


def reference_topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row sorted by (-score, column) with a full lexsort; the first min(k, c) columns."""
    columns = np.arange(scores.shape[1])
    order = np.stack([np.lexsort((columns, -row))[:k] for row in scores])
    return np.take_along_axis(scores, order, axis=1), order


def test_exact_topk_hand_example() -> None:
    scores = torch.tensor([[0.1, 0.7, 0.3, 0.9], [5.0, -1.0, 2.0, 4.0]])
    values, indices = exact_topk(scores, 2)
    assert indices.tolist() == [[3, 1], [0, 3]]
    np.testing.assert_array_equal(values.numpy(), np.float32([[0.9, 0.7], [5.0, 4.0]]))
    assert indices.dtype == torch.int64


def test_exact_topk_resolves_boundary_ties():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.5, 0.1], [0.2, 0.2, 0.2, 0.2, 0.2], [1.0, 0.0, 2.0, 3.0, 4.0]])
    values, indices = exact_topk(scores, 2)
    np.testing.assert_array_equal(indices.numpy(), [[1, 0], [0, 1], [4, 3]])
    np.testing.assert_array_equal(values.numpy(), np.float32([[0.9, 0.5], [0.2, 0.2], [4.0, 3.0]]))


def test_exact_topk_orders_ties_inside_the_list_by_column():
    # 3.0 at columns 4, 1, 2: all three kept, lowest column first, then the single 2.0
    scores = torch.tensor([[0.0, 3.0, 3.0, 2.0, 3.0, 1.0]])
    values, indices = exact_topk(scores, 4)
    assert indices.tolist() == [[1, 2, 4, 3]]
    assert values.tolist() == [[3.0, 3.0, 3.0, 2.0]]


def test_exact_topk_block_narrower_than_k_returns_every_column():
    scores = torch.tensor([[1.0, 3.0, 2.0], [0.0, 0.0, 0.0]])
    values, indices = exact_topk(scores, 5)
    assert indices.tolist() == [[1, 2, 0], [0, 1, 2]]
    assert values.tolist() == [[3.0, 2.0, 1.0], [0.0, 0.0, 0.0]]
    set_values, set_indices = exact_topk_set(scores, 5)
    assert set_values.shape == set_indices.shape == (2, 3)


def test_exact_topk_masked_entries_rank_last_and_are_kept_only_to_fill():
    # -inf marks masked entries: never above a finite score; ties among them still go by column
    scores = torch.tensor([[-INF, 1.0, -INF, 0.5], [-INF, -INF, 2.0, -INF]])
    values, indices = exact_topk(scores, 3)
    assert indices.tolist() == [[1, 3, 0], [2, 0, 1]]
    assert values.tolist() == [[1.0, 0.5, -INF], [2.0, -INF, -INF]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exact_topk_keeps_the_scores_own_values(dtype):
    # a float64 score that float32 cannot tell from its neighbour, and a -0.0 that must come back as -0.0
    scores = torch.tensor([[1.0 + 2**-40, 1.0, -0.0, -1.0]], dtype=dtype)
    values, indices = exact_topk(scores, 3)
    assert values.dtype == dtype
    if dtype == torch.float64:
        assert indices.tolist() == [[0, 1, 2]]
        assert values[0, 0].item() == 1.0 + 2**-40
    else:
        assert indices.tolist() == [[0, 1, 2]]  # equal in float32: lower column first
    assert torch.signbit(values[0, 2])


@pytest.mark.parametrize(("rows", "columns", "k"), [(1, 1, 1), (7, 5, 2), (40, 33, 5), (64, 100, 20), (9, 12, 12)])
def test_exact_topk_matches_a_full_sort_with_heavy_ties(rows, columns, k):
    generator = torch.Generator().manual_seed(rows * 1000 + columns)
    scores = torch.randint(-2, 3, (rows, columns), generator=generator).float()
    scores[torch.rand(rows, columns, generator=generator) < 0.2] = -INF
    values, indices = exact_topk(scores, k)
    expected_values, expected_indices = reference_topk(scores.numpy(), k)
    np.testing.assert_array_equal(indices.numpy(), expected_indices)
    np.testing.assert_array_equal(values.numpy(), expected_values)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("k", "width"), [(1, 32), (3, 32), (5, 64)])
def test_grouped_topk_equals_exact_topk(dtype, k, width):
    generator = torch.Generator().manual_seed(k * width)
    scores = torch.randint(-3, 4, (17, width * 12), generator=generator).to(dtype)
    scores[torch.rand(scores.shape, generator=generator) < 0.3] = -INF
    grouped_values, grouped_indices = grouped_topk(scores, k, width)
    values, indices = exact_topk(scores, k)
    assert torch.equal(grouped_indices, indices)
    assert torch.equal(grouped_values, values)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grouped_topk_treats_negative_zero_as_zero(dtype: torch.dtype) -> None:
    # 12 groups of 32; group maxima 0, 0, -1, ...: groups 0 and 1 are ranked. -0.0 == 0.0, so column 5
    # (-0.0) ranks before 40, 41.
    scores = torch.full((2, 384), -1.0, dtype=dtype)
    scores[0, [5, 40, 41]] = torch.tensor([-0.0, 0.0, 0.0], dtype=dtype)
    scores[1, [5, 40, 41]] = torch.tensor([0.0, -0.0, -0.0], dtype=dtype)
    scores[1, 300] = float("-inf")

    values, ids = grouped_topk(scores, k=2, width=32)

    assert ids.tolist() == [[5, 40], [5, 40]]
    assert values.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_rank_keys_order_is_score_then_lower_column_and_round_trips():
    values = torch.tensor([2.0, -1.0, 2.0, 0.0, -0.0, -INF, 0.5])
    columns = torch.tensor([9, 0, 3, 7, 2, 1, 4])
    keys = rank_keys(values, columns)
    order = torch.argsort(keys, descending=True)
    # 2.0 (col 3), 2.0 (col 9), 0.5, 0.0 == -0.0 (col 2 before col 7), -1.0, -inf
    assert columns[order].tolist() == [3, 9, 4, 2, 7, 0, 1]
    np.testing.assert_array_equal(rank_keys_numpy(values.numpy(), columns.numpy()), keys.numpy())
    back_values, back_columns = unpack_rank_keys(keys)
    assert back_columns.tolist() == columns.tolist()
    assert back_values.tolist() == [2.0, -1.0, 2.0, 0.0, 0.0, -INF, 0.5]


def test_row_score_order_sorts_by_row_then_score_keeping_given_order_among_ties():
    rows = torch.tensor([0, 0, 0, 1, 1, 1])
    values = torch.tensor([1.0, 3.0, 1.0, -0.0, 2.0, 0.0])
    order = row_score_order(rows, values)
    assert order.tolist() == [1, 0, 2, 4, 3, 5]
    assert row_score_order(rows, values.double()).tolist() == [1, 0, 2, 4, 3, 5]
    assert row_score_order_numpy(rows.numpy(), values.numpy()).tolist() == [1, 0, 2, 4, 3, 5]


def test_kth_largest_per_row():
    values = torch.tensor([[4.0, 1.0, 3.0, 2.0], [0.0, 0.0, 5.0, -1.0]])
    assert kth_largest(values, 1).tolist() == [4.0, 5.0]
    assert kth_largest(values, 3).tolist() == [2.0, 0.0]
