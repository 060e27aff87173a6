"""User-user k-nearest-neighbour lists from shared training interactions.

Pure functions, no I/O. The lists have the format of :func:`recgoat_cli.graphs.item_knn.blockwise_topk_cosine`
(which also gives the neighbours of user embeddings, with ``entity="users"``), ready for
:func:`recgoat_cli.graphs.item_knn.knn_graph`.

Co-interaction similarity, with the binary training matrix :math:`R \\in \\{0,1\\}^{U \\times I}`
(repeated interactions count once), :math:`c_{uv} = (R R^\\top)_{uv}` the number of items both users
interacted with and :math:`d_u = |\\{i : R_{ui} = 1\\}|`:

- ``"count"``: :math:`c_{uv}`
- ``"cosine"``: :math:`c_{uv} / \\sqrt{d_u d_v}`
- ``"jaccard"``: :math:`c_{uv} / (d_u + d_v - c_{uv})`

It is computed for a block of users at a time as the sparse product :math:`R_B R^\\top`, never as a dense
``U x U`` matrix; only user pairs that share at least one item are neighbours. The block's top-k is taken by
sorting its stored pairs, or, when at least a quarter of the block's ``B x U`` entries are stored anyway
(popular items link most users), from the dense ``B x U`` block, which is then the faster route.

The caller passes the **training** interactions only: a validation or test interaction passed here would
link users through items the model is later asked to predict.

Shapes:
    - user_emb: ``[U, d]`` float
    - train_users, train_items: ``[E]`` int
    - returns indices ``[U, k]`` int64 and values ``[U, k]`` float32
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from recgoat_cli.graphs.item_knn import DEFAULT_MEMORY_BUDGET_BYTES, check_neighbour_count
from recgoat_cli.graphs.user_item import user_item_edges
from recgoat_cli.topk import exact_topk, row_score_order_numpy

__all__ = ["user_knn_from_co_interaction"]

CoInteractionMeasure = Literal["count", "cosine", "jaccard"]

# Bytes held per stored entry of a block's sparse product at the peak: the CSR product (float32 value, int32
# column), int64 row ids, float64 counts and similarity, the int64 sort key and order, and the selections.
# The dense route (taken only when a quarter of the block is stored) needs under 8 bytes per dense entry,
# so under 32 per stored one.
_BYTES_PER_PRODUCT_ENTRY = 64


def _user_blocks(product_size_bound: np.ndarray, entries_per_block: int) -> list[tuple[int, int]]:
    """Consecutive user ranges whose summed product-size bound stays within ``entries_per_block``.

    A single user whose bound exceeds it still gets a block of its own.
    """
    blocks = []
    start = 0
    n_users = product_size_bound.size
    cumulative = np.concatenate([[0], np.cumsum(product_size_bound, dtype=np.int64)])
    while start < n_users:
        stop = int(np.searchsorted(cumulative, cumulative[start] + entries_per_block, side="right")) - 1
        stop = max(stop, start + 1)
        blocks.append((start, stop))
        start = stop
    return blocks


def _block_similarity(
    shared: sp.csr_matrix, start: int, user_degree: np.ndarray, measure: CoInteractionMeasure
) -> sp.csr_matrix:
    """Turn the shared-item counts of users ``start..`` (rows) with all users into float32 similarities.

    Self pairs get similarity 0, which marks "not a neighbour" like every pair that is not stored. Values
    are computed in float64 and rounded once to float32, the precision returned and ranked on.
    """
    rows = np.repeat(np.arange(start, start + shared.shape[0], dtype=np.int64), np.diff(shared.indptr))
    cols = shared.indices
    counts = shared.data.astype(np.float64)
    if measure == "count":
        similarity = counts
    elif measure == "cosine":
        similarity = counts / np.sqrt(user_degree[rows] * user_degree[cols])
    else:
        similarity = counts / (user_degree[rows] + user_degree[cols] - counts)
    similarity = similarity.astype(np.float32)
    similarity[cols == rows] = 0.0
    shared.data = similarity
    return shared


def _topk_of_sparse_rows(similarity: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` positive entries of each row of a CSR matrix, ties by lower column; -1/0 padded."""
    # Columns ascending within each row, so that the stable sort below orders ties by column.
    similarity.sort_indices()
    n_rows = similarity.shape[0]
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(similarity.indptr))
    # (row, -value) with columns already ascending: the tie rule of recgoat_cli.topk.
    order = row_score_order_numpy(rows, similarity.data)
    # The order sorts by row first, so position p of the sorted order still belongs to row rows[p].
    rank = np.arange(rows.size, dtype=np.int64) - similarity.indptr[rows]
    top = rank < k
    chosen = order[top]
    top_rows, top_rank = rows[top], rank[top]
    top_values = similarity.data[chosen]
    positive = top_values > 0
    indices = np.full((n_rows, k), -1, dtype=np.int64)
    values = np.zeros((n_rows, k), dtype=np.float32)
    indices[top_rows[positive], top_rank[positive]] = similarity.indices[chosen][positive]
    values[top_rows[positive], top_rank[positive]] = top_values[positive]
    return indices, values


def _topk_of_dense_rows(similarity: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Same result as :func:`_topk_of_sparse_rows`, through a dense block and :func:`exact_topk`."""
    top_values, top_indices = exact_topk(torch.from_numpy(similarity.toarray()), k)
    top_values, top_indices = top_values.numpy(), top_indices.numpy()
    empty = top_values <= 0
    top_indices[empty] = -1
    top_values[empty] = 0.0
    return top_indices, top_values


def user_knn_from_co_interaction(
    train_users: torch.Tensor | np.ndarray,
    train_items: torch.Tensor | np.ndarray,
    n_users: int,
    n_items: int,
    k: int,
    *,
    measure: CoInteractionMeasure = "count",
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For every user, the ``k`` users sharing the most training items (by ``measure``).

    Only users that share at least one item are neighbours. A user with fewer than ``k`` such users gets
    the remaining slots filled with index ``-1`` and value ``0`` (``knn_graph`` drops them). Ties are
    ordered by increasing user index, as in ``blockwise_topk_cosine``.

    Pass the **training** interactions only (see the module docstring).

    Args:
        measure: ``"count"``, ``"cosine"`` or ``"jaccard"`` (see the module docstring).
        memory_budget_bytes: bound on one block's sparse product and sort buffers (64 bytes per stored
            pair); blocks are sized from an upper bound of each user's number of co-interacting users.
        progress: called as ``progress(users_done, n_users)`` after each block.

    Returns:
        ``(indices, values)``: ``[U, k]`` int64 (``-1`` for an empty slot) and ``[U, k]`` float32, each row
        ordered by decreasing similarity, then increasing user index.

    Raises:
        NeighbourCountError: ``k`` is below 1 or not smaller than ``n_users``.
    """
    if measure not in ("count", "cosine", "jaccard"):
        raise ValueError(f"measure must be 'count', 'cosine' or 'jaccard', got {measure!r}")
    check_neighbour_count(k, n_users, True, "users")
    users, items = user_item_edges(train_users, train_items, n_users, n_items)
    interactions = sp.csr_matrix(
        (np.ones(users.size, dtype=np.float32), (users, items)), shape=(n_users, n_items)
    )
    item_users = interactions.T.tocsr()
    user_degree = np.bincount(users, minlength=n_users).astype(np.float64)
    item_degree = np.bincount(items, minlength=n_items).astype(np.int64)
    # Row u of R R^T stores at most sum_{i in u} deg(i) entries (and at most U).
    product_size_bound = np.minimum(
        np.bincount(users, weights=item_degree[items], minlength=n_users).astype(np.int64), n_users
    )
    entries_per_block = max(1, int(memory_budget_bytes) // _BYTES_PER_PRODUCT_ENTRY)

    indices = np.full((n_users, k), -1, dtype=np.int64)
    values = np.zeros((n_users, k), dtype=np.float32)
    for start, stop in _user_blocks(product_size_bound, entries_per_block):
        similarity = _block_similarity(interactions[start:stop] @ item_users, start, user_degree, measure)
        # Dense top-k costs a few ns per (user, user) entry, the sort a few tens per stored pair: once a
        # quarter of the block's entries are stored, the dense route is the cheaper one.
        if 4 * similarity.nnz >= similarity.shape[0] * similarity.shape[1]:
            indices[start:stop], values[start:stop] = _topk_of_dense_rows(similarity, k)
        else:
            indices[start:stop], values[start:stop] = _topk_of_sparse_rows(similarity, k)
        if progress is not None:
            progress(stop, n_users)
    return indices, values
