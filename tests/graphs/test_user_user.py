"""Tests for recgoat_cli/graphs/user_user.py: co-interaction neighbours and embedding neighbours."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recgoat_cli.graphs.item_knn import NeighbourCountError, blockwise_topk_cosine, knn_graph
from recgoat_cli.graphs.user_user import user_knn_from_co_interaction

# u0: {0, 1, 2}, u1: {1, 2}, u2: {2, 3}, u3: {4}; (u0, 1) is repeated and counts once.
# Shared items: c01 = 2, c02 = 1, c12 = 1, nothing shared with u3. Degrees: 3, 2, 2, 1.
TRAIN_USERS = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3])
TRAIN_ITEMS = np.array([0, 1, 2, 1, 1, 2, 2, 3, 4])

HAND_EXPECTED = {
    "count": ([[1, 2], [0, 2], [0, 1], [-1, -1]], [[2, 1], [2, 1], [1, 1], [0, 0]]),
    "cosine": (
        [[1, 2], [0, 2], [1, 0], [-1, -1]],
        [[2 / math.sqrt(6), 1 / math.sqrt(6)], [2 / math.sqrt(6), 0.5], [0.5, 1 / math.sqrt(6)], [0, 0]],
    ),
    "jaccard": ([[1, 2], [0, 2], [1, 0], [-1, -1]], [[2 / 3, 1 / 4], [2 / 3, 1 / 3], [1 / 3, 1 / 4], [0, 0]]),
}


@pytest.mark.parametrize("measure", ["count", "cosine", "jaccard"])
@pytest.mark.parametrize("memory_budget_bytes", [1, 64 * 5, 2**20])
def test_hand_example(measure, memory_budget_bytes):
    indices, values = user_knn_from_co_interaction(
        TRAIN_USERS, TRAIN_ITEMS, 4, 5, 2, measure=measure, memory_budget_bytes=memory_budget_bytes
    )
    expected_indices, expected_values = HAND_EXPECTED[measure]
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(values, expected_values, rtol=1e-6)
    assert indices.dtype == np.int64 and values.dtype == np.float32


def test_user_without_co_interactions_gets_no_edges():
    indices, values = user_knn_from_co_interaction(TRAIN_USERS, TRAIN_ITEMS, 5, 6, 3)
    # User 4 has no interactions at all, user 3 shares nothing.
    np.testing.assert_array_equal(indices[3:], -1)
    rows, cols, weights = knn_graph(indices, values, 5)
    assert {3, 4}.isdisjoint(rows.tolist()) and {3, 4}.isdisjoint(cols.tolist())
    np.testing.assert_array_equal(np.stack([rows, cols]), [[0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1]])
    np.testing.assert_allclose(weights, [2, 1, 2, 1, 1, 1])


def test_only_the_passed_interactions_are_used():
    # A held-out interaction (u3, item 3) would link u3 to u2; the caller passes train only, so u3 stays alone.
    train_only, _ = user_knn_from_co_interaction(TRAIN_USERS, TRAIN_ITEMS, 4, 5, 2)
    np.testing.assert_array_equal(train_only[3], [-1, -1])
    with_held_out, values = user_knn_from_co_interaction(
        np.append(TRAIN_USERS, 3), np.append(TRAIN_ITEMS, 3), 4, 5, 2
    )
    np.testing.assert_array_equal(with_held_out[3], [2, -1])
    np.testing.assert_array_equal(values[3], [1, 0])


def dense_co_interaction_reference(users, items, n_users, n_items, k, measure):
    r = np.zeros((n_users, n_items))
    r[users, items] = 1.0
    counts = r @ r.T
    degree = r.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "count":
            similarity = counts
        elif measure == "cosine":
            similarity = counts / np.sqrt(np.outer(degree, degree))
        else:
            similarity = counts / (degree[:, None] + degree[None, :] - counts)
    similarity = np.nan_to_num(similarity).astype(np.float32)
    np.fill_diagonal(similarity, 0.0)
    indices = np.full((n_users, k), -1)
    values = np.zeros((n_users, k), dtype=np.float32)
    for u, row in enumerate(similarity):
        order = [v for v in np.lexsort((np.arange(n_users), -row)) if row[v] > 0][:k]
        indices[u, : len(order)] = order
        values[u, : len(order)] = row[order]
    return indices, values


@pytest.mark.parametrize(("n_users", "n_items", "n_interactions"), [(6, 4, 10), (30, 12, 80), (50, 200, 150)])
@pytest.mark.parametrize("measure", ["count", "cosine", "jaccard"])
def test_matches_dense_reference(n_users, n_items, n_interactions, measure):
    rng = np.random.default_rng(n_users + n_items)
    users = rng.integers(0, n_users, n_interactions)
    items = rng.integers(0, n_items, n_interactions)
    k = min(5, n_users - 1)
    for budget in (1, 64 * 40, 2**24):
        indices, values = user_knn_from_co_interaction(
            users, items, n_users, n_items, k, measure=measure, memory_budget_bytes=budget
        )
        expected_indices, expected_values = dense_co_interaction_reference(
            users, items, n_users, n_items, k, measure
        )
        np.testing.assert_array_equal(indices, expected_indices)
        np.testing.assert_array_equal(values, expected_values)


def test_progress_reaches_all_users():
    calls = []
    user_knn_from_co_interaction(
        TRAIN_USERS, TRAIN_ITEMS, 4, 5, 1, memory_budget_bytes=1, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.parametrize("k", [0, 4, 10])
def test_bad_k_is_a_neighbour_count_error(k):
    with pytest.raises(NeighbourCountError) as caught:
        user_knn_from_co_interaction(TRAIN_USERS, TRAIN_ITEMS, 4, 5, k)
    assert (caught.value.k, caught.value.n, caught.value.limit, caught.value.entity) == (k, 4, 3, "users")
    with pytest.raises(NeighbourCountError) as caught:
        blockwise_topk_cosine(np.ones((4, 2), dtype=np.float32), k, entity="users")
    assert (caught.value.k, caught.value.n, caught.value.limit, caught.value.entity) == (k, 4, 3, "users")


@pytest.mark.parametrize("n_users", [3, 25])
def test_embedding_neighbours_do_not_depend_on_the_block_size(n_users):
    emb = torch.randn(n_users, 6, generator=torch.Generator().manual_seed(n_users))
    indices, values = blockwise_topk_cosine(emb, 2, block_size=4, entity="users")
    expected_indices, expected_values = blockwise_topk_cosine(emb, 2)
    torch.testing.assert_close(indices, expected_indices)
    torch.testing.assert_close(values, expected_values)


@pytest.mark.parametrize("density", [0.05, 0.5])
@pytest.mark.parametrize("k", [1, 4, 9])
def test_sparse_and_dense_top_k_routes_agree(density, k):
    # Small integer similarities give many exact ties; zeros stored explicitly are not neighbours.
    from recgoat_cli.graphs.user_user import _topk_of_dense_rows, _topk_of_sparse_rows

    rng = np.random.default_rng(k)
    dense = rng.integers(0, 4, size=(12, 30)).astype(np.float32) * (rng.random((12, 30)) < density)
    similarity = sp.csr_matrix(dense)
    similarity.data[::3] = 0.0
    dense = similarity.toarray()
    sparse_indices, sparse_values = _topk_of_sparse_rows(similarity.copy(), k)
    dense_indices, dense_values = _topk_of_dense_rows(similarity.copy(), k)
    np.testing.assert_array_equal(sparse_indices, dense_indices)
    np.testing.assert_array_equal(sparse_values, dense_values)
    for row, (row_indices, row_values) in enumerate(zip(sparse_indices, sparse_values)):
        positive = np.flatnonzero(dense[row] > 0)
        expected = positive[np.lexsort((positive, -dense[row, positive]))][:k]
        np.testing.assert_array_equal(row_indices[: expected.size], expected)
        np.testing.assert_array_equal(row_indices[expected.size :], -1)
        np.testing.assert_array_equal(row_values[expected.size :], 0.0)
