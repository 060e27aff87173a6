"""Tests for recgoat_cli/graphs/user_item.py: deduplicated edges and LightGCN's normalised adjacency."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recgoat_cli.graphs.user_item import (
    normalized_bipartite_adjacency,
    normalized_bipartite_coo,
    user_item_edges,
)


def test_user_item_edges_are_deduplicated_and_sorted():
    users = np.array([1, 0, 1, 0, 0])
    items = np.array([2, 1, 1, 0, 1])
    edge_users, edge_items = user_item_edges(users, items, 2, 3)
    np.testing.assert_array_equal(edge_users, [0, 0, 1, 1])
    np.testing.assert_array_equal(edge_items, [0, 1, 1, 2])
    assert edge_users.dtype == np.int64 and edge_items.dtype == np.int64


def test_two_users_three_items_hand_computed():
    # R = [[1, 1, 0], [0, 1, 1]] (the pair (0, 1) is repeated and counts once).
    # Degrees: users 2, 2; items 1, 2, 1. Nodes: users 0, 1; items 2, 3, 4.
    users = torch.tensor([0, 0, 0, 1, 1])
    items = torch.tensor([0, 1, 1, 1, 2])
    adjacency = normalized_bipartite_adjacency(users, items, 2, 3)
    assert adjacency.layout == torch.sparse_coo and adjacency.is_coalesced()
    assert adjacency.shape == (5, 5) and adjacency.dtype == torch.float32
    h, q = 1 / math.sqrt(2), 0.5
    expected = torch.tensor(
        [
            [0, 0, h, q, 0],
            [0, 0, 0, q, h],
            [h, 0, 0, 0, 0],
            [q, q, 0, 0, 0],
            [0, h, 0, 0, 0],
        ]
    )
    torch.testing.assert_close(adjacency.to_dense(), expected)


def test_csr_layout_matches_coo():
    users, items = np.array([0, 1, 2, 2]), np.array([3, 0, 0, 1])
    coo = normalized_bipartite_adjacency(users, items, 3, 4)
    csr = normalized_bipartite_adjacency(users, items, 3, 4, layout="csr")
    assert csr.layout == torch.sparse_csr
    torch.testing.assert_close(csr.to_dense(), coo.to_dense())


@pytest.mark.parametrize(("n_users", "n_items", "n_interactions"), [(1, 1, 1), (7, 5, 12), (40, 90, 300)])
def test_adjacency_is_symmetric_finite_and_matches_dense_formula(n_users, n_items, n_interactions):
    rng = np.random.default_rng(n_users)
    users = rng.integers(0, n_users, n_interactions)
    items = rng.integers(0, n_items, n_interactions)
    dense = normalized_bipartite_adjacency(users, items, n_users, n_items).to_dense().double()
    torch.testing.assert_close(dense, dense.T)
    assert torch.isfinite(dense).all()

    r = np.zeros((n_users, n_items))
    r[users, items] = 1.0
    a = np.block([[np.zeros((n_users, n_users)), r], [r.T, np.zeros((n_items, n_items))]])
    d = a.sum(axis=1)
    inv_sqrt = np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)
    np.testing.assert_allclose(dense.numpy(), inv_sqrt[:, None] * a * inv_sqrt, rtol=1e-6)


def test_isolated_users_and_items_get_empty_rows_not_nan():
    # User 1 and items 0 and 2 have no interactions.
    rows, cols, weights = normalized_bipartite_coo(np.array([0, 2]), np.array([1, 1]), 3, 3)
    assert np.isfinite(weights).all()
    isolated_nodes = {1, 3, 5}
    assert isolated_nodes.isdisjoint(rows) and isolated_nodes.isdisjoint(cols)
    np.testing.assert_array_equal(np.stack([rows, cols]), [[0, 2, 4, 4], [4, 4, 0, 2]])
    np.testing.assert_allclose(weights, 1 / math.sqrt(2))


def test_no_interactions_gives_an_empty_matrix():
    adjacency = normalized_bipartite_adjacency(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 2, 2)
    assert adjacency._nnz() == 0 and adjacency.shape == (4, 4)


@pytest.mark.parametrize(("users", "items"), [([0, 2], [0, 0]), ([0, 0], [0, 3]), ([-1], [0])])
def test_out_of_range_ids_raise(users, items):
    with pytest.raises(ValueError, match="ids must lie in"):
        user_item_edges(np.array(users), np.array(items), 2, 3)
