"""Bayesian personalised ranking loss and the L2 penalty on a batch's embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(positive_scores: torch.Tensor, negative_scores: torch.Tensor) -> torch.Tensor:
    r"""Mean of :math:`-\log \sigma(s^+ - s^-)`, computed as ``softplus(s^- - s^+)`` so it never overflows.

    Shapes:
        positive_scores, negative_scores: [B] -> scalar
    """
    return F.softplus(negative_scores - positive_scores).mean()


def l2_penalty(*embeddings: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac{1}{2B}\sum_t \lVert E_t \rVert_F^2` over the given [B, d] batch embeddings (LightGCN's form)."""
    batch = embeddings[0].shape[0]
    return sum(e.pow(2).sum() for e in embeddings) / (2 * batch)
