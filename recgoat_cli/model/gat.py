"""Sparse multi-head graph attention (GAT, Velickovic et al. 2018) over an edge list.

One layer serves every graph RecGOAT uses: item-item kNN graphs, user-user graphs and the user-item
graph (users attend over items, items over users), because source and destination node sets may differ.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recgoat_cli.model.scatter import EdgeLayout, edge_layout, edge_weighted_sum, resolve_backend, scatter_sum, segment_softmax


def log_edge_weight(edge_weight: Tensor) -> Tensor:
    """``log w`` as the attention logits take it: weights must be ``>= 0``; zero is clamped to float32's tiny."""
    if bool((edge_weight < 0).any()):
        raise ValueError("SparseGATLayer edge weights must be >= 0.")
    return edge_weight.clamp_min(torch.finfo(torch.float32).tiny).log()


def affine_scores(sources: list[tuple[Tensor, Tensor, Tensor | None]], score_weight: Tensor) -> Tensor:
    """``x @ score_weight`` for the rows ``x = sum_t (f_t P_t^T + c_t)``, without forming ``x``.

    Shapes:
        sources ``[(f_t [N, d_t], P_t [in_dim, d_t], c_t [in_dim] or None), ...]``; score_weight ``[in_dim, H]``
        -> ``[N, H]``
    """
    scores = sum(features @ (weight.T @ score_weight) for features, weight, _ in sources)
    biases = [bias for _, _, bias in sources if bias is not None]
    return scores + sum(biases) @ score_weight if biases else scores


class SparseGATLayer(nn.Module):
    r"""One multi-head GAT layer; each destination node attends over its incoming edges.

    For an edge ``j -> i`` (row 0 of ``edge_index`` holds ``j``, row 1 holds ``i``) and head ``h``:

    .. math::
        e^h_{ij} = \mathrm{LeakyReLU}\big(a^{h\top}_{src} W^h_{src} x_j + a^{h\top}_{dst} W^h_{dst} x_i\big)
                   + \log w_{ij}

        \alpha^h_{ij} = \frac{\exp e^h_{ij}}{\sum_{k \in N(i)} \exp e^h_{ik}}
                      \quad(\text{so } \alpha^h_{ij} \propto w_{ij} \exp(\text{score}))

        x'_i = \Big\Vert_h \text{ or } \frac{1}{H}\sum_h \;\; \sum_{j \in N(i)} \alpha^h_{ij} W^h_{src} x_j
               \;+\; R\, x_i \;+\; b

    Choices:
        * Edge weights enter multiplicatively into the unnormalised attention (``+ log w`` on the
          logits); ``w = 1`` (or no weights) is plain GAT. Weights must be ``>= 0``; a zero weight
          removes the edge in effect (its log is clamped to ``log(float32 tiny)`` to stay finite).
        * No self-loops are added: a node's own features enter through the residual ``R x_i``
          (identity when the input and output widths agree, else a bias-free linear map). A node with
          no incoming edge gets exactly ``R x_i + b`` (zero aggregation, never NaN).
        * ``share_weights=True`` uses one ``W`` for both sides (same node type, e.g. item-item);
          ``False`` gives sources and destinations their own ``W`` (e.g. users attending over items).
        * Attention dropout (probability ``attn_dropout``) is applied to ``alpha`` in training only.
        * Heads are concatenated (``concat=True``, width ``heads * out_dim``) or averaged (width ``out_dim``).
        * Attention scores use :math:`a^\top W x = (W^\top a)^\top x` (same value, an ``[in_dim, heads]``
          product), so ``W_dst x_i`` itself is never computed.
        * The sum over ``j`` runs as one sparse product (:func:`~recgoat_cli.model.scatter.edge_weighted_sum`),
          so no ``[E, heads, out_dim]`` message tensor is built; a caller that reuses one edge list may pass its
          :class:`~recgoat_cli.model.scatter.EdgeLayout` as ``layout``.
        * Initialisation: Glorot-uniform for ``W``, ``a`` and ``R``; zeros for ``b`` (as in PyG's GATConv).

    Shapes:
        x: ``[N, in_dim]`` or a pair ``(x_src [N_src, in_dim], x_dst [N_dst, in_dim])``;
        edge_index: ``[2, E]`` int64 (row 0 source, row 1 destination); edge_weight: ``[E]`` or None;
        dst_rows: ``[N_dst]`` or None: with ``x`` one tensor, the destinations are its rows ``dst_rows``
        (gathered, for a homogeneous graph restricted to some destinations) and row 1 of ``edge_index``
        indexes ``dst_rows``;
        output: ``[N_dst, heads * out_dim]`` if ``concat`` else ``[N_dst, out_dim]``;
        attention (with ``return_attention=True``): ``[E, heads]``, summing to 1 over each node's incoming edges.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        attn_dropout: float = 0.0,
        residual: bool = True,
        bias: bool = True,
        share_weights: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.heads, self.concat = in_dim, out_dim, heads, concat
        self.negative_slope, self.attn_dropout = negative_slope, attn_dropout
        self.share_weights = share_weights
        self.backend = resolve_backend(backend)
        width = heads * out_dim if concat else out_dim

        self.lin_src = nn.Linear(in_dim, heads * out_dim, bias=False)
        self.lin_dst = self.lin_src if share_weights else nn.Linear(in_dim, heads * out_dim, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_dim))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_dim))
        if not residual:
            self.residual = None
        elif in_dim == width:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Linear(in_dim, width, bias=False)
        self.bias = nn.Parameter(torch.empty(width)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.lin_src.weight)
        if not self.share_weights:
            nn.init.xavier_uniform_(self.lin_dst.weight)
        # Glorot bound for a [heads, out_dim] attention vector, as PyG does.
        for att in (self.att_src, self.att_dst):
            bound = math.sqrt(6.0 / (att.size(-2) + att.size(-1)))
            nn.init.uniform_(att, -bound, bound)
        if isinstance(self.residual, nn.Linear):
            nn.init.xavier_uniform_(self.residual.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        return_attention: bool = False,
        layout: EdgeLayout | None = None,
        dst_rows: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        if dst_rows is not None:
            # destinations are rows of ``x`` (a homogeneous graph restricted to some destinations)
            x_src, x_dst = x, x.index_select(0, dst_rows)
        else:
            x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        num_dst = x_dst.size(0)
        if layout is None:
            layout = edge_layout(edge_index, x_src.size(0), num_dst, self.heads)
        h_src = self.lin_src(x_src).view(-1, self.heads, self.out_dim)
        # a^T (W x) = (W^T a)^T x: scores from an [in_dim, H] product, so the destinations' W x is never formed
        score_src = x_src @ self._score_weight(self.lin_src, self.att_src)  # [N_src, H]
        score_dst = x_dst @ self._score_weight(self.lin_dst, self.att_dst)  # [N_dst, H]
        alpha, dropped = self._attention(score_src, score_dst, layout, None if edge_weight is None else log_edge_weight(edge_weight))
        out = self._node_output(edge_weighted_sum(dropped, h_src, layout), x_dst)  # aggregated [N_dst, H, C]
        if not return_attention:
            return out
        if layout.order is not None:
            alpha = torch.empty_like(alpha).index_copy_(0, layout.order, alpha)
        return out, alpha

    def forward_affine(
        self,
        sources: list[tuple[Tensor, Tensor, Tensor | None]],
        x_dst: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        edge_log_weight: Tensor | None = None,
        dst_sorted: bool = False,
    ) -> Tensor:
        r"""``forward((x_src, x_dst), ...)`` for sources that are affine maps of feature rows, without forming ``x_src``.

        The sources are :math:`x_j = \sum_t (P_t f_{t,j} + c_t)` for ``sources = [(f_t, P_t, c_t), ...]``. The
        layer is linear in :math:`x_j` once the attention weights are known, so

        .. math::
            a^\top W x_j = \sum_t f_{t,j}^\top (P_t^\top W^\top a) + c^\top W^\top a, \qquad
            \sum_j \alpha_{ij} W x_j = \sum_t \Big(\sum_j \alpha_{ij} f_{t,j}\Big) (W P_t)^\top
                + \Big(\sum_j \alpha_{ij}\Big) W c

        with :math:`c = \sum_t c_t` (the sum of :math:`\alpha` differs from 1 under attention dropout, hence
        its own term). The features are summed over the edges and mapped once per destination: the
        ``[N_src, in_dim]`` rows and their ``W x`` are never built, and when the features need no gradient the
        backward has no ``[N_src, d_t]`` product either. Same value and gradients as :meth:`forward`
        (tested), for one layer whose sources are frozen features seen through trainable maps. A caller that
        restricts one weighted graph every batch may pass the weights' logarithm (``edge_log_weight``, clamped
        as :meth:`forward` does) instead of ``edge_weight``, and ``dst_sorted=True`` when its edges come sorted
        by destination (see :func:`~recgoat_cli.model.scatter.edge_layout`).

        Shapes:
            sources: ``[(f_t [N_src, d_t], P_t [in_dim, d_t], c_t [in_dim] or None), ...]``; x_dst
            ``[N_dst, in_dim]``; edge_index ``[2, E]``; edge_weight or edge_log_weight ``[E]`` or None; output
            as :meth:`forward`.
        """
        num_src, num_dst = sources[0][0].size(0), x_dst.size(0)
        features_need_grad = any(features.requires_grad for features, _, _ in sources)
        layout = edge_layout(edge_index, num_src, num_dst, self.heads, transpose=features_need_grad, dst_sorted=dst_sorted)
        if edge_weight is not None:
            edge_log_weight = log_edge_weight(edge_weight)
        score_src = affine_scores(sources, self._score_weight(self.lin_src, self.att_src))  # [N_src, H]
        score_dst = x_dst @ self._score_weight(self.lin_dst, self.att_dst)  # [N_dst, H]
        _, dropped = self._attention(score_src, score_dst, layout, edge_log_weight)
        biases = [bias for _, _, bias in sources if bias is not None]
        shift = sum(biases) if biases else None

        lin = self.lin_src.weight.view(self.heads, self.out_dim, self.in_dim)
        out = None
        for features, weight, _ in sources:
            per_head = features.unsqueeze(1).expand(-1, self.heads, -1)  # a view for one head
            summed = edge_weighted_sum(dropped, per_head, layout)  # [N_dst, H, d_t]
            # per head h: summed[:, h] @ (W^h P_t)^T, as one batched product over the heads
            mapped = torch.bmm(summed.transpose(0, 1), (lin @ weight).transpose(1, 2)).transpose(0, 1)  # [N_dst, H, C]
            out = mapped if out is None else out + mapped
        if shift is not None:
            alpha_sum = scatter_sum(dropped, layout.dst, num_dst, backend=self.backend)  # [N_dst, H]
            out = torch.addcmul(out, alpha_sum.unsqueeze(-1), (lin @ shift).unsqueeze(0))
        return self._node_output(out, x_dst)

    def propagate_values(
        self,
        sources: list[tuple[Tensor, Tensor, Tensor | None]] | Tensor,
        key_dst: Tensor,
        values: Tensor,
        edge_index: Tensor,
        edge_log_weight: Tensor | None = None,
        dst_sorted: bool = False,
    ) -> Tensor:
        r"""Attention from keys, messages from ``values``: :math:`y_i = \frac{1}{H}\sum_h \sum_j \alpha^h_{ij} v_j`.

        The attention :math:`\alpha` is this layer's (scores from the source keys ``x_j`` and the destination
        keys, edge weights as a prior, dropout in training), but what flows along the edges is another
        representation of the sources, ``values``, unchanged: no ``W``, residual or bias. RecGOAT uses it to
        propagate collaborative (ID) embeddings over graphs built from LM representations, with attention
        seeded from those representations. The source keys are a tensor ``[N_src, in_dim]`` or affine terms
        of frozen features as in :meth:`forward_affine`; ``dst_sorted`` as there.

        Shapes:
            sources ``[N_src, in_dim]`` or ``[(f_t [N_src, d_t], P_t [in_dim, d_t], c_t or None), ...]``;
            key_dst ``[N_dst, in_dim]``; values ``[N_src, C]``; edge_index ``[2, E]``; edge_log_weight ``[E]``
            or None -> ``[N_dst, C]``
        """
        layout = edge_layout(edge_index, values.size(0), key_dst.size(0), self.heads, transpose=values.requires_grad, dst_sorted=dst_sorted)
        score_weight = self._score_weight(self.lin_src, self.att_src)  # [in_dim, H]
        score_src = sources @ score_weight if isinstance(sources, Tensor) else affine_scores(sources, score_weight)
        score_dst = key_dst @ self._score_weight(self.lin_dst, self.att_dst)
        _, dropped = self._attention(score_src, score_dst, layout, edge_log_weight)
        out = edge_weighted_sum(dropped, values.unsqueeze(1).expand(-1, self.heads, -1), layout)  # [N_dst, H, C]
        return out[:, 0] if self.heads == 1 else out.mean(dim=1)

    def _attention(self, score_src: Tensor, score_dst: Tensor, layout: EdgeLayout, edge_log_weight: Tensor | None) -> tuple[Tensor, Tensor]:
        """The edge softmax ``alpha`` and its training-time dropout, both ``[E, H]`` in the layout's destination order.

        ``edge_log_weight`` is in the caller's edge order (``layout.order`` maps it); the per-node scores are
        ``[N_src, H]`` and ``[N_dst, H]``.
        """
        src, dst = layout.src, layout.dst
        if edge_log_weight is not None and layout.order is not None:
            edge_log_weight = edge_log_weight.index_select(0, layout.order)
        # index_select rather than ``score[src]``: the same gather, several times faster on a CPU
        logits = F.leaky_relu(score_src.index_select(0, src) + score_dst.index_select(0, dst), self.negative_slope)
        if edge_log_weight is not None:
            logits = logits + edge_log_weight.unsqueeze(-1).to(logits.dtype)
        alpha = segment_softmax(logits, dst, layout.num_dst, backend=self.backend)
        return alpha, F.dropout(alpha, p=self.attn_dropout, training=self.training)

    def _node_output(self, aggregated: Tensor, x_dst: Tensor) -> Tensor:
        """Heads concatenated or averaged, then the residual and the bias: ``[N_dst, H, C]`` -> the layer's output."""
        if self.concat or self.heads == 1:  # one head: its mean is itself
            out = aggregated.reshape(aggregated.size(0), self.heads * self.out_dim)
        else:
            out = aggregated.mean(dim=1)
        if self.residual is not None:
            out = out + self.residual(x_dst)
        if self.bias is not None:
            out = out + self.bias
        return out

    def _score_weight(self, lin: nn.Linear, att: Tensor) -> Tensor:
        """``[in_dim, H]`` with column ``h`` = ``W^{h T} a^h``, so ``x @ it`` = ``a^{h T} W^h x`` per head."""
        weight = lin.weight.view(self.heads, self.out_dim, self.in_dim)
        return (weight * att.view(self.heads, self.out_dim, 1)).sum(1).T

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_dim}, {self.out_dim}, heads={self.heads}, "
            f"concat={self.concat}, residual={self.residual is not None}, backend={self.backend!r})"
        )


class GATEncoder(nn.Module):
    r"""A stack of ``num_layers`` :class:`SparseGATLayer` over one homogeneous graph, ELU between layers.

    .. math::
        x^{(l+1)} = \mathrm{Dropout}\big(\mathrm{ELU}(\mathrm{GAT}_l(x^{(l)}))\big) \quad (l < L-1), \qquad
        z = \mathrm{GAT}_{L-1}(x^{(L-1)})

    Hidden layers concatenate ``heads`` heads of width ``hidden_dim // heads`` (so their output is
    ``hidden_dim`` wide; ``hidden_dim`` must be divisible by ``heads``); the last layer averages its
    heads to ``out_dim``. Feature dropout sits between layers only, never on the input embeddings.
    A user-item graph is encoded as one graph over ``N_users + N_items`` nodes with edges both ways.

    Shapes:
        x: ``[N, in_dim]``; edge_index: ``[2, E]``; edge_weight: ``[E]`` or None; output: ``[N, out_dim]``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        num_layers: int = 2,
        heads: int = 1,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        negative_slope: float = 0.2,
        residual: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"GATEncoder needs num_layers >= 1, got {num_layers}.")
        if num_layers > 1 and hidden_dim % heads != 0:
            raise ValueError(f"GATEncoder hidden_dim ({hidden_dim}) must be divisible by heads ({heads}).")
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        self.num_layers, self.heads, self.dropout = num_layers, heads, dropout
        common = dict(negative_slope=negative_slope, attn_dropout=attn_dropout, residual=residual, backend=backend)
        layers = []
        for depth in range(num_layers):
            layer_in = in_dim if depth == 0 else hidden_dim
            if depth == num_layers - 1:
                layers.append(SparseGATLayer(layer_in, out_dim, heads=heads, concat=False, **common))
            else:
                layers.append(SparseGATLayer(layer_in, hidden_dim // heads, heads=heads, concat=True, **common))
        self.layers = nn.ModuleList(layers)

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        for depth, layer in enumerate(self.layers):
            x = layer(x, edge_index, edge_weight)
            if depth < self.num_layers - 1:
                x = F.dropout(F.elu(x), p=self.dropout, training=self.training)
        return x

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_dim}, {self.hidden_dim}, {self.out_dim}, "
            f"num_layers={self.num_layers}, heads={self.heads})"
        )
