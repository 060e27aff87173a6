r"""The reference code's item branch (``--item-branch reference``): a projection + GAT stack over all items.

RecGOAT's own item branch (``GraphAttentionBranch`` in ``model/recgoat.py``) computes only the rows a batch needs;
this one follows the published reference code, which recomputes every item each step, so that the two can be
compared. Pure ``nn.Module``: tensors in, tensors out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recgoat_cli.model.gat import SparseGATLayer
from recgoat_cli.model.scatter import edge_layout

__all__ = ["ReferenceItemBranch"]


class ReferenceItemBranch(nn.Module):
    r"""The reference code's item branch over one modality's item-item graph, on already projected rows.

    .. math::
        h^{(0)} = x, \qquad h^{(l+1)} = \mathrm{Dropout}\big(\mathrm{LeakyReLU}_{0.2}\big(
            \big\Vert_{k=1}^{H} \mathrm{GAT}^k_l(\mathrm{Dropout}(h^{(l)}))\big)\big)

    ``layers`` GAT layers of ``heads`` heads of width ``dim / heads``, concatenated (so every layer is ``dim``
    wide), with feature dropout on each layer's input and attention dropout (both ``dropout``), a bias and no
    residual (DGL's ``GATConv`` defaults, which the reference uses); self-loops are added to the graph and the
    attention ignores edge weights, as there. Every node is computed (the reference recomputes all items every
    step); the edge layout of the graph is built once and reused while the same ``edge_index`` comes back.

    Shapes:
        x: ``[N, dim]``; edge_index: ``[2, E]`` (row 0 source, row 1 destination) -> ``[N, dim]``
    """

    def __init__(self, dim: int, layers: int, heads: int, dropout: float, backend: str = "auto"):
        super().__init__()
        if dim % heads:
            raise ValueError(f"the reference item branch needs --dim divisible by --gat-heads, got {dim} and {heads}.")
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.layers = nn.ModuleList(
            SparseGATLayer(dim, dim // heads, heads=heads, concat=True, attn_dropout=dropout, residual=False, backend=backend)
            for _ in range(layers)
        )
        self._layout_cache: tuple | None = None

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def layout(self, edge_index: Tensor, num_nodes: int):
        """The graph with self-loops, grouped by destination for ``heads`` heads (cached per edge tensor)."""
        cached = self._layout_cache
        key = (edge_index._version, num_nodes)
        if cached is None or cached[0] is not edge_index or cached[1] != key:
            loops = torch.arange(num_nodes, device=edge_index.device)
            others = edge_index[:, edge_index[0] != edge_index[1]]
            with_loops = torch.cat([others, torch.stack([loops, loops])], dim=1)
            cached = self._layout_cache = (edge_index, key, with_loops, edge_layout(with_loops, num_nodes, num_nodes, self.heads))
        return cached[2], cached[3]

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        edges, layout = self.layout(edge_index, x.size(0))
        for layer in self.layers:
            x = layer(F.dropout(x, self.dropout, self.training), edges, layout=layout)
            x = F.dropout(F.leaky_relu(x, 0.2), self.dropout, self.training)
        return x

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(dim={self.dim}, layers={len(self.layers)}, heads={self.heads})"
