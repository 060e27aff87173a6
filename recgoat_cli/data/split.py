"""From read interactions to split ones: dedupe, rating threshold, k-core, id remapping and the per-user split.

``split_interactions`` runs these steps in order and counts users, items and interactions after each:

1. **dedupe** (user, item) pairs, keeping the latest interaction: the largest timestamp, ties and files without
   timestamps broken by the later line. The latest rating is the user's current opinion.
2. **rating threshold**: keep rows with ``rating >= rating_threshold``. It runs before the k-core so that the core
   is computed on the interactions that are kept.
3. **k-core**, iterated to a fixed point: rows of users with fewer than ``user_core`` items or of items with fewer
   than ``item_core`` users are dropped, then counted again, until both conditions hold at once for every row.
4. **remap ids** to contiguous integers from 0, in order of the sorted original id: numeric order when every id is
   an integer, string order otherwise. The order then depends only on the set of ids, not on the file's row order.
5. **split** each user's items (see ``split_sizes`` for the per-user counts):

   - ``random``: a seeded random order per user; the last ``n_test`` items go to test, the ``n_valid`` before them to
     valid. Random keys are drawn with ``numpy.random.Generator.random`` over the interactions sorted by (new user
     id, new item id), so the split depends only on the kept interactions and the seed.
   - ``temporal``: the same sizes, in timestamp order (ties by line): every test item is at least as late as every
     valid item, which is at least as late as every train item. Needs a time column.
   - ``loo`` (leave-one-out): the latest item goes to test and the second latest to valid (users with 2 items: one
     train, one test; users with 1 item: train only). Ratios are ignored. Without a time column the order is the
     seeded random order of ``random`` (recorded as ``"order": "random"``, with a warning).

   Every user keeps at least one train item, and no (user, item) pair is in two splits (pairs are unique after the
   dedupe). An item may end up only in valid/test; the split counts say how many.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from recgoat_cli.data.layout import SPLITS, TEST, TRAIN, VALID
from recgoat_cli.data.raw import ROW_COLUMN, Interactions
from recgoat_cli.errors import UserError

SPLIT_KINDS = ("random", "temporal", "loo")
_INTEGER_ID = re.compile(r"-?\d+")


# ----------------------------------------------------------------------------------------------------------------
# Pure steps: arrays in, arrays out. Tested directly and through run_prepare.
# ----------------------------------------------------------------------------------------------------------------


def latest_of_pairs(users: np.ndarray, items: np.ndarray, rows: np.ndarray, times: np.ndarray | None) -> np.ndarray:
    """Indices, in file order, of the latest row of each (user, item) pair: the largest time, then the later line.

    Shapes:
        users, items, rows: (n,) integer codes and line positions; times: (n,) or None; result: (n_pairs,) int
    """
    # The last row in (user, item, time, line) order is the latest interaction of its pair.
    keys = (rows, times, items, users) if times is not None else (rows, items, users)
    order = np.lexsort(keys)
    pair_u, pair_i = users[order], items[order]
    last_of_pair = np.ones(len(order), dtype=bool)
    last_of_pair[:-1] = (pair_u[1:] != pair_u[:-1]) | (pair_i[1:] != pair_i[:-1])
    return np.sort(order[last_of_pair])  # back to file order


def k_core_mask(users: np.ndarray, items: np.ndarray, user_core: int, item_core: int) -> tuple[np.ndarray, int]:
    """Rows kept by the (user_core, item_core)-core of a bipartite graph of unique (user, item) pairs.

    Repeats "drop every row whose user has < user_core kept rows or whose item has < item_core kept rows" until
    nothing changes, so at the end both conditions hold together. The result is the largest such sub-graph: a row
    is dropped only when it cannot be part of any core. Returns ``(mask, passes)``; ``passes`` counts the rounds
    that dropped something.

    Shapes:
        users, items: (n,) non-negative integer codes; mask: (n,) bool
    """
    keep = np.ones(len(users), dtype=bool)
    if user_core <= 1 and item_core <= 1:
        return keep, 0
    n_users = int(users.max()) + 1 if len(users) else 0
    n_items = int(items.max()) + 1 if len(items) else 0
    passes = 0
    while True:
        user_degree = np.bincount(users[keep], minlength=n_users)
        item_degree = np.bincount(items[keep], minlength=n_items)
        drop = keep & ((user_degree[users] < user_core) | (item_degree[items] < item_core))
        if not drop.any():
            return keep, passes
        keep &= ~drop
        passes += 1


def split_sizes(n: int, ratios: Sequence[float]) -> tuple[int, int, int]:
    """(n_train, n_valid, n_test) for a user with ``n`` items under ``(r_train, r_valid, r_test)``.

    Rule: ``n_valid = round(n * r_valid)`` and ``n_test = round(n * r_test)``, rounded half up; each is at least 1
    when its ratio is > 0; then, while fewer than one item is left for train, the larger of valid/test (valid on a
    tie) gives one back. Consequences with 8:1:1: n=1 -> 1/0/0, n=2 -> 1/0/1, n=3..14 -> (n-2)/1/1, n=15 -> 11/2/2.
    Every user keeps >= 1 train item, and users with >= 3 items get >= 1 valid and >= 1 test item.
    """
    _, r_valid, r_test = ratios
    # The epsilon keeps products like 25 * 0.1 = 2.4999999999999996 rounding up like the 2.5 they stand for.
    n_valid = math.floor(n * r_valid + 0.5 + 1e-9)
    n_test = math.floor(n * r_test + 0.5 + 1e-9)
    if r_valid > 0:
        n_valid = max(n_valid, 1)
    if r_test > 0:
        n_test = max(n_test, 1)
    while n - n_valid - n_test < 1 and (n_valid > 0 or n_test > 0):
        if n_valid >= n_test and n_valid > 0:
            n_valid -= 1
        else:
            n_test -= 1
    return n - n_valid - n_test, n_valid, n_test


def loo_sizes(n: int) -> tuple[int, int, int]:
    """(n_train, n_valid, n_test) for leave-one-out: one test from 2 items up, one valid from 3 items up."""
    n_test = 1 if n >= 2 else 0
    n_valid = 1 if n >= 3 else 0
    return n - n_valid - n_test, n_valid, n_test


def assign_split_labels(
    users: np.ndarray, order_keys: Sequence[np.ndarray], sizes: Callable[[int], tuple[int, int, int]]
) -> np.ndarray:
    """x_label per row: within each user, rows sorted by ``order_keys`` (primary key first) are labelled
    train for the first ``n_train``, then valid, then test, with ``sizes(n) = (n_train, n_valid, n_test)``.

    Shapes:
        users: (n,) integer codes; each order key: (n,); result: (n,) int8 in {0, 1, 2}
    """
    n_rows = len(users)
    labels = np.zeros(n_rows, dtype=np.int8)
    if n_rows == 0:
        return labels
    # np.lexsort sorts by its last key first: users, then the order keys in the given priority.
    order = np.lexsort(tuple(reversed(order_keys)) + (users,))
    sorted_users = users[order]
    counts = np.bincount(sorted_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(n_rows) - starts[sorted_users]
    distinct_counts, count_index = np.unique(counts, return_inverse=True)
    size_table = np.array([sizes(int(c)) for c in distinct_counts], dtype=np.int64).reshape(-1, 3)
    n_train = size_table[count_index, 0][sorted_users]
    n_valid = size_table[count_index, 1][sorted_users]
    sorted_labels = np.where(position < n_train, TRAIN, np.where(position < n_train + n_valid, VALID, TEST))
    labels[order] = sorted_labels
    return labels


def sorted_id_order(original_ids: Sequence[str]) -> list[str]:
    """Original ids in the order that defines the new ids: numeric when all are integers, else as strings."""
    ids = list(original_ids)
    if all(_INTEGER_ID.fullmatch(i) for i in ids):
        return sorted(ids, key=lambda i: (int(i), i))
    return sorted(ids)


# ----------------------------------------------------------------------------------------------------------------
# The steps together
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class SplitInteractions:
    """The kept interactions under their new ids, sorted by (userID, x_label, itemID), and what each step did.

    Shapes:
        users, items, rows (position in the read file): (n,) int64; labels: (n,) int8; times, ratings: (n,) or None
    """

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray
    rows: np.ndarray
    times: np.ndarray | None
    ratings: np.ndarray | None
    user_originals: list[str]  # original id of each new user id
    item_originals: list[str]
    steps: list[dict[str, Any]]  # counts after read, dedupe, [rating_threshold], [k_core]
    split_counts: dict[str, int]
    order: str  # "timestamp" or "random": what ordered each user's items for the split


def _counts(users: np.ndarray, items: np.ndarray) -> dict[str, int]:
    return {"interactions": int(len(users)), "users": int(len(np.unique(users))), "items": int(len(np.unique(items)))}


def split_interactions(
    interactions: Interactions, *, rating_threshold: float | None, user_core: int, item_core: int, split: str,
    ratios: tuple[float, float, float], seed: int,
) -> SplitInteractions:
    """Dedupe, filter, remap and split ``interactions`` (see the module docstring for every rule).

    A filter that removes every interaction is a ``UserError``; ``split="loo"`` without timestamps warns.
    """
    frame = interactions.frame
    has_time = interactions.time_col is not None
    has_rating = interactions.rating_col is not None
    # Codes in string order for the filtering steps; the final ids are assigned after filtering.
    user_codes = frame["user"].rank("dense").cast(pl.Int64).to_numpy() - 1
    item_codes = frame["item"].rank("dense").cast(pl.Int64).to_numpy() - 1
    rows = frame[ROW_COLUMN].to_numpy()
    times = frame["time"].to_numpy() if has_time else None
    ratings = frame["rating"].to_numpy() if has_rating else None
    steps: list[dict[str, Any]] = [{"step": "read", **_counts(user_codes, item_codes)}]

    keep = latest_of_pairs(user_codes, item_codes, rows, times)
    removed = len(rows) - len(keep)
    user_codes, item_codes, rows = user_codes[keep], item_codes[keep], rows[keep]
    times = times[keep] if times is not None else None
    ratings = ratings[keep] if ratings is not None else None
    steps.append({"step": "dedupe", "rule": "keep the latest (largest timestamp, then later line)",
                  "removed": removed, **_counts(user_codes, item_codes)})

    if rating_threshold is not None:
        assert ratings is not None
        keep = ratings >= rating_threshold
        user_codes, item_codes, rows, ratings = user_codes[keep], item_codes[keep], rows[keep], ratings[keep]
        times = times[keep] if times is not None else None
        steps.append({"step": "rating_threshold", "threshold": rating_threshold,
                      "removed": int((~keep).sum()), **_counts(user_codes, item_codes)})
        if len(rows) == 0:
            raise UserError(
                f"--rating-threshold {rating_threshold} removed every interaction of {interactions.path}; "
                "lower the threshold."
            )

    if user_core > 1 or item_core > 1:
        keep, passes = k_core_mask(user_codes, item_codes, user_core, item_core)
        user_codes, item_codes, rows = user_codes[keep], item_codes[keep], rows[keep]
        times = times[keep] if times is not None else None
        ratings = ratings[keep] if ratings is not None else None
        steps.append({"step": "k_core", "user_core": user_core, "item_core": item_core,
                      "passes": passes, "removed": int((~keep).sum()), **_counts(user_codes, item_codes)})
        if len(rows) == 0:
            raise UserError(
                f"k-core (--user-core {user_core}, --item-core {item_core}) removed every interaction "
                f"of {interactions.path}; lower --user-core or --item-core."
            )

    # Final ids: sorted original ids (numeric order when all ids are integers).
    user_strings = frame["user"].to_numpy()[rows]
    item_strings = frame["item"].to_numpy()[rows]
    user_originals = sorted_id_order(set(user_strings.tolist()))
    item_originals = sorted_id_order(set(item_strings.tolist()))
    user_index = {u: i for i, u in enumerate(user_originals)}
    item_index = {v: i for i, v in enumerate(item_originals)}
    users = np.fromiter((user_index[u] for u in user_strings), dtype=np.int64, count=len(user_strings))
    items = np.fromiter((item_index[v] for v in item_strings), dtype=np.int64, count=len(item_strings))

    # Order within each user: time (then line) for temporal and for loo with timestamps, else seeded random keys.
    rng = np.random.default_rng(seed)
    use_time_order = split == "temporal" or (split == "loo" and has_time)
    if use_time_order:
        assert times is not None
        order_keys: list[np.ndarray] = [times, rows]
    else:
        canonical = np.lexsort((items, users))
        random_keys = np.empty(len(users))
        random_keys[canonical] = rng.random(len(users))
        order_keys = [random_keys, items]
    if split == "loo" and not has_time:
        warnings.warn(
            f"--split loo without a time column in {interactions.path}: each user's held-out items are chosen in a "
            f"random order seeded by --seed {seed}.",
            stacklevel=3,  # the caller of run_prepare
        )
    sizes = loo_sizes if split == "loo" else (lambda n: split_sizes(n, ratios))
    labels = assign_split_labels(users, order_keys, sizes)

    result_order = np.lexsort((items, labels, users))
    users, items, labels, rows = users[result_order], items[result_order], labels[result_order], rows[result_order]
    times = times[result_order] if times is not None else None
    ratings = ratings[result_order] if ratings is not None else None

    train_items = np.unique(items[labels == TRAIN])
    split_counts = {
        **{SPLITS[code]: int((labels == code).sum()) for code in (TRAIN, VALID, TEST)},
        "users_with_valid": int(len(np.unique(users[labels == VALID]))),
        "users_with_test": int(len(np.unique(users[labels == TEST]))),
        "items_without_train": int(len(item_originals) - len(train_items)),
    }

    return SplitInteractions(users, items, labels, rows, times, ratings, user_originals, item_originals, steps,
                             split_counts, "timestamp" if use_time_order else "random")
