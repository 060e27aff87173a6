"""Ranking metrics against hand-computed values.

Discounts used below, D(r) = 1 / log2(r + 2) for 0-based rank r:
D0 = 1, D1 = 1/log2(3) = 0.6309298, D2 = 1/log2(4) = 0.5, D3 = 1/log2(5) = 0.4306766, D4 = 1/log2(6) = 0.3868528.
"""

from math import log2

import pytest
import torch

from recgoat_cli.eval.metrics import (
    METRICS,
    hit_rate_at_k,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

D0, D1, D2, D3, D4 = (1 / log2(r + 2) for r in range(5))

# Three users, lists of width 5.
#   user A: hits 1 0 1 0 0, 2 relevant items
#   user B: hits 0 0 0 0 0, 3 relevant items
#   user C: hits 0 1 1 0 1, 4 relevant items
THREE_USER_HITS = torch.tensor(
    [
        [1, 0, 1, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 1, 1, 0, 1],
    ],
    dtype=torch.bool,
)
THREE_USER_RELEVANT = torch.tensor([2, 3, 4])

# Expected values per metric and k, users in order A, B, C. B has no hits: 0 everywhere.
THREE_USER_EXPECTED = {
    ("recall", 3): [
        2 / 2,  # A: 2 hits in top 3 / 2 relevant
        0.0,
        2 / 4,  # C: 2 hits in top 3 (ranks 1, 2) / 4 relevant
    ],
    ("recall", 5): [2 / 2, 0.0, 3 / 4],  # C: 3 hits in top 5 / 4
    ("precision", 3): [2 / 3, 0.0, 2 / 3],
    ("precision", 5): [2 / 5, 0.0, 3 / 5],
    ("hit", 3): [1.0, 0.0, 1.0],
    ("hit", 5): [1.0, 0.0, 1.0],
    ("ndcg", 3): [
        (D0 + D2) / (D0 + D1),  # A: DCG 1.5, IDCG over min(2, 3) = 2 items 1.6309 -> 0.9197208
        0.0,
        (D1 + D2) / (D0 + D1 + D2),  # C: DCG 1.1309, IDCG over min(4, 3) = 3 items 2.1309 -> 0.5307213
    ],
    ("ndcg", 5): [
        (D0 + D2) / (D0 + D1),  # A: unchanged, IDCG still over min(2, 5) = 2 items
        0.0,
        (D1 + D2 + D4) / (D0 + D1 + D2 + D3),  # C: 1.5177826 / 2.5616063 -> 0.5925120
    ],
    ("map", 3): [
        (1 / 1 + 2 / 3) / 2,  # A: P@1 = 1 and P@3 = 2/3 at the hits, / min(2, 3) -> 5/6
        0.0,
        (1 / 2 + 2 / 3) / 3,  # C: P@2 = 1/2, P@3 = 2/3, / min(4, 3) -> 7/18
    ],
    ("map", 5): [
        (1 / 1 + 2 / 3) / 2,  # A: no further hits -> 5/6
        0.0,
        (1 / 2 + 2 / 3 + 3 / 5) / 4,  # C: + P@5 = 3/5, / min(4, 5) -> 53/120
    ],
}


@pytest.mark.parametrize(("name", "k"), sorted(THREE_USER_EXPECTED))
def test_three_user_example_matches_hand_computed_values(name: str, k: int) -> None:
    values = METRICS[name](THREE_USER_HITS, THREE_USER_RELEVANT, k)

    assert values.shape == (3,)
    assert values.dtype == torch.float64
    torch.testing.assert_close(values, torch.tensor(THREE_USER_EXPECTED[(name, k)], dtype=torch.float64))


def test_spot_values_of_three_user_example() -> None:
    # Decimal values of the formulas above, to catch a wrong formula shared by test and code.
    ndcg = ndcg_at_k(THREE_USER_HITS, THREE_USER_RELEVANT, 3)
    assert ndcg[0].item() == pytest.approx(0.9197208, abs=1e-7)
    assert ndcg[2].item() == pytest.approx(0.5307213, abs=1e-7)
    assert ndcg_at_k(THREE_USER_HITS, THREE_USER_RELEVANT, 5)[2].item() == pytest.approx(0.5925120, abs=1e-7)
    assert map_at_k(THREE_USER_HITS, THREE_USER_RELEVANT, 5)[2].item() == pytest.approx(0.4416667, abs=1e-7)


@pytest.mark.parametrize("hits_dtype", [torch.bool, torch.float32, torch.int64])
def test_hit_dtype_does_not_change_values(hits_dtype: torch.dtype) -> None:
    for name, function in METRICS.items():
        expected = torch.tensor(THREE_USER_EXPECTED[(name, 5)], dtype=torch.float64)
        torch.testing.assert_close(function(THREE_USER_HITS.to(hits_dtype), THREE_USER_RELEVANT, 5), expected)


def test_k_larger_than_list_pads_with_misses() -> None:
    # List of width 3, all hits, 5 relevant items, k = 5: ranks 4 and 5 count as misses.
    hits = torch.ones(1, 3, dtype=torch.bool)
    n_relevant = torch.tensor([5])

    assert recall_at_k(hits, n_relevant, 5).item() == pytest.approx(3 / 5)
    assert precision_at_k(hits, n_relevant, 5).item() == pytest.approx(3 / 5)  # divides by k, not by 3
    assert hit_rate_at_k(hits, n_relevant, 5).item() == 1.0
    # DCG = D0 + D1 + D2 = 2.1309; IDCG over min(5, 5) = 5 items = 2.9484 -> 0.7227266
    assert ndcg_at_k(hits, n_relevant, 5).item() == pytest.approx((D0 + D1 + D2) / (D0 + D1 + D2 + D3 + D4))
    assert ndcg_at_k(hits, n_relevant, 5).item() == pytest.approx(0.7227266, abs=1e-7)
    # P@1 + P@2 + P@3 = 3, / min(5, 5) = 5
    assert map_at_k(hits, n_relevant, 5).item() == pytest.approx(3 / 5)


@pytest.mark.parametrize("width", [1, 3, 8])
def test_user_with_all_hits_and_exactly_k_relevant_scores_one(width: int) -> None:
    hits = torch.ones(1, width, dtype=torch.bool)
    n_relevant = torch.tensor([width])
    for function in METRICS.values():
        assert function(hits, n_relevant, width).item() == pytest.approx(1.0)


def test_all_hits_with_more_relevant_than_k() -> None:
    # 3 hits, 10 relevant: recall 3/10; NDCG and MAP normalise by min(10, 3) = 3 so they are 1.
    hits = torch.ones(1, 3, dtype=torch.bool)
    n_relevant = torch.tensor([10])
    assert recall_at_k(hits, n_relevant, 3).item() == pytest.approx(0.3)
    assert precision_at_k(hits, n_relevant, 3).item() == pytest.approx(1.0)
    assert ndcg_at_k(hits, n_relevant, 3).item() == pytest.approx(1.0)
    assert map_at_k(hits, n_relevant, 3).item() == pytest.approx(1.0)


def test_k_smaller_than_list_ignores_later_ranks() -> None:
    # Only the hit at rank 2 (0-based) exists; at k = 2 it is outside the list.
    hits = torch.tensor([[0, 0, 1, 1]], dtype=torch.bool)
    n_relevant = torch.tensor([2])
    for function in METRICS.values():
        assert function(hits, n_relevant, 2).item() == 0.0
    assert recall_at_k(hits, n_relevant, 3).item() == pytest.approx(1 / 2)


@pytest.mark.parametrize("n_users", [1, 4])
def test_no_hits_and_no_relevant_give_zero(n_users: int) -> None:
    no_hits = torch.zeros(n_users, 5, dtype=torch.bool)
    for function in METRICS.values():
        assert torch.equal(function(no_hits, torch.full((n_users,), 3), 5), torch.zeros(n_users, dtype=torch.float64))
        # n_relevant = 0 is 0/0: defined as 0, never NaN.
        assert torch.equal(function(no_hits, torch.zeros(n_users), 5), torch.zeros(n_users, dtype=torch.float64))


def test_empty_batch_returns_empty() -> None:
    for function in METRICS.values():
        assert function(torch.zeros(0, 5, dtype=torch.bool), torch.zeros(0, dtype=torch.long), 5).shape == (0,)


@pytest.mark.parametrize("bad_k", [0, -1, 2.0, True])
def test_invalid_k_raises(bad_k: object) -> None:
    with pytest.raises(ValueError, match="k must be a positive int"):
        recall_at_k(THREE_USER_HITS, THREE_USER_RELEVANT, bad_k)  # type: ignore[arg-type]


def test_mismatched_shapes_raise() -> None:
    with pytest.raises(ValueError, match="n_relevant"):
        ndcg_at_k(THREE_USER_HITS, torch.tensor([1, 2]), 3)
    with pytest.raises(ValueError, match="2-D"):
        ndcg_at_k(THREE_USER_HITS[0], THREE_USER_RELEVANT, 3)


def test_registry_names() -> None:
    assert set(METRICS) == {"recall", "ndcg", "precision", "hit", "map"}
