r"""Optimal Adaptive Transport (OAT): distribution-level alignment of modality representations to IDs.

For one batch of ``n`` items, a modality's representations ``x_1..x_n`` and the ID representations
``y_1..y_m`` are two empirical distributions with weights ``a`` and ``b`` (uniform by default). OAT
solves the entropic optimal-transport problem between them

.. math::
    P^\star = \arg\min_{P \ge 0,\; P 1 = a,\; P^\top 1 = b} \langle P, \tilde M \rangle - \varepsilon H(P),
    \qquad \tilde M = M / \operatorname{mean}(M), \qquad M_{ij} = \lVert x_i - y_j \rVert^2

with log-domain Sinkhorn (POT's ``ot.sinkhorn(method="sinkhorn_log")`` on torch tensors, so autograd
runs through the iterations), and uses

* the transport cost :math:`W = \langle P^\star, \tilde M \rangle` as the alignment loss, and
* the barycentric map :math:`T(x_i) = \sum_j P^\star_{ij} y_j / \sum_j P^\star_{ij}` (``= n P^\star y``
  for uniform ``a``) to move each modality row towards the ID space.

Choices (each is an argument; defaults in brackets):

* Cost normalisation [on]: ``M`` is divided by its mean, detached, so ``reg`` (``epsilon``) is relative
  to the typical cost and the loss is scale-free: the independent coupling ``a b^T`` scores exactly 1
  (uniform marginals), identical sets score near 0 (entropic blur: 0.004 for 10 points in 6-d at
  reg=0.05). The detached scale only rescales
  the gradient of ``<P, M>``; it never rewards spreading points apart.
* ``reg`` [0.1 on the normalised cost], ``n_iter_max`` [100], ``tol`` [1e-6]. Convergence is POT's
  criterion: the L2 norm of the marginal violation, checked every 10 iterations; we recheck both
  marginals of the returned plan and warn :class:`SinkhornNotConverged` (once per setting, by the
  default warnings filter; the per-call error is returned) when the larger violation exceeds ``tol``.
  Measured on 1024 x 1024 batches, d=64, modality rows = permuted ID rows + Gaussian noise of std
  1.0 / 0.3 / 0.05: reg=0.1 met tol in 20 / 80 / 80 iterations, whereas reg=0.05 needed more than 100
  in two of the three (marginal L1 error left ~1e-4..7e-4). Sinkhorn slows down as the two point
  clouds approach a one-to-one match, which is where training drives them; a smaller ``reg`` gives
  sharper plans but needs a larger ``n_iter_max``.
* The cost matrix uses ``|x|^2 + |y|^2 - 2 x y^T`` (clamped at 0): ``O(n m)`` memory, never an
  ``n x m x d`` difference tensor.
* ``grad`` ["autodiff"]: differentiate through the unrolled Sinkhorn iterations (exact gradient of what
  was computed; memory ``O(iterations * n * m)``). ``"envelope"`` solves for ``P`` without autograd and
  uses ``<P.detach(), M~>``, whose gradient w.r.t. ``M~`` is ``P``: by the envelope theorem that is the
  gradient of the regularised optimum ``min_P <P, M~> - eps H(P)`` at convergence; the barycentric map
  then also uses the detached plan. Memory ``O(n m)``. Measured (CPU, 1 thread, n = m = 1024, d = 64,
  one modality, forward + backward): autodiff 6.3 s and +1036 MiB peak RSS, envelope 2.0 s and +59 MiB.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import NamedTuple, Sequence

# Only POT's torch backend is used. Left alone, `import ot` also imports JAX, CuPy and TensorFlow when they are
# installed, and JAX then reserves 75% of the GPU's memory in every process: parallel trials on one GPU ran out
# of memory that way. A user who sets these variables keeps their value.
for _backend in ("JAX", "CUPY", "TENSORFLOW"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_backend}", "1")

import ot  # noqa: E402  (after the backend switches above)
import torch
import torch.nn.functional as F
from torch import Tensor, nn

METRICS = ("sqeuclidean", "cosine")
GRAD_MODES = ("autodiff", "envelope")


class SinkhornNotConverged(RuntimeWarning):
    """Sinkhorn stopped at ``n_iter_max`` with a marginal violation above ``tol``."""


class SinkhornResult(NamedTuple):
    plan: Tensor  # [n, m], differentiable w.r.t. M (and a, b)
    marginal_error: Tensor  # scalar, detached: max(|P 1 - a|_2, |P^T 1 - b|_2)


class DimensionPlan(NamedTuple):
    plan: Tensor  # [d, d'], detached
    marginal_error: Tensor  # scalar
    potentials: tuple[Tensor, Tensor]  # (log u, log v): a warm start for a nearby problem


def cost_matrix(x: Tensor, y: Tensor, metric: str = "sqeuclidean") -> Tensor:
    """Pairwise costs between the rows of ``x`` and ``y``.

    ``"sqeuclidean"``: ``|x_i - y_j|^2 = |x_i|^2 + |y_j|^2 - 2 x_i.y_j``, clamped at 0 against rounding.
    ``"cosine"``: ``1 - cos(x_i, y_j)`` in ``[0, 2]``.

    Shapes:
        x: ``[n, d]``; y: ``[m, d]``; returns ``[n, m]``.
    """
    if metric == "sqeuclidean":
        sq_norms = (x * x).sum(-1)[:, None] + (y * y).sum(-1)[None, :]
        return (sq_norms - 2.0 * x @ y.T).clamp_min(0.0)
    if metric == "cosine":
        return (1.0 - F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T).clamp_min(0.0)
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")


def _at_least_float32(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _uniform(size: int, like: Tensor) -> Tensor:
    return torch.full((size,), 1.0 / size, dtype=like.dtype, device=like.device)


def sinkhorn_plan(
    a: Tensor | None,
    b: Tensor | None,
    M: Tensor,
    reg: float,
    n_iter_max: int = 100,
    tol: float = 1e-6,
    log_domain: bool = True,
    warmstart: tuple[Tensor, Tensor] | None = None,
    return_potentials: bool = False,
) -> SinkhornResult:
    """Entropic OT plan between histograms ``a`` and ``b`` for cost ``M`` (POT Sinkhorn, torch backend).

    ``a``/``b`` of None mean uniform. ``log_domain=True`` (default) iterates on log-potentials and stays
    finite for small ``reg``; ``False`` uses the classic scaling iterations (faster, underflows when
    ``M / reg`` is large). Warns :class:`SinkhornNotConverged` if a marginal is violated by more than ``tol``.
    ``warmstart`` is ``(log u, log v)`` of a nearby problem (log domain only); ``return_potentials=True``
    returns ``(result, (log u, log v))`` instead, for the next warm start.

    Shapes:
        a: ``[n]``; b: ``[m]``; M: ``[n, m]``; returns plan ``[n, m]`` and a scalar marginal error.
    """
    if reg <= 0:
        raise ValueError(f"Sinkhorn reg must be > 0, got {reg}.")
    n, m = M.shape
    a = _uniform(n, M) if a is None else a
    b = _uniform(m, M) if b is None else b
    method = "sinkhorn_log" if log_domain else "sinkhorn"
    # POT's own warning is generic; we check the returned plan ourselves and raise a typed warning.
    extra = {"warmstart": warmstart} if warmstart is not None else {}
    plan, log = ot.sinkhorn(a, b, M, reg, method=method, numItermax=n_iter_max, stopThr=tol, warn=False, log=True, **extra)
    with torch.no_grad():
        marginal_error = torch.maximum(
            torch.linalg.vector_norm(plan.sum(1) - a), torch.linalg.vector_norm(plan.sum(0) - b)
        )
    error = float(marginal_error)
    if not error <= tol:  # also catches NaN
        # The text leaves out the error value on purpose, so the default filter shows it once per setting
        # instead of once per training step; callers read the value from the result.
        warnings.warn(
            f"Sinkhorn did not reach marginal error tol={tol:g} within n_iter_max={n_iter_max} iterations "
            f"(reg={reg:g}); raise n_iter_max or reg.",
            SinkhornNotConverged,
            stacklevel=2,
        )
    if return_potentials:
        return SinkhornResult(plan, marginal_error), (log["log_u"], log["log_v"])
    return SinkhornResult(plan, marginal_error)


def _normalised_cost(x: Tensor, y: Tensor, metric: str, normalize_cost: bool) -> Tensor:
    cost = cost_matrix(x, y, metric)
    if normalize_cost:
        # Detached scale: reg becomes relative to the mean cost without a gradient towards spreading points.
        cost = cost / cost.mean().detach().clamp_min(torch.finfo(cost.dtype).tiny)
    return cost


def _solve(cost: Tensor, reg: float, n_iter_max: int, tol: float, grad: str) -> SinkhornResult:
    if grad not in GRAD_MODES:
        raise ValueError(f"grad must be one of {GRAD_MODES}, got {grad!r}.")
    if grad == "envelope":
        with torch.no_grad():
            return sinkhorn_plan(None, None, cost.detach(), reg, n_iter_max, tol)
    return sinkhorn_plan(None, None, cost, reg, n_iter_max, tol)


def wasserstein_cost(
    x: Tensor,
    y: Tensor,
    reg: float = 0.1,
    metric: str = "sqeuclidean",
    n_iter_max: int = 100,
    tol: float = 1e-6,
    normalize_cost: bool = True,
    grad: str = "autodiff",
) -> Tensor:
    """Entropic transport cost ``<P*, M~>`` between the uniform empirical distributions of ``x`` and ``y``.

    Shapes:
        x: ``[n, d]``; y: ``[m, d]``; returns a scalar (1 for the independent coupling when normalised).
    """
    cost = _normalised_cost(x, y, metric, normalize_cost)
    plan = _solve(cost, reg, n_iter_max, tol, grad).plan
    return (plan * cost).sum()


def transport_map(plan: Tensor, target: Tensor) -> Tensor:
    """Barycentric projection: row ``i`` goes to the ``P``-weighted mean of the target rows.

    ``T_i = sum_j P_ij target_j / sum_j P_ij``; equals ``n * P @ target`` when the rows of ``P`` sum to
    ``1/n``. Dividing by the actual row sums keeps every output a convex combination of target rows.

    Shapes:
        plan: ``[n, m]``; target: ``[m, d]``; returns ``[n, d]``.
    """
    row_mass = plan.sum(1, keepdim=True).clamp_min(torch.finfo(plan.dtype).tiny)
    return (plan @ target) / row_mass


class OptimalAdaptiveTransport(nn.Module):
    r"""Aligns each modality's batch representations to the ID representations by entropic OT.

    For each modality ``m`` with plan :math:`P_m` between its rows and the ID rows of the same items:

    .. math::
        \tilde x_m = x_m + \gamma_m \big(T_m(x_m) - x_m\big), \qquad \gamma_m = \sigma(\theta_m),
        \qquad \mathcal{L}_{OAT} = \frac{1}{|\mathcal{M}|} \sum_m \langle P_m, \tilde M_m \rangle

    ``gamma_m`` in (0, 1) is how far modality ``m`` moves onto its transport image in ID space
    (0 = untouched, 1 = replaced by the barycentric image); it is learned per modality (``learn_mix``)
    from ``mix_init`` [0.5], which is what makes the transport adaptive. Gradients of the loss reach
    both the modality and the ID representations. Transport runs in float32 or wider with autocast
    off; outputs come back in that dtype. See the module docstring for the cost and solver.

    Shapes:
        modal: ``{name: [B, d]}`` for every name in ``modalities``; ids: ``[B, d]`` (row k of each is the
        same item); returns ``({name: [B, d]}, scalar loss)``.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        reg: float = 0.1,
        n_iter_max: int = 100,
        tol: float = 1e-6,
        metric: str = "sqeuclidean",
        mix_init: float = 0.5,
        learn_mix: bool = True,
        grad: str = "autodiff",
    ) -> None:
        super().__init__()
        if not modalities:
            raise ValueError("OptimalAdaptiveTransport needs at least one modality.")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")
        if grad not in GRAD_MODES:
            raise ValueError(f"grad must be one of {GRAD_MODES}, got {grad!r}.")
        if learn_mix and not 0.0 < mix_init < 1.0:
            raise ValueError(f"a learned mix needs 0 < mix_init < 1, got {mix_init}.")
        if not 0.0 <= mix_init <= 1.0:
            raise ValueError(f"mix_init must lie in [0, 1], got {mix_init}.")
        self.modalities = list(modalities)
        self.reg, self.n_iter_max, self.tol = reg, n_iter_max, tol
        self.metric, self.mix_init, self.learn_mix, self.grad = metric, mix_init, learn_mix, grad
        if learn_mix:
            self.mix_logit = nn.Parameter(torch.empty(len(self.modalities)))
        else:
            self.register_buffer("mix_fixed", torch.empty(len(self.modalities)))
        self.last_marginal_error: dict[str, Tensor] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.learn_mix:
            nn.init.constant_(self.mix_logit, math.log(self.mix_init / (1.0 - self.mix_init)))
        else:
            nn.init.constant_(self.mix_fixed, self.mix_init)

    def mix(self) -> Tensor:
        """Per-modality ``gamma`` in the order of ``modalities``; shape ``[n_modalities]``."""
        return torch.sigmoid(self.mix_logit) if self.learn_mix else self.mix_fixed

    def forward(self, modal: dict[str, Tensor], ids: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        missing = [name for name in self.modalities if name not in modal]
        if missing:
            raise ValueError(f"OptimalAdaptiveTransport is missing modalities {missing}; got {list(modal)}.")
        aligned, losses = {}, []
        # Transport runs in at least float32 even under autocast: half-precision costs and log-potentials
        # lose the small marginal differences that Sinkhorn's convergence check measures.
        with torch.autocast(device_type=ids.device.type, enabled=False):
            ids = ids.to(_at_least_float32(ids.dtype))
            gammas = self.mix().to(ids.dtype)
            for gamma, name in zip(gammas, self.modalities):
                x = modal[name].to(ids.dtype)
                cost = _normalised_cost(x, ids, self.metric, normalize_cost=True)
                result = _solve(cost, self.reg, self.n_iter_max, self.tol, self.grad)
                self.last_marginal_error[name] = result.marginal_error
                losses.append((result.plan * cost).sum())
                aligned[name] = x + gamma * (transport_map(result.plan, ids) - x)
        return aligned, torch.stack(losses).mean()

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(modalities={self.modalities}, reg={self.reg}, "
            f"n_iter_max={self.n_iter_max}, metric={self.metric!r}, grad={self.grad!r})"
        )


# --- the transport map between dimensions (``--fusion oat-map``, the reference code's OAT) -----------------------


def dimension_cost(x: Tensor, y: Tensor, scale: float = 1.0) -> Tensor:
    r"""``C[a, b] = scale * mean_i (x[i, a] - y[i, b])^2``: the cost of moving dimension ``a`` of ``x`` onto ``b`` of ``y``.

    Expanded as :math:`\frac{s}{n}\big(\lVert x_{:,a}\rVert^2 + \lVert y_{:,b}\rVert^2 - 2 (x^\top y)_{ab}\big)`: two
    column norms and one ``d x d`` product, never the ``n x d x d`` difference tensor the reference code builds
    (clamped at 0 against rounding).

    Shapes:
        x: ``[n, d]``; y: ``[n, d']`` (row ``i`` of both is the same item); returns ``[d, d']``.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"dimension_cost needs the same rows in x and y, got {x.shape[0]} and {y.shape[0]}.")
    rows = x.shape[0]
    sq = (x * x).sum(0)[:, None] + (y * y).sum(0)[None, :]
    return (sq - 2.0 * x.T @ y).clamp_min(0.0) * (scale / rows)


def dimension_plan(
    x: Tensor,
    y: Tensor,
    scale: float = 100.0,
    reg: float = 0.01,
    n_iter_max: int = 1000,
    tol: float = 1e-7,
    warmstart: tuple[Tensor, Tensor] | None = None,
) -> DimensionPlan:
    """The entropic transport plan between the ``d`` dimensions of ``x`` and of ``y`` (uniform marginals).

    Cost :func:`dimension_cost` (``scale`` times the mean squared difference), solved by POT's log-domain Sinkhorn
    in float64 without autograd (the plan is a constant of the step, as in the reference code; see
    ``docs/method.md``), with :func:`sinkhorn_plan`'s convergence check and warning. The reference code runs
    100 exp-domain iterations on ``exp(-C / reg)`` instead, which underflows at these settings. ``warmstart``
    (the ``potentials`` of a previous result, e.g. the last training step's) starts the iterations near the
    solution; the converged plan is the same to within ``tol``.

    Shapes:
        x: ``[n, d]``; y: ``[n, d']``; returns plan ``[d, d']`` (dtype of ``x``), a scalar marginal error and the
        float64 log-potentials.
    """
    with torch.no_grad():
        cost = dimension_cost(x.detach().double(), y.detach().double(), scale)
        result, potentials = sinkhorn_plan(None, None, cost, reg, n_iter_max, tol, warmstart=warmstart, return_potentials=True)
    return DimensionPlan(result.plan.to(x.dtype), result.marginal_error, potentials)
