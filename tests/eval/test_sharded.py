"""The user sharding of full ranking: emptied rows, and the one-process path is ``evaluate_ranking``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recgoat_cli.eval.ranker import csr_from_pairs, evaluate_ranking
from recgoat_cli.eval.sharded import csr_row_range, evaluate_ranking_sharded


def test_csr_row_range_empties_the_other_rows():
    indptr, indices = csr_from_pairs(np.array([0, 0, 1, 3, 3, 3]), np.array([1, 2, 0, 0, 1, 2]), 4, 3)
    kept_indptr, kept_indices = csr_row_range(indptr, indices, 1, 2)
    assert kept_indptr.tolist() == [0, 0, 1, 1, 1]
    assert kept_indices.tolist() == [0]


@pytest.mark.parametrize(("first", "last"), [(0, 9), (3, 6), (9, 9)])
def test_row_ranges_split_the_per_user_metric_sums(first, last):
    g = torch.Generator().manual_seed(0)
    users, items = torch.randn(10, 4, generator=g), torch.randn(12, 4, generator=g)
    rng = np.random.default_rng(0)
    truth = csr_from_pairs(rng.integers(0, 10, 30), rng.integers(0, 12, 30), 10, 12)
    exclude = csr_from_pairs(rng.integers(0, 10, 20), rng.integers(0, 12, 20), 10, 12)
    whole = evaluate_ranking(users, items, *truth, *exclude, ks=[5], return_per_user=True)
    inside = evaluate_ranking(users, items, *csr_row_range(*truth, first, last), *exclude, ks=[5], return_per_user=True)
    expected = [u for u in whole.users.tolist() if first <= u <= last]
    assert inside.users.tolist() == expected
    rows = [whole.users.tolist().index(u) for u in expected]
    assert torch.equal(inside.per_user["recall@5"], whole.per_user["recall@5"][rows])


def test_one_process_is_evaluate_ranking():
    g = torch.Generator().manual_seed(1)
    users, items = torch.randn(8, 4, generator=g), torch.randn(9, 4, generator=g)
    truth = csr_from_pairs(np.array([0, 2, 2, 5, 7]), np.array([1, 3, 4, 0, 8]), 8, 9)
    metrics, n_users = evaluate_ranking_sharded(users, items, truth, None, ks=[3, 5])
    expected = evaluate_ranking(users, items, *truth, None, None, ks=[3, 5])
    assert metrics == expected.metrics and n_users == expected.n_users == 4
