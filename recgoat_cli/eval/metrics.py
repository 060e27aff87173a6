"""Top-K ranking metrics over a hit matrix.

Every metric takes the same two tensors and returns one value per user:

- ``hits`` ``[n_users, L]`` (bool or float 0/1): ``hits[u, r]`` says whether the item at rank ``r``
  (0-based) of user ``u``'s ranked list is relevant.
- ``n_relevant`` ``[n_users]`` (int): the size of the user's ground-truth set, whether or not those
  items could appear in the list. This is the MMRec/RecBole convention: relevant items the list can
  never contain (e.g. also in the user's training items) still count in the denominators.

Definitions at cut-off ``k`` (``rel_i`` = ``hits[u, i-1]`` for ranks ``i = 1..k``, ``R`` = ``n_relevant``):

- Recall@k     = sum_{i<=k} rel_i / R
- Precision@k  = sum_{i<=k} rel_i / k
- HitRate@k    = 1 if sum_{i<=k} rel_i > 0 else 0
- NDCG@k       = DCG@k / IDCG@k, with DCG@k = sum_{i<=k} rel_i / log2(i + 1) (binary gain; i.e.
  ``1 / log2(r + 2)`` for 0-based rank ``r``) and IDCG@k = sum_{i<=min(R, k)} 1 / log2(i + 1)
- MAP@k (RecBole) = sum_{i<=k} P@i * rel_i / min(R, k)

Conventions:

- ``k`` larger than the list width ``L`` treats the missing ranks as misses: the list is padded with
  non-relevant items. Precision@k still divides by ``k``; the other metrics are unchanged by padding.
- A user with ``R == 0`` gets 0 for every metric (the ratios are 0/0). The evaluator skips such users,
  so this only matters for direct callers.

Values are computed in float64 so that averaging over tens of thousands of users loses nothing.
"""

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "METRICS",
    "hit_rate_at_k",
    "map_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]


def _check_inputs(hits: Tensor, n_relevant: Tensor, k: int) -> None:
    if hits.dim() != 2:
        raise ValueError(f"hits must be 2-D [n_users, L], got shape {tuple(hits.shape)}")
    if n_relevant.dim() != 1 or n_relevant.shape[0] != hits.shape[0]:
        raise ValueError(
            f"n_relevant must be 1-D with {hits.shape[0]} entries, got shape {tuple(n_relevant.shape)}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")


def _hits_at_k(hits: Tensor, k: int) -> Tensor:
    """The first ``min(k, L)`` columns as float64 0/1; padding columns would all be zero, so they are omitted."""
    return hits[:, :k].to(torch.float64)


def _rank_discounts(length: int, device: torch.device) -> Tensor:
    """``1 / log2(r + 2)`` for 0-based ranks ``r = 0..length-1``."""
    ranks = torch.arange(length, dtype=torch.float64, device=device)
    return 1.0 / torch.log2(ranks + 2.0)


def _safe_divide(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``numerator / denominator`` with 0 where the denominator is 0 (users with no relevant items)."""
    denominator = denominator.to(torch.float64)
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1e-300), torch.zeros_like(numerator))


def recall_at_k(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """Recall@k = (number of relevant items in the top k) / n_relevant, per user.

    Shapes:
        hits ``[n_users, L]``, n_relevant ``[n_users]`` -> ``[n_users]`` float64.
    """
    _check_inputs(hits, n_relevant, k)
    return _safe_divide(_hits_at_k(hits, k).sum(dim=1), n_relevant)


def precision_at_k(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """Precision@k = (number of relevant items in the top k) / k, per user; 0 when n_relevant is 0.

    Shapes:
        hits ``[n_users, L]``, n_relevant ``[n_users]`` -> ``[n_users]`` float64.
    """
    _check_inputs(hits, n_relevant, k)
    precision = _hits_at_k(hits, k).sum(dim=1) / k
    return torch.where(n_relevant > 0, precision, torch.zeros_like(precision))


def hit_rate_at_k(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """HitRate@k = 1 if any of the top k items is relevant, else 0, per user.

    Shapes:
        hits ``[n_users, L]``, n_relevant ``[n_users]`` -> ``[n_users]`` float64.
    """
    _check_inputs(hits, n_relevant, k)
    any_hit = (_hits_at_k(hits, k).sum(dim=1) > 0) & (n_relevant > 0)
    return any_hit.to(torch.float64)


def ndcg_at_k(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """NDCG@k with binary gain, per user.

    DCG@k = sum_{r<k} hits[r] / log2(r + 2) over 0-based ranks ``r``;
    IDCG@k = sum_{r<min(n_relevant, k)} 1 / log2(r + 2), the DCG of a list that puts all relevant
    items first. NDCG@k = DCG@k / IDCG@k, and 0 when n_relevant is 0.

    Shapes:
        hits ``[n_users, L]``, n_relevant ``[n_users]`` -> ``[n_users]`` float64.
    """
    _check_inputs(hits, n_relevant, k)
    top = _hits_at_k(hits, k)
    discounts = _rank_discounts(k, hits.device)
    dcg = (top * discounts[: top.shape[1]]).sum(dim=1)
    # idcg_by_count[c] = DCG of c relevant items at ranks 0..c-1, for c = 0..k.
    idcg_by_count = torch.cat([discounts.new_zeros(1), discounts.cumsum(dim=0)])
    ideal_count = n_relevant.to(torch.long).clamp(min=0, max=k)
    return _safe_divide(dcg, idcg_by_count[ideal_count])


def map_at_k(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """MAP@k as defined by RecBole, per user.

    MAP@k = sum_{i<=k} P@i * rel_i / min(n_relevant, k), where P@i = (relevant items in the top i) / i
    and ``rel_i`` is 1 when the item at 1-based rank ``i`` is relevant; 0 when n_relevant is 0.

    Shapes:
        hits ``[n_users, L]``, n_relevant ``[n_users]`` -> ``[n_users]`` float64.
    """
    _check_inputs(hits, n_relevant, k)
    top = _hits_at_k(hits, k)
    ranks = torch.arange(1, top.shape[1] + 1, dtype=torch.float64, device=hits.device)
    precision_at_each_rank = top.cumsum(dim=1) / ranks
    average_precision_sum = (precision_at_each_rank * top).sum(dim=1)
    return _safe_divide(average_precision_sum, n_relevant.clamp(max=k))


MetricFunction = Callable[[Tensor, Tensor, int], Tensor]

METRICS: dict[str, MetricFunction] = {
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "precision": precision_at_k,
    "hit": hit_rate_at_k,
    "map": map_at_k,
}
"""Metric name (as used in ``"<name>@<k>"`` result keys and configs) -> per-user metric function."""
