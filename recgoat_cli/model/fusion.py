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
import torch.nn.functional as F
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


#: the reference code's initial weights (``alpha`` for the image view, ``beta`` for the text view)
REFERENCE_MIX_INIT = {"image": 0.05, "text": 0.8}
#: initial weight of a modality the reference code has no weight for (audio, imported features)
OTHER_MIX_INIT = 0.05
#: the reference's total initial weight of the modality views (0.05 + 0.8); a larger sum is scaled down to it
REFERENCE_MIX_TOTAL = 0.85
PLAN_MODES = ("sinkhorn", "none")


def transport_mix_init(modalities: Sequence[str]) -> list[float]:
    """Initial ``a_m`` per modality: the reference's image 0.05 and text 0.8, 0.05 for any other modality,
    scaled down to a total of 0.85 when they sum to more (so the ID view keeps a positive weight)."""
    weights = [REFERENCE_MIX_INIT.get(name, OTHER_MIX_INIT) for name in modalities]
    total = sum(weights)
    return [w * REFERENCE_MIX_TOTAL / total for w in weights] if total > REFERENCE_MIX_TOTAL + 1e-9 else weights


class TransportMapFusion(nn.Module):
    r"""``--fusion oat-map``: each modality mapped onto the ID view's dimensions by a transport plan, then mixed.

    For the collaborative (ID) rows :math:`Z_{cf}` and modality rows :math:`Z_m` of all items:

    .. math::
        C_m[a, b] = s \cdot \tfrac{1}{n}\textstyle\sum_i (Z_m[i, a] - Z_{cf}[i, b])^2, \qquad
        T_m = \mathrm{Sinkhorn}_\varepsilon(C_m; \tfrac{1}{d}\mathbb{1}, \tfrac{1}{d}\mathbb{1})

        z = \mathrm{normalize}\Big(\mathrm{Dropout}\big(\mathrm{LayerNorm}\big((1 - \textstyle\sum_m a_m) Z_{cf}
            + \textstyle\sum_m a_m Z_m (T_m + \Delta_m)\big)\big)\Big)

    with learned :math:`\Delta_m` (``d x d``, Xavier init) and :math:`a_m` (free scalars, initialised by
    :func:`transport_mix_init`). :math:`T_m` is solved over all rows given (the plan is a ``d x d`` problem,
    :func:`~recgoat_cli.model.oat.dimension_plan`) and is a constant of the step: no gradient flows through it,
    as in the reference code. ``plan="none"`` sets :math:`T_m = 0`, i.e. :math:`z` from :math:`Z_m \Delta_m`:
    what the reference code computes when its exp-domain Sinkhorn underflows (``docs/method.md``).

    Shapes:
        cf: ``[N, d]``; modal: ``M`` tensors ``[N, d]``; rows: ``[B]`` or None -> ``[B or N, d]`` (unit rows)
    """

    def __init__(
        self, dim: int, modalities: Sequence[str], scale: float = 100.0, reg: float = 0.01, n_iter_max: int = 1000,
        tol: float = 1e-7, plan: str = "sinkhorn", dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if plan not in PLAN_MODES:
            raise ValueError(f"plan must be one of {PLAN_MODES}, got {plan!r}.")
        if not modalities:
            raise ValueError("TransportMapFusion needs at least one modality.")
        self.dim, self.modalities = dim, list(modalities)
        self.scale, self.reg, self.n_iter_max, self.tol, self.plan = scale, reg, n_iter_max, tol, plan
        self.delta = nn.Parameter(torch.empty(len(self.modalities), dim, dim))
        self.mix = nn.Parameter(torch.empty(len(self.modalities)))
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        #: per modality, the marginal error of the last plan (diagnostics)
        self.last_marginal_error: dict[str, float] = {}
        #: per modality, the last plan's log-potentials: the next training step's warm start (evaluation starts
        #: cold, so it depends on the weights alone; not saved in checkpoints)
        self._potentials: dict[str, tuple[Tensor, Tensor]] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for delta in self.delta:
            nn.init.xavier_uniform_(delta)
        with torch.no_grad():
            self.mix.copy_(torch.tensor(transport_mix_init(self.modalities)))
        self.norm.reset_parameters()

    def plans(self, cf: Tensor, modal: Sequence[Tensor]) -> Tensor:
        """``T_m`` for every modality, ``[M, d, d]`` (detached; zeros for ``plan="none"``)."""
        from recgoat_cli.model.oat import dimension_plan

        if self.plan == "none":
            return cf.new_zeros(len(self.modalities), self.dim, self.dim)
        plans = []
        for name, rows in zip(self.modalities, modal):
            result = dimension_plan(rows, cf, self.scale, self.reg, self.n_iter_max, self.tol, warmstart=self._potentials.get(name) if self.training else None)
            self.last_marginal_error[name] = float(result.marginal_error)
            if all(bool(torch.isfinite(p).all()) for p in result.potentials):
                self._potentials[name] = result.potentials
            plans.append(result.plan)
        return torch.stack(plans)

    def forward(self, cf: Tensor, modal: Sequence[Tensor], rows: Tensor | None = None) -> Tensor:
        if len(modal) != len(self.modalities):
            raise ValueError(f"TransportMapFusion expects {len(self.modalities)} modality views, got {len(modal)}.")
        maps = self.plans(cf, modal) + self.delta  # [M, d, d]
        if rows is not None:
            cf, modal = cf.index_select(0, rows), [m.index_select(0, rows) for m in modal]
        aligned = torch.einsum("mnd,mde->mne", torch.stack(list(modal)), maps)  # [M, B, d]
        fused = (1.0 - self.mix.sum()) * cf + torch.einsum("m,mnd->nd", self.mix, aligned)
        return F.normalize(self.dropout(self.norm(fused)), dim=-1)

    def weights(self) -> Tensor:
        """``[1 - sum a, a_1, ..., a_M]``: the ID view's weight, then each modality's."""
        return torch.cat([(1.0 - self.mix.sum()).reshape(1), self.mix])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(dim={self.dim}, modalities={self.modalities}, plan={self.plan!r}, scale={self.scale}, reg={self.reg})"
