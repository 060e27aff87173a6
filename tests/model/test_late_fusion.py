"""Late fusion: centred cosines, content user rows, exact per-user z-scores as tables, the weight search."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recgoat_cli.model.late_fusion import centred_unit_rows, choose_weights, content_user_rows, fused_tables, zscore_tables


def test_centred_unit_rows_by_hand():
    rows = centred_unit_rows(torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 2.0]]))
    # column means (2, 2/3): centred rows (-1, -2/3), (1, -2/3), (0, 4/3), then unit length
    norm = math.sqrt(1 + 4 / 9)
    expected = torch.tensor([[-1 / norm, -2 / 3 / norm], [1 / norm, -2 / 3 / norm], [0.0, 1.0]])
    assert torch.allclose(rows, expected, atol=1e-6)


def test_content_user_rows_sum_the_train_items():
    unit = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    # user 0: items 0 and 2; user 1: nothing; user 2: item 1
    indptr, indices = torch.tensor([0, 2, 2, 3]), torch.tensor([0, 2, 1])
    rows = content_user_rows(indptr, indices, unit)
    assert torch.allclose(rows, torch.tensor([[1.6, 0.8], [0.0, 0.0], [0.0, 1.0]]))


def dense_zscores(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    scores = users.astype(np.float64) @ items.astype(np.float64).T
    std = scores.std(axis=1, keepdims=True)
    return np.where(std > 1e-12, (scores - scores.mean(axis=1, keepdims=True)) / np.maximum(std, 1e-300), 0.0)


@pytest.mark.parametrize(("n_users", "n_items", "dim"), [(5, 7, 3), (20, 50, 8), (3, 4, 10)])
def test_zscore_tables_give_the_per_user_zscores(n_users, n_items, dim):
    rng = np.random.default_rng(n_users)
    users, items = rng.standard_normal((n_users, dim)), rng.standard_normal((n_items, dim)) + 0.5
    users[0] = 0.0  # constant scores: zeros, not NaN
    scaled, centred = zscore_tables(torch.from_numpy(users), torch.from_numpy(items))
    assert np.allclose((scaled @ centred.T).numpy(), dense_zscores(users, items), atol=1e-4)
    assert np.all(scaled[0].numpy() == 0)


def test_fused_tables_add_weighted_zscores_and_drop_zero_weights():
    rng = np.random.default_rng(0)
    base = (rng.standard_normal((6, 4)), rng.standard_normal((9, 4)))
    text = (rng.standard_normal((6, 3)), rng.standard_normal((9, 3)))
    image = (rng.standard_normal((6, 2)), rng.standard_normal((9, 2)))
    rankers = [tuple(torch.from_numpy(a) for a in pair) for pair in (base, text, image)]
    users, items = fused_tables(rankers, [1.0, 0.5, 0.0])
    assert users.shape == (6, 4 + 3) and items.shape == (9, 4 + 3)
    expected = dense_zscores(*base) + 0.5 * dense_zscores(*text)
    assert np.allclose((users @ items.T).numpy(), expected, atol=1e-4)


def test_fused_ranking_equals_the_benchmark_blend():
    """The tables rank as benchmarks/studies/blend_bound.py's dense blend ``standardise(base) + w * standardise(content)``."""
    rng = np.random.default_rng(1)
    base_users, base_items = rng.standard_normal((4, 3)), rng.standard_normal((12, 3))
    features = torch.from_numpy(rng.standard_normal((12, 5)))
    unit = centred_unit_rows(features)
    indptr, indices = torch.tensor([0, 2, 3, 6, 7]), torch.tensor([0, 5, 3, 1, 2, 11, 4])
    content = content_user_rows(indptr, indices, unit)
    users, items = fused_tables([(torch.from_numpy(base_users), torch.from_numpy(base_items)), (content, unit)], [1.0, 2.0])
    train = np.zeros((4, 12))
    for u in range(4):
        train[u, indices[indptr[u] : indptr[u + 1]].numpy()] = 1
    cosines = unit.double().numpy() @ unit.double().numpy().T
    blend = dense_zscores(base_users, base_items) + 2.0 * dense_zscores(np.eye(4), (train @ cosines).T)
    assert np.allclose((users @ items.T).numpy(), blend, atol=1e-4)


def test_choose_weights_by_coordinate_ascent():
    grid = (0.0, 0.5, 1.0, 2.0, 5.0)
    weights, best = choose_weights(lambda w: -((w[0] - 1) ** 2) - (w[1] - 2) ** 2, 2, grid)
    assert weights == [1.0, 2.0] and best == 0.0


def test_choose_weights_one_modality_is_a_grid_search_and_ties_take_the_smaller_weight():
    calls = []

    def score(w):
        calls.append(w[0])
        return {0.0: 0.1, 0.1: 0.3, 0.2: 0.3, 0.5: 0.2}[w[0]]

    weights, best = choose_weights(score, 1, (0.5, 0.2, 0.1, 0.0))
    assert weights == [0.1] and best == 0.3
    assert sorted(set(calls)) == [0.0, 0.1, 0.2, 0.5]


def test_choose_weights_keeps_the_base_alone_when_content_never_helps():
    weights, best = choose_weights(lambda w: 1.0 - sum(w), 2, (0.0, 1.0, 2.0))
    assert weights == [0.0, 0.0] and best == 1.0
