"""The user-item interaction graph and its symmetrically normalised bipartite adjacency (LightGCN's propagation
matrix). Pure functions: index arrays in, arrays or sparse tensors out, no I/O.

With the binary interaction matrix :math:`R \\in \\{0, 1\\}^{U \\times I}` (repeated interactions count once),

.. math::
    A = \\begin{pmatrix} 0 & R \\\\ R^\\top & 0 \\end{pmatrix}, \\qquad
    \\hat A = D^{-1/2} A D^{-1/2}, \\qquad D = \\mathrm{diag}(A \\mathbf 1),

so :math:`\\hat A_{u, U + i} = \\hat A_{U + i, u} = 1 / \\sqrt{d_u d_i}` for every interaction :math:`(u, i)`.
Users are nodes ``0 .. U-1`` and items nodes ``U .. U+I-1``. A node without interactions has no entries
(never a division by zero).

The caller passes the **training** interactions only: anything passed here becomes a message-passing edge,
so validation or test interactions must not reach these functions.

Shapes:
    - train_users, train_items: ``[E]`` int (numpy or torch), ``0 <= user < U``, ``0 <= item < I``
    - edges: users ``[E']`` int64, items ``[E']`` int64, ``E' <= E`` after removing duplicates
    - adjacency: sparse ``[U + I, U + I]`` float32 with ``2 E'`` stored entries
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import torch

__all__ = ["user_item_edges", "normalized_bipartite_coo", "normalized_bipartite_adjacency"]


def _as_int64(a: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of ids, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer ids, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def user_item_edges(
    train_users: torch.Tensor | np.ndarray,
    train_items: torch.Tensor | np.ndarray,
    n_users: int,
    n_items: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``(user, item)`` training pairs, sorted by user then item.

    Returns:
        ``(users, items)``: ``[E']`` int64 each.

    Raises:
        ValueError: the arrays differ in length or hold an id outside ``[0, n_users)`` / ``[0, n_items)``
            (the prepare stage produces contiguous ids, so this is a bug upstream).
    """
    users = _as_int64(train_users, "train_users")
    items = _as_int64(train_items, "train_items")
    if users.shape != items.shape:
        raise ValueError(f"train_users and train_items differ in length: {users.size} vs {items.size}")
    if users.size:
        if users.min() < 0 or users.max() >= n_users:
            raise ValueError(f"user ids must lie in [0, {n_users}), got [{users.min()}, {users.max()}]")
        if items.min() < 0 or items.max() >= n_items:
            raise ValueError(f"item ids must lie in [0, {n_items}), got [{items.min()}, {items.max()}]")
    stride = np.int64(max(n_items, 1))
    sorted_users, sorted_items = np.divmod(np.unique(users * stride + items), stride)
    return sorted_users.astype(np.int64), sorted_items.astype(np.int64)


def normalized_bipartite_coo(
    train_users: torch.Tensor | np.ndarray,
    train_items: torch.Tensor | np.ndarray,
    n_users: int,
    n_items: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COO triplets of :math:`D^{-1/2} A D^{-1/2}` (see the module docstring), sorted by ``(row, col)``.

    Returns:
        ``(rows, cols, weights)``: ``[2E']`` int64, int64, float32 over ``[U + I, U + I]``.
    """
    users, items = user_item_edges(train_users, train_items, n_users, n_items)
    user_degree = np.bincount(users, minlength=n_users).astype(np.float64)
    item_degree = np.bincount(items, minlength=n_items).astype(np.float64)
    # Every edge's endpoints have degree >= 1, so the square root is of a positive number.
    edge_weight = (1.0 / np.sqrt(user_degree[users] * item_degree[items])).astype(np.float32)
    item_nodes = items + n_users
    rows = np.concatenate([users, item_nodes])
    cols = np.concatenate([item_nodes, users])
    weights = np.concatenate([edge_weight, edge_weight])
    order = np.lexsort((cols, rows))
    return rows[order], cols[order], weights[order]


def normalized_bipartite_adjacency(
    train_users: torch.Tensor | np.ndarray,
    train_items: torch.Tensor | np.ndarray,
    n_users: int,
    n_items: int,
    *,
    layout: Literal["coo", "csr"] = "coo",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """LightGCN's propagation matrix :math:`D^{-1/2} A D^{-1/2}` as a torch sparse tensor.

    Args:
        layout: ``"coo"`` (coalesced) or ``"csr"``; both work with ``torch.sparse.mm``.
        device: where to build the tensor (default CPU).

    Shapes:
        - returns ``[U + I, U + I]`` float32, symmetric, ``2 E'`` stored entries
    """
    if layout not in ("coo", "csr"):
        raise ValueError(f"layout must be 'coo' or 'csr', got {layout!r}")
    rows, cols, weights = normalized_bipartite_coo(train_users, train_items, n_users, n_items)
    n_nodes = n_users + n_items
    adjacency = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([rows, cols])),
        torch.from_numpy(weights),
        (n_nodes, n_nodes),
        device=device,
        is_coalesced=True,
        # The triplets are built sorted and deduplicated above, so torch's checks would only cost time.
        check_invariants=False,
    )
    if layout == "csr":
        with warnings.catch_warnings():
            # torch notes on every conversion that CSR is "beta"; sparse.mm on CSR is what LightGCN needs.
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return adjacency.to_sparse_csr()
    return adjacency
