r"""Fusion of the ID representation with the (OT-aligned) modality representations of the same rows.

Four modes, for views :math:`h_1..h_V` (view 0 is the ID view by convention, the rest modalities):

* ``"oat"`` (adaptive weights): :math:`z = V \sum_v \operatorname{softmax}(w)_v\, h_v`, with a learnable
  logit vector :math:`w \in \mathbb{R}^V` initialised to zeros, i.e. uniform weights: no view is favoured
  before training, and the softmax keeps the weights positive with a fixed total. The factor ``V`` makes
  that total ``V`` rather than 1, so at initialisation every view enters at full scale (``z = \sum_v h_v``):
  a convex combination would shrink the ID view by ``1/V`` and its dot-product scores by ``1/V^2``, which
  slows BPR training by the same factor (measured on the sample catalogue: BPR stuck near 0.67 after 38
  epochs with the convex form).
* ``"concat"``: :math:`z = W [h_1 \Vert \dots \Vert h_V] + c`, a linear projection back to ``dim``.
* ``"sum"``: :math:`z = \sum_v h_v`, the plain sum (no parameters; equal to ``"oat"`` at initialisation).
* ``"residual"``: :math:`z = h_1 + \sum_{v \ge 2} a_v h_v`, the ID view at a fixed weight 1 and a learnable
  coefficient :math:`a_v` per other view, initialised to 1 (so equal to ``"oat"`` and ``"sum"`` at
  initialisation). Where the other views carry nothing the model wants, the :math:`a_v` fall towards 0 and
  :math:`z` becomes the ID view itself, at its own scale: the model is then its collaborative backbone with
  the backbone's learning rate and L2 meaning what they mean for LightGCN. Under ``"oat"`` the same situation
  ends with :math:`z \approx V h_1`: for Adam, whose steps do not grow with the gradient, that is roughly a
  LightGCN at :math:`V` times the learning rate and :math:`1/V^2` of the L2 (``docs/results.md``, ml-100k).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

FUSION_MODES = ("oat", "concat", "sum", "residual")


class AdaptiveFusion(nn.Module):
    """Fuses ``n_views`` representations of width ``dim`` into one (see the module docstring).

    Shapes:
        views: a sequence of ``n_views`` tensors ``[N, dim]`` (ID view first), or one tensor
        ``[n_views, N, dim]``; output: ``[N, dim]``.
    """

    def __init__(self, dim: int, n_views: int, mode: str = "oat") -> None:
        super().__init__()
        if mode not in FUSION_MODES:
            raise ValueError(f"fusion mode must be one of {FUSION_MODES}, got {mode!r}.")
        if n_views < 1:
            raise ValueError(f"AdaptiveFusion needs n_views >= 1, got {n_views}.")
        self.dim, self.n_views, self.mode = dim, n_views, mode
        self.weight_logits = nn.Parameter(torch.empty(n_views)) if mode == "oat" else None
        self.coefficients = nn.Parameter(torch.empty(n_views - 1)) if mode == "residual" else None
        self.project = nn.Linear(n_views * dim, dim) if mode == "concat" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight_logits is not None:
            nn.init.zeros_(self.weight_logits)
        if self.coefficients is not None:
            nn.init.ones_(self.coefficients)
        if self.project is not None:
            self.project.reset_parameters()

    def weights(self) -> Tensor | None:
        """Per-view shares ``[n_views]`` summing to 1 (``"oat"``: learned; ``"sum"``: uniform), the fused
        vector being ``n_views * sum_v share_v h_v``; for ``"residual"`` the coefficients themselves
        ``[1, a_2, ..., a_V]``. None for ``"concat"``, whose mixing is a full matrix."""
        if self.mode == "oat":
            return torch.softmax(self.weight_logits, dim=0)
        if self.mode == "sum":
            return torch.full((self.n_views,), 1.0 / self.n_views)
        if self.mode == "residual":
            return torch.cat([self.coefficients.new_ones(1), self.coefficients])
        return None

    def forward(self, views: Sequence[Tensor] | Tensor) -> Tensor:
        stacked = views if isinstance(views, Tensor) else torch.stack(list(views))  # [V, N, dim]
        if stacked.dim() != 3 or stacked.size(0) != self.n_views or stacked.size(-1) != self.dim:
            raise ValueError(
                f"AdaptiveFusion expects {self.n_views} views of width {self.dim}, got shape {tuple(stacked.shape)}."
            )
        if self.mode == "oat":
            return torch.einsum("v,vnd->nd", self.n_views * self.weights().to(stacked.dtype), stacked)
        if self.mode == "sum":
            return stacked.sum(dim=0)
        if self.mode == "residual":
            return stacked[0] + torch.einsum("v,vnd->nd", self.coefficients.to(stacked.dtype), stacked[1:])
        return self.project(torch.cat(list(stacked), dim=-1))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(dim={self.dim}, n_views={self.n_views}, mode={self.mode!r})"
