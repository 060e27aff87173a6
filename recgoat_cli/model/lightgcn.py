"""LightGCN: embeddings smoothed over the normalised user-item graph, without weights or non-linearities."""

from __future__ import annotations

import torch

from recgoat_cli.model.base import RecOutput, select_rows
from recgoat_cli.model.mf import MatrixFactorization


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ X`` for a constant symmetric sparse ``A``: the gradient ``A^T G`` is ``A G``.

    torch's own backward of a sparse product transposes ``A`` on every call, which costs more than the
    product itself on a CPU; the normalised bipartite adjacency is symmetric, so the transpose is not needed.
    """

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency
        return adjacency @ dense

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, ctx.adjacency @ grad


def symmetric_spmm(adjacency: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``adjacency @ dense`` with a transpose-free backward; ``adjacency`` must be symmetric and constant."""
    return _SymmetricSpMM.apply(adjacency, dense)


def propagate(adjacency: torch.Tensor, ego: torch.Tensor, n_layers: int) -> torch.Tensor:
    r"""Layer-mean propagation :math:`E = \frac{1}{L+1}\sum_{l=0}^{L} \hat A^l E^{(0)}`.

    Shapes:
        adjacency: sparse [N, N], symmetric (:math:`\hat A = D^{-1/2} A D^{-1/2}`), COO or CSR;
        ego: [N, d] -> [N, d]
    """
    layer, total = ego, ego
    for _ in range(n_layers):
        layer = symmetric_spmm(adjacency, layer)
        total = total + layer
    return total / (n_layers + 1)


class LightGCN(MatrixFactorization):
    r"""LightGCN (He et al., 2020): MF's free tables, smoothed over the bipartite graph :math:`A = [[0, R], [R^\top, 0]]`.

    Users are nodes ``0..n_users-1`` and items ``n_users..n_users+n_items-1`` of the adjacency.

    Shapes:
        forward(graph) with graph["adjacency"]: sparse [U+I, U+I] -> RecOutput(users [U, dim], items [I, dim])
    """

    def __init__(self, n_users: int, n_items: int, dim: int, n_layers: int):
        super().__init__(n_users, n_items, dim)
        self.n_layers = n_layers

    def forward(self, graph: dict[str, torch.Tensor], users: torch.Tensor | None = None, items: torch.Tensor | None = None) -> RecOutput:
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight])
        out = propagate(graph["adjacency"], ego, self.n_layers)
        return RecOutput(select_rows(out[: self.n_users], users), select_rows(out[self.n_users :], items))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(n_users={self.n_users}, n_items={self.n_items}, "
            f"dim={self.dim}, n_layers={self.n_layers})"
        )
