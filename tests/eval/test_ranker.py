"""Masked full ranking and split evaluation against hand-computed cases and brute-force references."""

from math import log2

import numpy as np
import pytest
import torch

from recgoat_cli.eval.ranker import (
    RankingResult,
    csr_from_pairs,
    evaluate_ranking,
    rank_users,
    topk_scores,
)

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; CPU covers the logic"),
    ),
]

# ---------------------------------------------------------------------------------------------------------
# References: plain per-user Python/NumPy, written independently of the vectorised code.


def reference_topk(
    user_emb: np.ndarray, item_emb: np.ndarray, excluded: list[set[int]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per user: all non-excluded items by (score descending, item id ascending), first k, padded with -1/-inf."""
    n_items = item_emb.shape[0]
    ids = np.full((len(user_emb), k), -1, dtype=np.int64)
    values = np.full((len(user_emb), k), -np.inf)
    for row, (vector, seen) in enumerate(zip(user_emb, excluded)):
        scores = item_emb @ vector
        candidates = [item for item in range(n_items) if item not in seen]
        ranked = sorted(candidates, key=lambda item: (-scores[item], item))[:k]
        ids[row, : len(ranked)] = ranked
        values[row, : len(ranked)] = scores[ranked]
    return ids, values


def reference_user_metrics(ranked: list[int], truth: set[int], k: int) -> dict[str, float]:
    """Textbook definitions for one user's ranked list (padding id -1 is never relevant)."""
    hits = [item in truth for item in ranked[:k]]
    n_hits = sum(hits)
    dcg = sum(1 / log2(rank + 2) for rank, hit in enumerate(hits) if hit)
    idcg = sum(1 / log2(rank + 2) for rank in range(min(len(truth), k)))
    precision_sum = sum(sum(hits[: rank + 1]) / (rank + 1) for rank, hit in enumerate(hits) if hit)
    return {
        "recall": n_hits / len(truth),
        "precision": n_hits / k,
        "hit": float(n_hits > 0),
        "ndcg": dcg / idcg,
        "map": precision_sum / min(len(truth), k),
    }


def rows_of(indptr: np.ndarray, indices: np.ndarray) -> list[set[int]]:
    return [set(indices[indptr[u] : indptr[u + 1]].tolist()) for u in range(len(indptr) - 1)]


def select_rows(
    indptr: np.ndarray, indices: np.ndarray, rows: list[int], n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """The CSR of the given rows only, renumbered 0..len(rows)-1."""
    users = np.concatenate([np.full(indptr[row + 1] - indptr[row], position) for position, row in enumerate(rows)])
    items = np.concatenate([indices[indptr[row] : indptr[row + 1]] for row in rows])
    return csr_from_pairs(users.astype(np.int64), items, len(rows), n_items)


def random_csr(rng: np.random.Generator, n_users: int, n_items: int, density: float) -> tuple[np.ndarray, np.ndarray]:
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    return csr_from_pairs(users, items, n_users, n_items)


# ---------------------------------------------------------------------------------------------------------
# csr_from_pairs


def test_csr_from_pairs_sorts_and_deduplicates() -> None:
    users = np.array([2, 0, 2, 0, 2, 0])
    items = np.array([1, 3, 0, 1, 1, 3])  # (0, 3) and (2, 1) appear twice
    indptr, indices = csr_from_pairs(users, items, n_users=4, n_items=5)

    # user 0: {1, 3}; user 1: {}; user 2: {0, 1}; user 3: {}
    assert indptr.tolist() == [0, 2, 2, 4, 4]
    assert indices.tolist() == [1, 3, 0, 1]
    assert indptr.dtype == np.int64 and indices.dtype == np.int64


def test_csr_from_pairs_empty() -> None:
    indptr, indices = csr_from_pairs(np.array([], dtype=np.int64), np.array([], dtype=np.int64), 3, 4)
    assert indptr.tolist() == [0, 0, 0, 0]
    assert indices.size == 0


@pytest.mark.parametrize(("users", "items"), [([0, 3], [0, 0]), ([0, -1], [0, 0]), ([0, 1], [0, 4])])
def test_csr_from_pairs_rejects_out_of_range_ids(users: list[int], items: list[int]) -> None:
    with pytest.raises(ValueError, match="must lie in"):
        csr_from_pairs(np.array(users), np.array(items), n_users=3, n_items=4)


@pytest.mark.parametrize(("n_users", "n_items"), [(1, 1), (7, 5), (40, 90)])
def test_csr_from_pairs_matches_dense_reference(n_users: int, n_items: int) -> None:
    rng = np.random.default_rng(n_users * 1000 + n_items)
    users = rng.integers(0, n_users, size=3 * n_items)
    items = rng.integers(0, n_items, size=3 * n_items)
    indptr, indices = csr_from_pairs(users, items, n_users, n_items)

    dense = np.zeros((n_users, n_items), dtype=bool)
    dense[users, items] = True
    for user in range(n_users):
        assert indices[indptr[user] : indptr[user + 1]].tolist() == np.flatnonzero(dense[user]).tolist()


# ---------------------------------------------------------------------------------------------------------
# topk_scores


def test_topk_excludes_masked_items_hand_example() -> None:
    # d = 1: scores are the item values times the user value.
    item_emb = torch.tensor([[3.0], [2.0], [1.0], [0.0]])
    user_emb = torch.tensor([[1.0], [1.0]])
    # user 0 excludes item 0; user 1 excludes items 1 and 2
    indptr, indices = csr_from_pairs(np.array([0, 1, 1]), np.array([0, 1, 2]), n_users=2, n_items=4)

    values, ids = topk_scores(user_emb, item_emb, indptr, indices, torch.tensor([0, 1]), k=2)

    assert ids.tolist() == [[1, 2], [0, 3]]
    assert values.tolist() == [[2.0, 1.0], [3.0, 0.0]]


def test_topk_rows_follow_given_user_ids() -> None:
    # Rows are for users 1 then 0: each row must use its own user's exclude set.
    item_emb = torch.tensor([[3.0], [2.0], [1.0]])
    user_emb = torch.ones(2, 1)
    indptr, indices = csr_from_pairs(np.array([0, 1]), np.array([0, 1]), n_users=2, n_items=3)

    _, ids = topk_scores(user_emb, item_emb, indptr, indices, torch.tensor([1, 0]), k=1)

    assert ids.tolist() == [[0], [1]]


def test_ties_rank_lower_item_id_first_inside_and_at_cutoff() -> None:
    # Scores: item 0..5 = [1, 2, 2, 2, 0, 2]; four items tie at 2 across the cut-off k = 3.
    item_emb = torch.tensor([[1.0], [2.0], [2.0], [2.0], [0.0], [2.0]])
    values, ids = topk_scores(torch.ones(1, 1), item_emb, None, None, torch.tensor([0]), k=3)
    assert ids.tolist() == [[1, 2, 3]]
    assert values.tolist() == [[2.0, 2.0, 2.0]]

    # All-zero embeddings: every score ties, the list is the lowest non-excluded ids.
    indptr, indices = csr_from_pairs(np.array([0, 0]), np.array([0, 2]), n_users=1, n_items=6)
    _, ids = topk_scores(torch.zeros(1, 4), torch.zeros(6, 4), indptr, indices, torch.tensor([0]), k=3)
    assert ids.tolist() == [[1, 3, 4]]


def test_short_lists_are_padded_and_never_return_excluded_items() -> None:
    item_emb = torch.tensor([[3.0], [2.0], [1.0]])
    # user 0 excludes items 0 and 2 (one candidate left); user 1 excludes everything.
    indptr, indices = csr_from_pairs(np.array([0, 0, 1, 1, 1]), np.array([0, 2, 0, 1, 2]), n_users=2, n_items=3)

    values, ids = topk_scores(torch.ones(2, 1), item_emb, indptr, indices, torch.tensor([0, 1]), k=5)

    assert ids.tolist() == [[1, -1, -1, -1, -1], [-1, -1, -1, -1, -1]]
    assert values[0, 0].item() == 2.0
    assert torch.isneginf(values[0, 1:]).all() and torch.isneginf(values[1]).all()


RANDOM_CASES = [
    # n_users, n_items, d, k, batch_size
    (1, 1, 2, 1, None),
    (5, 8, 3, 3, 2),
    (17, 30, 4, 10, 4),
    (17, 30, 4, 10, 100),
    (33, 12, 8, 20, 7),  # k > n_items: padding
    (64, 50, 16, 5, 1),
]


@pytest.mark.parametrize(("n_users", "n_items", "dim", "k", "batch_size"), RANDOM_CASES)
@pytest.mark.parametrize("integer_embeddings", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_topk_matches_brute_force_reference(
    n_users: int, n_items: int, dim: int, k: int, batch_size: int | None, integer_embeddings: bool, device: str
) -> None:
    rng = np.random.default_rng(n_users + 31 * n_items + 7 * k)
    if integer_embeddings:
        # Small integers make float32 scores exact and ties frequent, which exercises the tie rule.
        user_np = rng.integers(-1, 2, size=(n_users, dim)).astype(np.float32)
        item_np = rng.integers(-1, 2, size=(n_items, dim)).astype(np.float32)
    else:
        user_np = rng.standard_normal((n_users, dim)).astype(np.float32)
        item_np = rng.standard_normal((n_items, dim)).astype(np.float32)
    indptr, indices = random_csr(rng, n_users, n_items, density=0.3)

    values, ids = topk_scores(
        torch.from_numpy(user_np).to(device),
        torch.from_numpy(item_np).to(device),
        indptr,
        indices,
        torch.arange(n_users),
        k,
        batch_size,
    )
    assert ids.device.type == device
    values, ids = values.cpu(), ids.cpu()
    expected_ids, expected_values = reference_topk(
        user_np.astype(np.float64), item_np.astype(np.float64), rows_of(indptr, indices), k
    )

    assert ids.shape == (n_users, k) and ids.dtype == torch.int64
    assert ids.numpy().tolist() == expected_ids.tolist()
    np.testing.assert_allclose(values.numpy(), expected_values, rtol=1e-5, atol=1e-5)


# Catalogues large enough for the grouped top-k (groups of 32 items, at least 4 * (k + 1) groups), including
# a padded last group, users with fewer than k candidates, and users with every item excluded.
GROUPED_CASES = [
    # n_users, n_items, dim, k, batch_size
    (9, 1000, 4, 1, None),
    (9, 1000, 4, 7, 4),
    (6, 3000, 8, 20, None),
]


@pytest.mark.parametrize(("n_users", "n_items", "dim", "k", "batch_size"), GROUPED_CASES)
@pytest.mark.parametrize("integer_embeddings", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", DEVICES)
def test_topk_on_large_catalogues_matches_brute_force_reference(
    n_users: int, n_items: int, dim: int, k: int, batch_size: int | None, integer_embeddings: bool,
    dtype: torch.dtype, device: str,
) -> None:
    rng = np.random.default_rng(n_items + 13 * k)
    if integer_embeddings:
        user_np = rng.integers(-1, 2, size=(n_users, dim)).astype(np.float64)
        item_np = rng.integers(-1, 2, size=(n_items, dim)).astype(np.float64)
    else:
        user_np = rng.standard_normal((n_users, dim))
        item_np = rng.standard_normal((n_items, dim))
    user_np, item_np = user_np.astype(np.float32), item_np.astype(np.float32)  # same values for both dtypes
    dense = rng.random((n_users, n_items)) < 0.2
    dense[1, 2:] = True  # two candidates left: shorter than k = 7 and 20
    dense[2, :] = True  # nothing left
    indptr, indices = csr_from_pairs(*np.nonzero(dense), n_users, n_items)

    values, ids = topk_scores(
        torch.from_numpy(user_np).to(device=device, dtype=dtype),
        torch.from_numpy(item_np).to(device=device, dtype=dtype),
        indptr,
        indices,
        torch.arange(n_users),
        k,
        batch_size,
    )
    expected_ids, expected_values = reference_topk(
        user_np.astype(np.float64), item_np.astype(np.float64), rows_of(indptr, indices), k
    )
    assert ids.cpu().numpy().tolist() == expected_ids.tolist()
    assert values.dtype == dtype
    np.testing.assert_allclose(values.cpu().numpy(), expected_values, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [2, 3])
def test_grouped_topk_breaks_ties_inside_the_chosen_groups_by_item_id(k: int) -> None:
    # 12 groups of 32 items (the grouped path's smallest catalogue for k = 2). Scores are 0 except items 71
    # (group 2), 161 and 163 (group 5) at 5, and item 300 (group 9) at 3. Group maxima 5, 5, 3, 0, ...: only
    # groups 2, 5 (and 9 for k = 3) are ranked; 161 must come before 163.
    item_values = np.zeros(384, dtype=np.float32)
    item_values[[71, 161, 163]] = 5.0
    item_values[300] = 3.0
    item_emb = torch.from_numpy(item_values)[:, None]

    values, ids = topk_scores(torch.ones(1, 1), item_emb, None, None, torch.tensor([0]), k)

    assert ids.tolist() == [[71, 161, 163][:k]]
    assert values.tolist() == [[5.0] * k]
    # Excluding item 161 promotes 163, then item 300 at the cut-off.
    indptr, indices = csr_from_pairs(np.array([0]), np.array([161]), n_users=1, n_items=384)
    _, ids = topk_scores(torch.ones(1, 1), item_emb, indptr, indices, torch.tensor([0]), k)
    assert ids.tolist() == [[71, 163, 300][:k]]


def test_all_tied_scores_on_a_large_catalogue_give_the_lowest_candidate_ids() -> None:
    # All-zero embeddings: every group maximum ties, so every group of every row is ranked.
    indptr, indices = csr_from_pairs(np.array([0, 0, 1]), np.array([0, 2, 1]), n_users=3, n_items=1000)
    _, ids = topk_scores(torch.zeros(3, 4), torch.zeros(1000, 4), indptr, indices, torch.arange(3), 5)
    assert ids.tolist() == [[1, 3, 4, 5, 6], [0, 2, 3, 4, 5], [0, 1, 2, 3, 4]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_topk_is_independent_of_batch_size(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(3)
    user_emb = torch.randint(-2, 3, (50, 6), generator=generator).to(dtype)
    item_emb = torch.randint(-2, 3, (40, 6), generator=generator).to(dtype)
    indptr, indices = random_csr(np.random.default_rng(3), 50, 40, density=0.2)
    users = torch.arange(50)

    reference = topk_scores(user_emb, item_emb, indptr, indices, users, 7, batch_size=50)
    for batch_size in (1, 3, 16, 49):
        values, ids = topk_scores(user_emb, item_emb, indptr, indices, users, 7, batch_size=batch_size)
        assert torch.equal(ids, reference[1])
        assert torch.equal(values, reference[0])
        assert values.dtype == dtype


def test_topk_accepts_embeddings_that_require_grad() -> None:
    user_emb = torch.randn(3, 4, requires_grad=True)
    item_emb = torch.randn(5, 4, requires_grad=True)
    values, ids = topk_scores(user_emb, item_emb, None, None, torch.arange(3), 2)
    assert not values.requires_grad
    expected = torch.topk(user_emb.detach() @ item_emb.detach().T, 2, dim=1).indices
    assert torch.equal(ids, expected)


@pytest.mark.filterwarnings("error")
def test_topk_accepts_read_only_csr_arrays() -> None:
    # Memory-mapped .npy files are read-only; torch warns when wrapping them, so the ranker must copy.
    indptr, indices = csr_from_pairs(np.array([0]), np.array([1]), n_users=1, n_items=3)
    indptr.setflags(write=False)
    indices.setflags(write=False)
    _, ids = topk_scores(torch.ones(1, 1), torch.tensor([[3.0], [2.0], [1.0]]), indptr, indices, np.array([0]), 2)
    assert ids.tolist() == [[0, 2]]


def test_topk_rejects_bad_inputs() -> None:
    user_emb, item_emb = torch.randn(2, 3), torch.randn(4, 3)
    indptr, indices = csr_from_pairs(np.array([0]), np.array([1]), n_users=2, n_items=4)
    users = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="share d"):
        topk_scores(user_emb, torch.randn(4, 2), indptr, indices, users, 2)
    with pytest.raises(ValueError, match="finite"):
        topk_scores(torch.full((2, 3), float("nan")), item_emb, indptr, indices, users, 2)
    with pytest.raises(ValueError, match="one id per user_emb row"):
        topk_scores(user_emb, item_emb, indptr, indices, torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="exclude CSR"):
        topk_scores(user_emb, item_emb, indptr, indices, torch.tensor([0, 2]), 2)
    with pytest.raises(ValueError, match="item ids"):
        topk_scores(user_emb, item_emb, np.array([0, 1, 1]), np.array([4]), users, 2)
    with pytest.raises(ValueError, match="k must be"):
        topk_scores(user_emb, item_emb, indptr, indices, users, 0)


def test_rank_users_selects_rows_of_the_full_table() -> None:
    generator = torch.Generator().manual_seed(5)
    user_emb, item_emb = torch.randn(10, 4, generator=generator), torch.randn(12, 4, generator=generator)
    indptr, indices = random_csr(np.random.default_rng(5), 10, 12, density=0.25)
    chosen = np.array([7, 2, 9])

    ids, scores = rank_users(user_emb, item_emb, chosen, indptr, indices, k=4)

    expected_ids, expected_values = reference_topk(
        user_emb.numpy()[chosen].astype(np.float64),
        item_emb.numpy().astype(np.float64),
        [rows_of(indptr, indices)[user] for user in chosen],
        4,
    )
    assert ids.tolist() == expected_ids.tolist()
    np.testing.assert_allclose(scores.numpy(), expected_values, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# evaluate_ranking


def test_evaluate_ranking_hand_example() -> None:
    # d = 1, every user has value 1: the full order is items 0, 1, 2, 3.
    item_emb = torch.tensor([[4.0], [3.0], [2.0], [1.0]])
    user_emb = torch.ones(3, 1)
    # user 0 excludes item 0, truth {2}: list [1, 2] -> hits [0, 1]
    # user 1 has no truth: skipped
    # user 2 excludes nothing, truth {0, 3}: list [0, 1] -> hits [1, 0]
    exclude = csr_from_pairs(np.array([0]), np.array([0]), n_users=3, n_items=4)
    truth = csr_from_pairs(np.array([0, 2, 2]), np.array([2, 0, 3]), n_users=3, n_items=4)

    result = evaluate_ranking(user_emb, item_emb, *truth, *exclude, ks=[2], return_per_user=True)

    assert isinstance(result, RankingResult)
    assert result.n_users == 2
    assert result.users.tolist() == [0, 2]
    # recall@2: user 0 1/1, user 2 1/2 -> mean 0.75
    assert result.metrics["recall@2"] == pytest.approx(0.75)
    # ndcg@2: user 0 D1 / D0 = 0.6309298; user 2 D0 / (D0 + D1) = 0.6131472; mean 0.6220385
    assert result.metrics["ndcg@2"] == pytest.approx(0.6220385, abs=1e-7)
    # precision@2: 1/2 each; hit@2: 1 each
    assert result.metrics["precision@2"] == pytest.approx(0.5)
    assert result.metrics["hit@2"] == pytest.approx(1.0)
    # map@2: user 0 P@2 = 1/2, / min(1, 2) = 1 -> 0.5; user 2 P@1 = 1, / min(2, 2) = 2 -> 0.5
    assert result.metrics["map@2"] == pytest.approx(0.5)
    assert result.per_user is not None
    torch.testing.assert_close(result.per_user["recall@2"], torch.tensor([1.0, 0.5], dtype=torch.float64))


def test_excluded_truth_items_still_count_as_relevant() -> None:
    # truth {0, 1} but item 0 is excluded: it can never be hit, yet recall divides by 2.
    item_emb = torch.tensor([[2.0], [1.0], [0.0]])
    exclude = csr_from_pairs(np.array([0]), np.array([0]), n_users=1, n_items=3)
    truth = csr_from_pairs(np.array([0, 0]), np.array([0, 1]), n_users=1, n_items=3)

    result = evaluate_ranking(torch.ones(1, 1), item_emb, *truth, *exclude, ks=[1], metrics=["recall"])

    assert result.metrics == {"recall@1": pytest.approx(0.5)}


@pytest.mark.parametrize(("n_users", "n_items", "dim", "ks", "batch_size"), [
    (20, 15, 4, [1, 5], None),
    (40, 60, 8, [3, 10, 20], 7),
    (25, 8, 3, [5, 10], 1),  # max(k) > n_items: padded lists
])
@pytest.mark.parametrize("device", DEVICES)
def test_evaluate_ranking_matches_per_user_reference(
    n_users: int, n_items: int, dim: int, ks: list[int], batch_size: int | None, device: str
) -> None:
    rng = np.random.default_rng(n_users * 7 + n_items)
    user_np = rng.standard_normal((n_users, dim)).astype(np.float32)
    item_np = rng.standard_normal((n_items, dim)).astype(np.float32)
    exclude = random_csr(rng, n_users, n_items, density=0.3)
    truth = random_csr(rng, n_users, n_items, density=0.15)  # may overlap exclude; some users get none

    result = evaluate_ranking(
        torch.from_numpy(user_np).to(device),
        torch.from_numpy(item_np).to(device),
        *truth,
        *exclude,
        ks=ks,
        batch_size=batch_size,
        return_per_user=True,
    )

    truth_rows = rows_of(*truth)
    evaluated = [user for user in range(n_users) if truth_rows[user]]
    ranked, _ = reference_topk(user_np.astype(np.float64), item_np.astype(np.float64), rows_of(*exclude), max(ks))
    assert result.n_users == len(evaluated)
    assert result.users.tolist() == evaluated
    assert set(result.metrics) == {f"{name}@{k}" for name in ("recall", "ndcg", "precision", "hit", "map") for k in ks}
    for k in ks:
        per_user = [reference_user_metrics(ranked[user].tolist(), truth_rows[user], k) for user in evaluated]
        for name in ("recall", "ndcg", "precision", "hit", "map"):
            expected = [values[name] for values in per_user]
            assert result.per_user is not None
            np.testing.assert_allclose(result.per_user[f"{name}@{k}"].cpu().numpy(), expected, rtol=1e-12, atol=1e-12)
            assert result.metrics[f"{name}@{k}"] == pytest.approx(float(np.mean(expected)), rel=1e-12, abs=1e-12)


def test_users_without_truth_are_skipped() -> None:
    rng = np.random.default_rng(11)
    user_emb, item_emb = torch.randn(6, 3), torch.randn(9, 3)
    exclude = random_csr(rng, 6, 9, density=0.2)
    # Only users 1 and 4 have truth items.
    truth = csr_from_pairs(np.array([1, 1, 4]), np.array([0, 5, 8]), n_users=6, n_items=9)

    result = evaluate_ranking(user_emb, item_emb, *truth, *exclude, ks=[3], metrics=["recall", "ndcg"])
    assert result.n_users == 2
    assert result.users.tolist() == [1, 4]
    assert result.per_user is None
    assert list(result.metrics) == ["recall@3", "ndcg@3"]

    # The mean is over those two users only: it equals the evaluation of just their rows.
    keep = [1, 4]
    only_truth_users = evaluate_ranking(
        user_emb[keep], item_emb, *select_rows(*truth, keep, 9), *select_rows(*exclude, keep, 9),
        ks=[3], metrics=["recall", "ndcg"],
    )
    assert result.metrics == pytest.approx(only_truth_users.metrics)


def test_no_user_with_truth_gives_nan_and_zero_users() -> None:
    empty_truth = csr_from_pairs(np.array([], dtype=np.int64), np.array([], dtype=np.int64), 3, 4)
    result = evaluate_ranking(torch.randn(3, 2), torch.randn(4, 2), *empty_truth, None, None, ks=[2], metrics=["hit"])
    assert result.n_users == 0
    assert np.isnan(result.metrics["hit@2"])


def test_evaluate_ranking_rejects_bad_arguments() -> None:
    truth = csr_from_pairs(np.array([0]), np.array([1]), n_users=2, n_items=3)
    user_emb, item_emb = torch.randn(2, 2), torch.randn(3, 2)
    with pytest.raises(ValueError, match="known names"):
        evaluate_ranking(user_emb, item_emb, *truth, None, None, ks=[2], metrics=["auc"])
    with pytest.raises(ValueError, match="ks must be"):
        evaluate_ranking(user_emb, item_emb, *truth, None, None, ks=[])
    with pytest.raises(ValueError, match="truth_indptr"):
        evaluate_ranking(torch.randn(3, 2), item_emb, *truth, None, None, ks=[2])
