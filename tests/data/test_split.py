"""Tests of recgoat_cli/data/split.py's pure steps: arrays in, arrays out, checked against hand-computed values.

The steps together (split_interactions) are tested through ``run_prepare`` in tests/stages/test_prepare.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from recgoat_cli.data.split import (
    assign_split_labels,
    k_core_mask,
    latest_of_pairs,
    loo_sizes,
    sorted_id_order,
    split_sizes,
)


def test_latest_of_pairs_keeps_the_largest_time_then_the_later_line():
    users = np.array([0, 0, 1, 0, 1, 0])
    items = np.array([5, 5, 5, 6, 5, 5])
    rows = np.arange(6)
    times = np.array([3.0, 7.0, 1.0, 2.0, 1.0, 7.0])
    # (0, 5): rows 0, 1, 5 with times 3, 7, 7 -> row 5 (the later of the two 7s); (1, 5): rows 2, 4, same time -> 4.
    assert latest_of_pairs(users, items, rows, times).tolist() == [3, 4, 5]
    # Without times the later line wins.
    assert latest_of_pairs(users, items, rows, None).tolist() == [3, 4, 5]
    assert latest_of_pairs(users[:2], items[:2], rows[:2], np.array([9.0, 1.0])).tolist() == [0]


def test_k_core_needs_several_passes_to_reach_the_fixed_point():
    # u3 has one item (i2): dropping it leaves i2 with one user, dropping i2 leaves u2 with one item.
    pairs = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 1), (2, 2), (3, 2)]
    users = np.array([u for u, _ in pairs])
    items = np.array([i for _, i in pairs])
    keep, passes = k_core_mask(users, items, user_core=2, item_core=2)
    assert keep.tolist() == [True, True, True, True, False, False, False]
    assert passes == 3


@pytest.mark.parametrize("user_core,item_core", [(0, 0), (1, 1), (2, 0), (0, 3), (3, 3)])
def test_k_core_result_satisfies_both_thresholds(user_core, item_core):
    rng = np.random.default_rng(0)
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, 15, 120), rng.integers(0, 10, 120))}
    users = np.array([u for u, _ in sorted(pairs)])
    items = np.array([i for _, i in sorted(pairs)])
    keep, _ = k_core_mask(users, items, user_core, item_core)
    if keep.any():
        assert np.bincount(users[keep])[np.unique(users[keep])].min() >= user_core
        assert np.bincount(items[keep])[np.unique(items[keep])].min() >= item_core


@pytest.mark.parametrize(
    "n,expected",
    [(0, (0, 0, 0)), (1, (1, 0, 0)), (2, (1, 0, 1)), (3, (1, 1, 1)), (9, (7, 1, 1)), (10, (8, 1, 1)),
     (14, (12, 1, 1)), (15, (11, 2, 2)), (25, (19, 3, 3)), (100, (80, 10, 10))],
)
def test_split_sizes_by_hand(n, expected):
    assert split_sizes(n, (0.8, 0.1, 0.1)) == expected


def test_split_sizes_with_a_zero_valid_ratio_and_a_large_test_ratio():
    assert split_sizes(5, (0.8, 0.0, 0.2)) == (4, 0, 1)
    assert split_sizes(2, (0.8, 0.0, 0.2)) == (1, 0, 1)
    # Test wants all 3 items: it gives back until one train item is left, valid keeps its one.
    assert split_sizes(3, (0.05, 0.05, 0.9)) == (1, 1, 1)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 7])
def test_loo_sizes(n):
    n_train, n_valid, n_test = loo_sizes(n)
    assert n_train + n_valid + n_test == n
    assert n_test == (1 if n >= 2 else 0) and n_valid == (1 if n >= 3 else 0)


def test_assign_split_labels_follows_the_order_keys():
    users = np.array([0, 0, 0, 1, 1, 0])
    time = np.array([5.0, 1.0, 3.0, 2.0, 1.0, 4.0])
    labels = assign_split_labels(users, [time], loo_sizes)
    # user 0 times 1,3,4,5 -> the time-5 row is test, time-4 valid; user 1: time-2 row is test.
    assert labels.tolist() == [2, 0, 0, 2, 0, 1]


def test_sorted_id_order_is_numeric_for_integers_and_textual_otherwise():
    assert sorted_id_order(["10", "9", "100", "-1"]) == ["-1", "9", "10", "100"]
    assert sorted_id_order(["b10", "b9", "a"]) == ["a", "b10", "b9"]
