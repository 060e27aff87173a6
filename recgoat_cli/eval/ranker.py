"""Full ranking: score every item for every user, mask seen items, take the top K, score the lists.

A split's interactions are a CSR over users: ``indptr`` (int64 ``[n_users + 1]``) and ``indices``
(int64 item ids), as in ``scipy.sparse.csr_matrix``; ``csr_from_pairs`` builds one from (user, item)
pairs. Row ``u`` holds the items ``indices[indptr[u]:indptr[u + 1]]``.

Scores are inner products ``user_emb @ item_emb.T``. Items in a user's exclude set (normally the
training items, plus validation items when testing) get ``-inf`` before ``torch.topk``. On CPU the
score matmul runs through NumPy's BLAS (see ``_inner_product_scores``), so its thread count follows
``OPENBLAS_NUM_THREADS`` (default: all cores) rather than ``torch.set_num_threads``.

Tie handling is deterministic and independent of batch size and thread count: among equal scores
the lower item id ranks first, both inside the list and at its cut-off (``recgoat_cli.topk.exact_topk``;
``torch.topk`` alone does not promise this).

Large catalogues take a cheaper exact route (``recgoat_cli.topk.grouped_topk``): the columns are cut into
groups of 32 or more items, one pass takes each group's maximum, and only the scores of the groups
whose maximum reaches the K-th largest group maximum are ranked (on 7,050 items and K = 20, about 640
of 7,072 padded columns); no item outside those groups can reach the top K. Same lists, same tie rule.

When a user has fewer than K candidate items (or K exceeds the catalogue), the list is padded with
item id ``-1`` and score ``-inf``; excluded items are never returned.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from recgoat_cli.eval.metrics import METRICS
from recgoat_cli.topk import exact_topk, grouped_topk

__all__ = [
    "RankingResult",
    "csr_from_pairs",
    "evaluate_ranking",
    "rank_users",
    "topk_scores",
]

# Scores for one batch are a dense float32 [batch, n_items] block. About 2**23 entries (32 MiB) measured
# fastest on Amazon Baby (7,050 items): large enough for an efficient matmul and few per-block calls, small
# enough that the group maxima and candidate gathers after the matmul mostly hit the CPU's last-level cache.
_SCORE_BLOCK_ENTRIES = 2**23

# Grouped top-k (``recgoat_cli.topk.grouped_topk``) settings: the smallest group width, and how many groups per
# list entry a catalogue needs before ranking only the best groups beats ``torch.topk`` on full rows.
_MIN_GROUP_WIDTH = 32
_MIN_GROUPS_PER_K = 4

PADDING_ITEM_ID = -1
"""Item id that pads a ranked list when the user has fewer than K candidate items."""


def csr_from_pairs(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Build a user-major CSR (``indptr``, ``indices``) from (user, item) pairs.

    Duplicate pairs are kept once and each row's items are sorted ascending.

    Shapes:
        users, items ``[n_pairs]`` (integer) -> indptr int64 ``[n_users + 1]``, indices int64 ``[nnz]``.
    """
    users = np.asarray(users)
    items = np.asarray(items)
    if users.shape != items.shape or users.ndim != 1:
        raise ValueError(f"users and items must be 1-D of equal length, got {users.shape} and {items.shape}")
    if users.size and not (np.issubdtype(users.dtype, np.integer) and np.issubdtype(items.dtype, np.integer)):
        raise ValueError(f"users and items must be integer arrays, got {users.dtype} and {items.dtype}")
    users = users.astype(np.int64, copy=False)
    items = items.astype(np.int64, copy=False)
    if users.size:
        if users.min() < 0 or users.max() >= n_users:
            raise ValueError(f"user ids must lie in [0, {n_users}), got [{users.min()}, {users.max()}]")
        if items.min() < 0 or items.max() >= n_items:
            raise ValueError(f"item ids must lie in [0, {n_items}), got [{items.min()}, {items.max()}]")
    # One sort of the combined key gives row-major order, sorted items within rows and adjacent duplicates.
    keys = np.unique(users * np.int64(n_items) + items)
    row_of_key = keys // n_items
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of_key, minlength=n_users), out=indptr[1:])
    indices = (keys - row_of_key * n_items).astype(np.int64, copy=False)
    return indptr, indices


def _as_index_tensor(array: np.ndarray | Tensor, device: torch.device) -> Tensor:
    if isinstance(array, np.ndarray) and not array.flags.writeable:
        array = array.copy()  # torch warns on read-only buffers, e.g. memory-mapped .npy files
    return torch.as_tensor(array, dtype=torch.int64, device=device)


def _all_finite(values: Tensor) -> bool:
    """Whether no entry is NaN or infinite, without a full-size mask in the common case.

    A NaN or infinite entry makes the sum NaN or infinite, so a finite sum proves all entries finite; a
    non-finite sum may also be an overflow of large finite entries, which the exact check settles.
    """
    return bool(torch.isfinite(values.sum())) or bool(torch.isfinite(values).all())


def _check_csr(indptr: Tensor, indices: Tensor, n_items: int, name: str) -> None:
    if indptr.dim() != 1 or indptr.numel() < 1:
        raise ValueError(f"{name}_indptr must be 1-D with n_users + 1 entries")
    if indptr[0] != 0 or indptr[-1] != indices.numel() or bool((indptr[1:] < indptr[:-1]).any()):
        raise ValueError(f"{name}_indptr must start at 0, be non-decreasing and end at len({name}_indices)")
    if indices.numel() and (indices.min() < 0 or indices.max() >= n_items):
        raise ValueError(f"{name}_indices must be item ids in [0, {n_items})")


def _csr_rows(indptr: Tensor, indices: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """Gather the entries of CSR ``rows`` as (position in ``rows``, item id) pairs, without a Python loop.

    Shapes:
        rows ``[B]`` -> row positions ``[nnz_B]`` (in ``0..B-1``), item ids ``[nnz_B]``.
    """
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    total = int(lengths.sum())
    row_positions = torch.repeat_interleave(torch.arange(rows.numel(), device=rows.device), lengths, output_size=total)
    # Offset of each entry inside its row: global running index minus the row's first running index.
    first_entry = torch.cumsum(lengths, dim=0) - lengths
    offsets = torch.arange(total, device=rows.device) - torch.repeat_interleave(first_entry, lengths, output_size=total)
    items = indices[torch.repeat_interleave(starts, lengths, output_size=total) + offsets]
    return row_positions, items


def _group_width(n_items: int, k: int) -> int | None:
    """Column-group width for ``grouped_topk``, or ``None`` when the catalogue is too small for it to pay.

    Widths are powers of two from 32 (whole SIMD vectors for the group maxima), grown while the K candidate
    groups (``k * width`` scores) are still much narrower than the row of group maxima (``n_items / width``).
    """
    width = _MIN_GROUP_WIDTH
    while width * width * (k + 1) < n_items:
        width *= 2
    n_groups = -(-n_items // width)
    return width if n_groups >= _MIN_GROUPS_PER_K * (k + 1) else None


def _inner_product_scores(user_rows: Tensor, item_emb_t: Tensor, out: Tensor) -> Tensor:
    """``user_rows @ item_emb_t`` written into ``out``.

    On CPU the product goes through NumPy's BLAS (OpenBLAS) on zero-copy views: PyTorch's CPU sgemm is MKL,
    which on AMD CPUs measured about 3x slower for this shape (19k x 64 x 7k: 0.3 s vs 0.9 s, one thread).
    """
    if out.device.type == "cpu" and out.dtype in (torch.float32, torch.float64):
        np.matmul(user_rows.numpy(), item_emb_t.numpy(), out=out.numpy())
        return out
    return torch.matmul(user_rows, item_emb_t, out=out)


def _default_batch_size(n_items: int) -> int:
    return max(1, _SCORE_BLOCK_ENTRIES // max(1, n_items))


def topk_scores(
    user_emb: Tensor,
    item_emb: Tensor,
    exclude_indptr: np.ndarray | Tensor | None,
    exclude_indices: np.ndarray | Tensor | None,
    users: Tensor | np.ndarray,
    k: int,
    batch_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Top-``k`` items by inner-product score for each row of ``user_emb``, excluding each user's CSR row.

    ``score[i, j] = user_emb[i] . item_emb[j]``; the items ``exclude_indices[exclude_indptr[u]:exclude_indptr[u+1]]``
    of user ``u = users[i]`` get ``-inf`` and are never returned. Rows are processed ``batch_size`` users
    at a time (default: about 2**23 scores per batch); within a batch the mask is one ``index_fill_``.
    Ties rank the lower item id first; short lists are padded with id ``-1`` and score ``-inf``.
    Pass ``None`` for both exclude arrays to rank all items.

    Shapes:
        user_emb ``[n, d]``, item_emb ``[n_items, d]``, users ``[n]`` (row ``i`` belongs to user ``users[i]``)
        -> values ``[n, k]`` float (descending per row), item ids ``[n, k]`` int64.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if user_emb.dim() != 2 or item_emb.dim() != 2 or user_emb.shape[1] != item_emb.shape[1]:
        raise ValueError(
            f"user_emb [n, d] and item_emb [n_items, d] must share d, got {tuple(user_emb.shape)} and "
            f"{tuple(item_emb.shape)}"
        )
    if user_emb.dtype != item_emb.dtype or user_emb.device != item_emb.device:
        raise ValueError(
            f"user_emb and item_emb must share dtype and device, got {user_emb.dtype}/{user_emb.device} and "
            f"{item_emb.dtype}/{item_emb.device}"
        )
    if not (_all_finite(user_emb) and _all_finite(item_emb)):
        raise ValueError("user_emb and item_emb must be finite (NaN or inf scores cannot be ranked)")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    device = user_emb.device
    n_rows, n_items = user_emb.shape[0], item_emb.shape[0]
    users = _as_index_tensor(users, device)
    if users.dim() != 1 or users.numel() != n_rows:
        raise ValueError(f"users must be 1-D with one id per user_emb row ({n_rows}), got shape {tuple(users.shape)}")
    if (exclude_indptr is None) != (exclude_indices is None):
        raise ValueError("exclude_indptr and exclude_indices must both be given or both be None")
    if exclude_indptr is not None:
        exclude_indptr = _as_index_tensor(exclude_indptr, device)
        exclude_indices = _as_index_tensor(exclude_indices, device)
        _check_csr(exclude_indptr, exclude_indices, n_items, "exclude")
        if users.numel() and (users.min() < 0 or users.max() >= exclude_indptr.numel() - 1):
            raise ValueError(f"users must be ids in [0, {exclude_indptr.numel() - 1}) of the exclude CSR")

    k_ranked = min(k, n_items)
    batch_size = min(batch_size or _default_batch_size(n_items), max(1, n_rows))
    user_emb, item_emb = user_emb.detach(), item_emb.detach()
    group_width = _group_width(n_items, k_ranked) if k_ranked else None
    # The grouped top-k needs whole groups: pad the catalogue with zero items whose scores are masked below.
    row_width = n_items if group_width is None else -(-n_items // group_width) * group_width
    if row_width > n_items:
        item_emb = torch.cat([item_emb, item_emb.new_zeros((row_width - n_items, item_emb.shape[1]))])
    item_emb_t = item_emb.t()  # a transposed view: OpenBLAS measured ~5% faster on it than on a contiguous copy
    all_values = user_emb.new_empty((n_rows, k))
    all_ids = torch.empty((n_rows, k), dtype=torch.int64, device=device)
    if exclude_indptr is not None:
        # Flat positions of every masked score for all rows at once; each batch takes a contiguous slice.
        exclude_rows, exclude_items = _csr_rows(exclude_indptr, exclude_indices, users)
        exclude_flat = exclude_rows * row_width + exclude_items
        row_lengths = exclude_indptr[users + 1] - exclude_indptr[users]
        exclude_bounds = torch.cat([row_lengths.new_zeros(1), torch.cumsum(row_lengths, 0)]).tolist()
    # One score buffer for all batches: a fresh [batch, n_items] block per batch costs page faults.
    score_buffer = user_emb.new_empty((batch_size, row_width)) if n_rows else None
    for start in range(0, n_rows, batch_size):
        stop = min(start + batch_size, n_rows)
        scores = _inner_product_scores(user_emb[start:stop], item_emb_t, out=score_buffer[: stop - start])
        if row_width > n_items:
            scores[:, n_items:] = float("-inf")
        if exclude_indptr is not None:
            batch_flat = exclude_flat[exclude_bounds[start] : exclude_bounds[stop]] - start * row_width
            scores.view(-1).index_fill_(0, batch_flat, float("-inf"))
        if not k_ranked:
            continue
        if group_width is not None:
            values, ids = grouped_topk(scores, k_ranked, group_width)
        else:
            values, ids = exact_topk(scores, k_ranked)
        all_values[start:stop, :k_ranked] = values
        all_ids[start:stop, :k_ranked] = ids
    all_values[:, k_ranked:] = float("-inf")
    all_ids[:, k_ranked:] = PADDING_ITEM_ID
    all_ids[torch.isneginf(all_values)] = PADDING_ITEM_ID
    return all_values, all_ids


def rank_users(
    user_emb: Tensor,
    item_emb: Tensor,
    users: Tensor | np.ndarray,
    exclude_indptr: np.ndarray | Tensor | None,
    exclude_indices: np.ndarray | Tensor | None,
    k: int,
    batch_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Top-``k`` recommendations for the given user ids, from the full user embedding table.

    Same ranking as ``topk_scores`` (exclusions, ties, ``-1`` padding), but ``user_emb`` holds every
    user and ``users`` selects the rows, which is what export needs.

    Shapes:
        user_emb ``[n_users, d]``, item_emb ``[n_items, d]``, users ``[n]``
        -> item ids ``[n, k]`` int64, scores ``[n, k]`` float.
    """
    users = _as_index_tensor(users, user_emb.device)
    if users.numel() and (users.min() < 0 or users.max() >= user_emb.shape[0]):
        raise ValueError(f"users must be ids in [0, {user_emb.shape[0]})")
    values, item_ids = topk_scores(
        user_emb[users], item_emb, exclude_indptr, exclude_indices, users, k, batch_size=batch_size
    )
    return item_ids, values


@dataclass(frozen=True)
class RankingResult:
    """Mean metrics over the evaluated users.

    ``metrics`` maps ``"<metric>@<k>"`` (e.g. ``"recall@20"``) to the mean over ``n_users`` users, those with
    at least one truth item. ``per_user`` (when requested) maps the same keys to float64 ``[n_users]``
    tensors, aligned with ``users`` (their ids, ascending).
    """

    metrics: dict[str, float]
    n_users: int
    users: Tensor
    per_user: dict[str, Tensor] | None = None


def _hit_matrix(
    users: Tensor, item_ids: Tensor, truth_indptr: Tensor, truth_indices: Tensor, n_items: int
) -> Tensor:
    """``hits[i, r]``: is ``item_ids[i, r]`` in user ``users[i]``'s truth row?

    Membership is a binary search of the (user, item) keys ``user * n_items + item`` in the sorted truth keys,
    so no dense [users, n_items] truth mask is built.
    """
    truth_users = torch.repeat_interleave(
        torch.arange(truth_indptr.numel() - 1, device=users.device), truth_indptr[1:] - truth_indptr[:-1]
    )
    truth_keys = (truth_users * n_items + truth_indices).sort().values
    query_keys = users[:, None] * n_items + item_ids.clamp(min=0)
    if truth_keys.numel() == 0:
        return torch.zeros_like(item_ids, dtype=torch.bool)
    position = torch.searchsorted(truth_keys, query_keys).clamp(max=truth_keys.numel() - 1)
    return (truth_keys[position] == query_keys) & (item_ids >= 0)


def evaluate_ranking(
    user_emb: Tensor,
    item_emb: Tensor,
    truth_indptr: np.ndarray | Tensor,
    truth_indices: np.ndarray | Tensor,
    exclude_indptr: np.ndarray | Tensor | None,
    exclude_indices: np.ndarray | Tensor | None,
    ks: list[int],
    metrics: list[str] | None = None,
    batch_size: int | None = None,
    return_per_user: bool = False,
) -> RankingResult:
    """Full-ranking evaluation of one split: mean ``metric@k`` over users with at least one truth item.

    Each evaluated user's items are ranked by ``user_emb @ item_emb.T`` with the exclude CSR masked
    (``topk_scores``), once, at ``max(ks)``; then ``hits[u, r]`` marks list items in the truth CSR, and
    each metric of ``recgoat_cli.eval.metrics`` is computed at each ``k`` from that one hit matrix.
    Truth items that are also excluded can never be hit but still count as relevant (MMRec/RecBole).

    Shapes:
        user_emb ``[n_users, d]`` (row = user id), item_emb ``[n_items, d]``, truth and exclude CSRs over
        the same ``n_users`` -> ``RankingResult`` with keys ``"<metric>@<k>"`` for every metric and ``k``.
    """
    metric_names = list(METRICS) if metrics is None else list(metrics)
    unknown = [name for name in metric_names if name not in METRICS]
    if unknown or not metric_names:
        raise ValueError(f"metrics must be a non-empty list of known names {sorted(METRICS)}, got {metric_names}")
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be a non-empty list of positive ints, got {ks!r}")
    device = user_emb.device
    n_users, n_items = user_emb.shape[0], item_emb.shape[0]
    truth_indptr = _as_index_tensor(truth_indptr, device)
    truth_indices = _as_index_tensor(truth_indices, device)
    _check_csr(truth_indptr, truth_indices, n_items, "truth")
    if truth_indptr.numel() != n_users + 1:
        raise ValueError(f"truth_indptr has {truth_indptr.numel()} entries; user_emb has {n_users} rows (+1 expected)")
    if exclude_indptr is not None and len(exclude_indptr) != n_users + 1:
        raise ValueError(f"exclude_indptr has {len(exclude_indptr)} entries; user_emb has {n_users} rows (+1 expected)")

    n_relevant_all = truth_indptr[1:] - truth_indptr[:-1]
    users = (n_relevant_all > 0).nonzero().squeeze(1)
    keys = [f"{name}@{k}" for name in metric_names for k in ks]
    if users.numel() == 0:
        nan_metrics = {key: float("nan") for key in keys}
        empty = {key: torch.empty(0, dtype=torch.float64) for key in keys} if return_per_user else None
        return RankingResult(metrics=nan_metrics, n_users=0, users=users, per_user=empty)

    _, item_ids = topk_scores(
        user_emb[users], item_emb, exclude_indptr, exclude_indices, users, max(ks), batch_size=batch_size
    )
    hits = _hit_matrix(users, item_ids, truth_indptr, truth_indices, n_items)
    n_relevant = n_relevant_all[users]
    per_user = {f"{name}@{k}": METRICS[name](hits, n_relevant, k) for name in metric_names for k in ks}
    means = {key: float(per_user[key].mean()) for key in keys}
    return RankingResult(
        metrics=means, n_users=int(users.numel()), users=users, per_user=per_user if return_per_user else None
    )
