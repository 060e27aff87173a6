r"""Cross-modal contrastive learning (CMCL): InfoNCE between views of the same batch of items.

Row ``k`` of every view is the same item; the other rows of the batch are its negatives (in-batch
negatives). For L2-normalised anchor rows :math:`\hat a_k` and positive rows :math:`\hat p_k`:

.. math::
    \ell_k = -\log \frac{\exp(\hat a_k^\top \hat p_k / \tau)}{\sum_{j=1}^{N} \exp(\hat a_k^\top \hat p_j / \tau)},
    \qquad \mathcal{L}_{a \to p} = \frac{1}{N} \sum_k \ell_k,
    \qquad \mathcal{L} = \tfrac12 (\mathcal{L}_{a \to p} + \mathcal{L}_{p \to a}) \text{ (symmetric)}

It is computed as ``cross_entropy(logits, arange(N))`` (a log-sum-exp), never ``log(exp / sum exp)``, so
it stays finite for small temperatures and large norms. The loss is minimised, never ``1 - InfoNCE``.
Bounds: ``0 <= L``; when every logit is equal (e.g. all rows identical) ``L = log N``.
"""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

PAIR_MODES = ("anchor", "all")


def info_nce(anchor: Tensor, positive: Tensor, temperature: float = 0.2, symmetric: bool = True) -> Tensor:
    """InfoNCE with in-batch negatives and cosine similarity (see the module docstring).

    Leading dimensions are independent problems, solved in one batched product: ``[P, N, d]`` inputs give
    ``P`` losses (e.g. every view pair of one batch at once), each with its own ``N`` in-batch negatives.

    Shapes:
        anchor: ``[..., N, d]``; positive: ``[..., N, d]`` (row k of each is the same item); returns ``[...]``
        (a scalar for ``[N, d]`` inputs).
    """
    if anchor.shape != positive.shape:
        raise ValueError(f"info_nce needs equal shapes, got {tuple(anchor.shape)} and {tuple(positive.shape)}.")
    if temperature <= 0:
        raise ValueError(f"info_nce temperature must be > 0, got {temperature}.")
    anchor = F.normalize(anchor, dim=-1)
    positive = F.normalize(positive, dim=-1)
    logits = anchor @ positive.transpose(-1, -2) / temperature  # [..., N, N]; the diagonal holds the positive pairs
    rows = logits.size(-1)
    flat = logits.reshape(-1, rows, rows)
    problems = flat.size(0)
    targets = torch.arange(rows, device=anchor.device).repeat(problems)
    # anchor -> positive: row k's classes are logits[p, k, :], one contiguous row of a [P * N, N] matrix (a
    # log-softmax over a strided dimension is many times slower on a CPU)
    loss = F.cross_entropy(flat.reshape(-1, rows), targets, reduction="none").view(problems, rows).mean(-1)
    if symmetric:
        # positive -> anchor: the columns of the same logits, again a log-sum-exp minus the diagonal
        columns = flat.transpose(1, 2).reshape(-1, rows)
        loss = 0.5 * (loss + F.cross_entropy(columns, targets, reduction="none").view(problems, rows).mean(-1))
    return loss.reshape(logits.shape[:-2])


def cross_modal_contrastive_loss(
    views: dict[str, Tensor],
    anchor: str = "id",
    temperature: float = 0.2,
    pairs: str = "anchor",
    symmetric: bool = True,
) -> Tensor:
    """Mean InfoNCE over pairs of views of the same batch of items.

    ``pairs="anchor"`` averages over ``(anchor, m)`` for every other view ``m`` (e.g. id-text, id-image);
    ``pairs="all"`` averages over every unordered pair of views (adds text-image). Pairs are taken in the
    order of ``views``; each pair counts once, with equal weight.

    Shapes:
        views: ``{name: [N, d]}`` with at least two entries; returns a scalar.
    """
    if pairs not in PAIR_MODES:
        raise ValueError(f"pairs must be one of {PAIR_MODES}, got {pairs!r}.")
    if len(views) < 2:
        raise ValueError(f"cross_modal_contrastive_loss needs at least two views, got {list(views)}.")
    if pairs == "anchor":
        if anchor not in views:
            raise ValueError(f"anchor view {anchor!r} is not among the views {list(views)}.")
        view_pairs = [(anchor, name) for name in views if name != anchor]
    else:
        view_pairs = list(combinations(views, 2))
    losses = [info_nce(views[a], views[b], temperature, symmetric) for a, b in view_pairs]
    return torch.stack(losses).mean()


def reference_cmcl(
    users: Tensor,
    positives: Tensor,
    views_pos: Sequence[Tensor],
    views_neg: Sequence[Tensor],
    temperature: float = 0.2,
    modality_weight: float = 0.5,
) -> Tensor:
    r"""CMCL as the reference code composes it, with InfoNCE minimised.

    .. math::
        \mathcal{L} = (1 - w)\,\mathrm{NCE}(u, i^+) + w \cdot \operatorname{mean}_{(a, b),\, s \in \{+, -\}}
            \mathrm{NCE}(v_a[s], v_b[s])

    over every unordered pair ``(a, b)`` of the item views (ID first, then each modality: cf-image, cf-text,
    image-text), on the batch's positive and on its negative items. Each InfoNCE is one-directional (anchor to
    positive, as in the reference code) with the batch's other rows as negatives. The reference adds
    ``1 - NCE`` for the view pairs, which rewards misaligned views; here every term is the loss itself.

    Shapes:
        users, positives: ``[B, d]`` (row ``k`` is one BPR triple's user and fused positive item);
        views_pos, views_neg: ``V >= 1`` tensors ``[B, d]`` each (the triples' positive / negative items in every
        view); returns a scalar.
    """
    if len(views_pos) != len(views_neg):
        raise ValueError(f"reference_cmcl needs the same views for positives and negatives, got {len(views_pos)} and {len(views_neg)}.")
    user_item = info_nce(users, positives, temperature, symmetric=False)
    pairs = list(combinations(range(len(views_pos)), 2))
    if not pairs:
        return user_item
    anchors = torch.stack([side[a] for side in (views_pos, views_neg) for a, _ in pairs])
    others = torch.stack([side[b] for side in (views_pos, views_neg) for _, b in pairs])
    views = info_nce(anchors, others, temperature, symmetric=False).mean()
    return (1.0 - modality_weight) * user_item + modality_weight * views
