r"""Late fusion of a trained model's scores with content rankers, as one pair of embedding tables.

The content ranker of a modality with item features :math:`x_i`: centre the feature matrix by its column
mean and L2-normalise each row (``centred_unit_rows``), giving :math:`\hat x_i`; a user's score for item
:math:`i` is the sum of centred cosines to the user's train items,
:math:`c_{ui} = \sum_{j \in T(u)} \hat x_i^\top \hat x_j = \hat x_i^\top \sum_{j \in T(u)} \hat x_j`.

Scores are made scale-free per user: each ranker's scores of user :math:`u` are turned into z-scores over
all items, :math:`z_{ui} = (s_{ui} - \bar s_u) / \sigma_u` (population standard deviation; a user whose
scores are all equal gets zeros), and the fused score is

.. math::
    f_{ui} = z^{\mathrm{base}}_{ui} + \sum_m w_m \, z^{m}_{ui}.

Every ranker's scores are inner products :math:`s_{ui} = a_u^\top b_i`, so
:math:`z_{ui} = (a_u / \sigma_u)^\top (b_i - \bar b)` with :math:`\sigma_u^2 = a_u^\top C a_u` and :math:`C`
the (population) covariance of the :math:`b_i`: the fused scores are exactly the inner products of
``[a_u / sigma_u, w_1 a^1_u / sigma^1_u, ...]`` and ``[b_i - b_bar, x^1_i - x^1_bar, ...]``
(``fused_tables``), which ``evaluate``, ``export`` and the TorchScript scorer rank like any model's.

The weights are chosen on validation only (``choose_weights``).
"""

from __future__ import annotations

from typing import Callable

import torch


def centred_unit_rows(features: torch.Tensor) -> torch.Tensor:
    """The rows minus the column mean, each scaled to unit length (zero rows stay zero), so that inner
    products are centred cosines.

    Shapes:
        features: [N, d] -> [N, d] float32
    """
    centred = features.double() - features.double().mean(dim=0)
    return torch.nn.functional.normalize(centred, dim=1).float()


def content_user_rows(train_indptr: torch.Tensor, train_indices: torch.Tensor, unit_rows: torch.Tensor) -> torch.Tensor:
    r"""Each user's :math:`\sum_{j \in T(u)} \hat x_j` over the train CSR (zeros for a user without train items).

    Shapes:
        train_indptr: [U + 1], train_indices: [nnz] int64, unit_rows: [I, d] -> [U, d]
    """
    n_users = train_indptr.numel() - 1
    owners = torch.repeat_interleave(torch.arange(n_users), (train_indptr[1:] - train_indptr[:-1]).long())
    rows = torch.zeros(n_users, unit_rows.shape[1], dtype=torch.float64)
    rows.index_add_(0, owners, unit_rows[train_indices.long()].double())
    return rows.float()


def zscore_scales(users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(1 / sigma_u, b_i - b_bar)`` in float64: each user's factor that turns ``users @ items.T`` into z-scores
    over the items (:math:`\sigma_u^2 = a_u^\top C a_u`, :math:`C` the population covariance of the item rows; 0
    where the scores are constant), and the centred items.

    Shapes:
        users: [U, d], items: [I, d] -> [U], [I, d] float64
    """
    items = items.double()
    centred = items - items.mean(dim=0)
    covariance = centred.T @ centred / items.shape[0]
    users = users.double()
    variance = ((users @ covariance) * users).sum(dim=1).clamp(min=0)
    return torch.where(variance > 1e-24, variance.rsqrt(), torch.zeros_like(variance)), centred


def zscore_tables(users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Tables whose inner products are the per-user z-scores of ``users @ items.T`` over all items.

    Returns :math:`(a_u / \sigma_u, b_i - \bar b)` (``zscore_scales``); :math:`\sigma_u = 0` (constant scores) gives a
    zero row.

    Shapes:
        users: [U, d], items: [I, d] -> [U, d], [I, d] float32
    """
    scale, centred = zscore_scales(users, items)
    return (users.double() * scale[:, None]).float(), centred.float()


def fused_tables(rankers: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``[w_0 a^0_u / sigma^0_u, w_1 a^1_u / sigma^1_u, ...]`` and ``[b^0_i - b^0_bar, ...]``: inner products
    :math:`\sum_r w_r z^r_{ui}`. A ranker with weight 0 is left out (its columns would all be zero).

    Shapes:
        rankers: R pairs (users [U, d_r], items [I, d_r]); weights: R floats -> [U, sum d_r], [I, sum d_r]
    """
    user_parts, item_parts = [], []
    for (users, items), weight in zip(rankers, weights):
        if weight == 0:
            continue
        scaled_users, centred_items = zscore_tables(users, items)
        user_parts.append(scaled_users * weight)
        item_parts.append(centred_items)
    return torch.cat(user_parts, dim=1), torch.cat(item_parts, dim=1)


def choose_weights(
    score: Callable[[list[float]], float],
    n_modalities: int,
    grid: tuple[float, ...],
    rounds: int = 2,
    start: list[float] | None = None,
    ties_to_smaller: bool = True,
) -> tuple[list[float], float]:
    """Per-modality weights from ``grid`` that maximise ``score(weights)`` (validation), by coordinate ascent.

    Starts from ``start`` (all zeros by default: the base model alone); each round tries every grid value for
    each modality in turn, the others fixed, and keeps the best. On a tie the smaller weight wins
    (``ties_to_smaller``), or else the current one stays. One modality: a full grid search. Stops early when a
    round changes nothing. Returns the weights and their score.
    """
    weights = list(start) if start is not None else [0.0] * n_modalities
    cache: dict[tuple[float, ...], float] = {}

    def evaluated(candidate: list[float]) -> float:
        key = tuple(candidate)
        if key not in cache:
            cache[key] = score(list(candidate))
        return cache[key]

    best = evaluated(weights)
    for _ in range(rounds):
        changed = False
        for m in range(n_modalities):
            for value in sorted(grid):
                candidate = weights[:m] + [value] + weights[m + 1 :]
                result = evaluated(candidate)
                if result > best or (ties_to_smaller and result == best and value < weights[m]):
                    best, weights, changed = result, candidate, changed or candidate != weights
        if not changed:
            break
    return weights, best
