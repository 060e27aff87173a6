r"""RecGOAT: graph attention over LM representations, aligned to collaborative IDs by CMCL and OAT.

For users :math:`u`, items :math:`i` and modalities :math:`m` (text, image, imported features):

.. math::
    U^{id}, I^{id} = \mathrm{LightGCN}(\hat A; E_u, E_i)
        \qquad\text{(collaborative backbone over the user-item graph)}

    X_m = F_m W_m, \qquad I^{m} = \mathrm{GAT}^{ii}_m(X_m; G^{ii}_m)
        \qquad\text{(item-item kNN graph of modality } m)

    U^{items} = \mathrm{GAT}^{ui}\big((\tfrac{1}{|M|}\textstyle\sum_m X_m, E_u); G^{ui}\big)
        \qquad\text{(users attend over their train items' content rows)}

    U^{lm} = \mathrm{GAT}^{uu}(F_u W_u; G^{uu})
        \qquad\text{(user-user kNN graph over user LM representations)}

    z_i = \sum_v \pi^{item}_v I^{v}_i,\quad z_u = \sum_v \pi^{user}_v U^{v}_u,
        \quad \pi = \mathrm{softmax}(w) \qquad\text{(adaptive fusion)}, \qquad \hat y_{ui} = z_u^\top z_i

Training adds to BPR on :math:`\hat y`: CMCL, the InfoNCE between the ID view and every other view of the
same batch items (and users); and OAT, the entropic Wasserstein cost between each modality's batch
distribution and the ID distribution (gradient by the envelope theorem, see ``model/oat.py``).

Cost: the LM features are frozen inputs; the attention layers compute only the rows the batch needs (the
last layer is restricted to the batch's destination nodes) and, because a GAT layer is linear in its source
rows once the attention is known, sum the frozen features over the batch's edges and project them once per
destination (``SparseGATLayer.forward_affine``): no source row is projected, so the extra cost over LightGCN
is a few sparse products over the batch's edges, not another full-graph pass. Everything is computed for
all nodes at evaluation.

Graph inputs (``graph`` dict of tensors, built by the train stage):
``adjacency`` (sparse [U+I, U+I]), ``feat:<m>`` ([I, d_m], L2-normalised), ``item_edges:<m>`` ([2, E]
item -> item) with ``item_weights:<m>`` ([E]), ``ui_edges`` ([2, E] item -> user, train only),
``user_feat`` ([U, d_u]), ``user_edges`` ([2, E] user -> user) with ``user_weights``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recgoat_cli.model.base import RecOutput, Recommender
from recgoat_cli.model.cmcl import info_nce, reference_cmcl
from recgoat_cli.model.content import ContentScore
from recgoat_cli.model.fusion import AdaptiveFusion, TransportMapFusion
from recgoat_cli.model.gat import GATEncoder, SparseGATLayer, log_edge_weight
from recgoat_cli.model.lightgcn import propagate
from recgoat_cli.model.oat import wasserstein_cost
from recgoat_cli.model.reference import ReferenceItemBranch

GRAPH_KINDS = ("item", "user-item", "user-user")
#: what the attention layers pass along the edges: the projected LM rows ("lm") or the collaborative
#: (LightGCN) embeddings of the sources, with the attention still computed from the LM rows ("id")
GAT_VALUES = ("lm", "id")
#: the item-item branches: recgoat's batch-restricted attention, or the reference code's projection + GAT stack
ITEM_BRANCHES = ("attention", "reference")
#: how CMCL is composed: recgoat's ID-anchored view pairs, or the reference code's user-item + view-pair InfoNCE
CMCL_FORMS = ("views", "reference")
#: Sinkhorn's marginal tolerance in training: float32 marginals of 1/256 cannot meet 1e-6 reliably
OT_TOLERANCE = 1e-5


def restrict_edges(edge_index: Tensor, edge_weight: Tensor | None, nodes: Tensor | None, num_nodes: int):
    """Keep the edges into ``nodes`` and renumber their destinations to positions in ``nodes``.

    One pass over all ``E`` edges; :class:`IncomingEdges` does the same in ``O(E')`` for a graph restricted
    once per batch.

    Shapes:
        edge_index [2, E], edge_weight [E] or None, nodes [B] (unique) -> edge_index [2, E'], weight [E']
    """
    if nodes is None:
        return edge_index, edge_weight
    position = torch.full((num_nodes,), -1, dtype=torch.long, device=edge_index.device)
    position[nodes] = torch.arange(nodes.numel(), device=edge_index.device)
    keep = position[edge_index[1]] >= 0
    kept = torch.stack([edge_index[0, keep], position[edge_index[1, keep]]])
    return kept, (edge_weight[keep] if edge_weight is not None else None)


class IncomingEdges:
    """One graph's edges grouped by destination, so restricting them to a batch costs ``O(E')``, not ``O(E)``.

    Built once per graph (one sort) and reused by every batch; the weights' logarithm, which the attention
    logits take, is also computed once (``restrict(nodes, log_weights=True)``).

    Shapes:
        edge_index [2, E], edge_weight [E] or None; ``restrict(nodes [B])`` -> edge_index [2, E'] (row 1 holds
        positions in ``nodes``, non-decreasing), weight [E'] or None
    """

    def __init__(self, edge_index: Tensor, edge_weight: Tensor | None, num_dst: int):
        order = torch.argsort(edge_index[1], stable=True)
        self.source = edge_index[0, order]
        self.weight = edge_weight[order] if edge_weight is not None else None
        self.log_weight = log_edge_weight(self.weight) if edge_weight is not None else None
        counts = torch.bincount(edge_index[1], minlength=num_dst)
        self.pointers = torch.cat([counts.new_zeros(1), counts.cumsum(0)])

    def count(self, nodes: Tensor) -> Tensor:
        """How many edges ``restrict(nodes)`` keeps, as a 0-d tensor on the graph's device (read without waiting)."""
        return (self.pointers.index_select(0, nodes + 1) - self.pointers.index_select(0, nodes)).sum()

    def restrict(self, nodes: Tensor, log_weights: bool = False, size: int | None = None) -> tuple[Tensor, Tensor | None]:
        """The edges into ``nodes``; ``size`` is their number when known (``count``), else counting them waits for a GPU."""
        start = self.pointers.index_select(0, nodes)
        counts = self.pointers.index_select(0, nodes + 1) - start
        local_dst = torch.repeat_interleave(torch.arange(nodes.numel(), device=nodes.device), counts, output_size=size)
        # position of edge k of the output: start of its destination's range + its rank inside that range
        offsets = torch.cumsum(counts, 0) - counts
        kept = torch.arange(local_dst.numel(), device=nodes.device) + (start - offsets).index_select(0, local_dst)
        weights = self.log_weight if log_weights else self.weight
        weight = weights.index_select(0, kept) if weights is not None else None
        return torch.stack([self.source.index_select(0, kept), local_dst]), weight


def affine_rows(terms: list[tuple[Tensor, nn.Linear]], ids: Tensor | None = None) -> Tensor:
    """The mean over ``terms`` of ``linear(features)``, for the rows ``ids`` (every row for ``None``).

    Shapes:
        terms [(features [N, d_t], Linear(d_t -> dim)), ...], ids [B] or None -> [B or N, dim]
    """
    rows = [linear(features if ids is None else features.index_select(0, ids)) for features, linear in terms]
    return rows[0] if len(rows) == 1 else torch.stack(rows).mean(0)


def affine_sources(terms: list[tuple[Tensor, nn.Linear]]) -> list[tuple[Tensor, Tensor, Tensor | None]]:
    """``affine_rows(terms)`` as the ``(features, weight, bias)`` terms the GAT layer's affine paths take."""
    if len(terms) == 1:
        return [(terms[0][0], terms[0][1].weight, terms[0][1].bias)]
    share = 1.0 / len(terms)
    return [(features, share * linear.weight, None if linear.bias is None else share * linear.bias) for features, linear in terms]


class GraphAttentionBranch(nn.Module):
    """``layers`` GAT layers over rows ``affine_rows(terms)``; in training the last layer computes only ``nodes``.

    The source rows are the mean of trainable linear maps of frozen features (one term per modality). With
    one layer and a batch of ``nodes``, the layer runs :meth:`SparseGATLayer.forward_affine`: the features
    are summed over the batch's incoming edges and mapped once per destination, so no source row is
    projected at all. Inner layers (``layers > 1``) run on the whole homogeneous graph. The graph's
    :class:`IncomingEdges` is built on the first restricted call and kept while the same, unmodified
    ``edge_index`` tensor comes back. ``edge_count`` is the number of edges into ``nodes`` when the caller has
    read it already (:meth:`IncomingEdges.count`; RecGOAT reads every graph's in one transfer from the GPU).

    Shapes:
        terms [(features [N_src, d_t], Linear(d_t -> dim)), ...]; x_dst [N_dst, dim] or None (homogeneous
        graph: the destinations' rows come from ``terms`` too); edge_index [2, E] (row 0 source, row 1
        destination); nodes [B] or None -> [B or N_dst, dim]
    """

    def __init__(self, dim: int, layers: int, heads: int, dropout: float, backend: str, share_weights: bool = True):
        super().__init__()
        self.dim, self.layers_count, self.heads = dim, layers, heads
        self.inner = (
            GATEncoder(dim, dim, dim, num_layers=layers - 1, heads=heads, attn_dropout=dropout, backend=backend)
            if layers > 1
            else None
        )
        self.last = SparseGATLayer(dim, dim, heads=heads, concat=False, attn_dropout=dropout, share_weights=share_weights, backend=backend)
        self._incoming_cache: tuple | None = None

    def reset_parameters(self) -> None:
        if self.inner is not None:
            self.inner.reset_parameters()
        self.last.reset_parameters()

    def incoming_edges(self, edge_index: Tensor, edge_weight: Tensor | None, num_dst: int) -> IncomingEdges:
        """The cached :class:`IncomingEdges` of this graph, rebuilt when the edge tensors change."""
        # identity plus the in-place version counter: the training loop passes the same graph tensors every batch
        versions = (edge_index._version, None if edge_weight is None else edge_weight._version, num_dst)
        cached = self._incoming_cache
        if cached is None or cached[0] is not edge_index or cached[1] is not edge_weight or cached[2] != versions:
            cached = self._incoming_cache = (edge_index, edge_weight, versions, IncomingEdges(edge_index, edge_weight, num_dst))
        return cached[3]

    def forward(
        self, terms: list[tuple[Tensor, nn.Linear]], x_dst: Tensor | None, edge_index: Tensor, edge_weight: Tensor | None,
        nodes: Tensor | None, num_dst: int, values: Tensor | None = None, edge_count: int | None = None,
    ) -> Tensor:
        if values is not None:
            return self._propagate(terms, x_dst, edge_index, edge_weight, nodes, num_dst, values, edge_count)
        if self.inner is not None and x_dst is None:
            hidden = self.inner(affine_rows(terms), edge_index, edge_weight)
            if nodes is None:
                return self.last(hidden, edge_index, edge_weight)
            edges, weights = self.incoming_edges(edge_index, edge_weight, num_dst).restrict(nodes, size=edge_count)
            return self.last(hidden, edges, weights, dst_rows=nodes)
        if nodes is None:
            x_src = affine_rows(terms)
            return self.last((x_src, x_src if x_dst is None else x_dst), edge_index, edge_weight)
        edges, log_weights = self.incoming_edges(edge_index, edge_weight, num_dst).restrict(nodes, log_weights=True, size=edge_count)
        dst_rows = affine_rows(terms, nodes) if x_dst is None else x_dst.index_select(0, nodes)
        return self.last.forward_affine(affine_sources(terms), dst_rows, edges, edge_log_weight=log_weights, dst_sorted=True)

    def _propagate(self, terms, x_dst, edge_index, edge_weight, nodes, num_dst, values: Tensor, edge_count: int | None = None) -> Tensor:
        """``values`` (e.g. ID embeddings of the sources) summed with the attention that ``terms`` seed."""
        if nodes is None:
            edges, log_weights = edge_index, None if edge_weight is None else log_edge_weight(edge_weight)
        else:
            edges, log_weights = self.incoming_edges(edge_index, edge_weight, num_dst).restrict(nodes, log_weights=True, size=edge_count)
        if self.inner is not None and x_dst is None:
            keys = self.inner(affine_rows(terms), edge_index, edge_weight)
            key_src, key_dst = keys, (keys if nodes is None else keys.index_select(0, nodes))
        else:
            key_src = affine_sources(terms)
            if x_dst is None:
                key_dst = affine_rows(terms, nodes)
            else:
                key_dst = x_dst if nodes is None else x_dst.index_select(0, nodes)
        return self.last.propagate_values(key_src, key_dst, values, edges, log_weights, dst_sorted=nodes is not None)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(dim={self.dim}, layers={self.layers_count}, heads={self.heads})"


class RecGOAT(Recommender):
    r"""The RecGOAT recommender; see the module docstring for the equations.

    Args (plain values, stored in checkpoints): ``modalities`` is a list of ``[name, feature_dim]`` pairs
    (empty: LightGCN with user-user attention only, if ``user_feature_dim``); ``user_feature_dim`` 0 means
    no user LM representation; ``graphs`` a subset of ``item``, ``user-item``, ``user-user``.

    Shapes:
        forward(graph, users [Bu] | None, items [Bi] | None) -> RecOutput(users [Bu or U, dim],
        items [Bi or I, dim], views {"item:<v>": [Bi, dim], "user:<v>": [Bu, dim]})
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        n_layers: int,
        modalities: list,
        user_feature_dim: int = 0,
        graphs: list | tuple = GRAPH_KINDS,
        gat_layers: int = 1,
        gat_heads: int = 1,
        gat_dropout: float = 0.1,
        cmcl: bool = True,
        lambda_cmcl: float = 0.1,
        temperature: float = 0.2,
        cmcl_rows: int = 256,
        oat: bool = True,
        lambda_oat: float = 0.1,
        ot_reg: float = 0.1,
        ot_iters: int = 100,
        ot_batch: int = 128,
        fusion: str = "oat",
        backend: str = "auto",
        gat_values: str = "lm",
        item_branch: str = "attention",
        cmcl_form: str = "views",
        cmcl_view_weight: float = 0.5,
        map_scale: float = 100.0,
        map_reg: float = 0.01,
        map_iters: int = 1000,
        map_plan: str = "sinkhorn",
        init_std: float = 0.0,
        content_score: bool = False,
    ):
        super().__init__()
        if gat_values not in GAT_VALUES:
            raise ValueError(f"gat_values must be one of {GAT_VALUES}, got {gat_values!r}")
        if item_branch not in ITEM_BRANCHES:
            raise ValueError(f"item_branch must be one of {ITEM_BRANCHES}, got {item_branch!r}")
        if cmcl_form not in CMCL_FORMS:
            raise ValueError(f"cmcl_form must be one of {CMCL_FORMS}, got {cmcl_form!r}")
        if item_branch == "reference" and gat_values != "lm":
            raise ValueError("the reference item branch passes the projected LM rows along its edges; use gat_values='lm' with it")
        if fusion == "oat-map" and not modalities:
            raise ValueError("fusion 'oat-map' maps modality views onto the ID view and needs at least one modality")
        self.gat_values, self.item_branch = gat_values, item_branch
        self.cmcl_form, self.cmcl_view_weight = cmcl_form, cmcl_view_weight
        self.fusion_mode = fusion
        #: ID embedding init: 0 is Xavier uniform (recgoat's), > 0 a normal with this std (the reference's 0.1)
        self.init_std = init_std
        unknown = set(graphs) - set(GRAPH_KINDS)
        if unknown:
            raise ValueError(f"unknown graphs {sorted(unknown)}; known: {GRAPH_KINDS}")
        self.n_users, self.n_items, self.dim, self.n_layers = n_users, n_items, dim, n_layers
        self.modalities = [(str(name), int(size)) for name, size in modalities]
        self.user_feature_dim = user_feature_dim
        self.graphs = tuple(graphs)
        self.gat_layers = gat_layers
        self.cmcl, self.lambda_cmcl, self.temperature, self.cmcl_rows = cmcl, lambda_cmcl, temperature, cmcl_rows
        self.oat, self.lambda_oat = oat, lambda_oat
        self.ot_reg, self.ot_iters, self.ot_batch = ot_reg, ot_iters, ot_batch
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        self.project = nn.ModuleDict({name: nn.Linear(size, dim) for name, size in self.modalities})
        use_gat = gat_layers > 0
        branch = (
            (lambda: ReferenceItemBranch(dim, gat_layers, gat_heads, gat_dropout, backend))
            if item_branch == "reference"
            else (lambda: GraphAttentionBranch(dim, gat_layers, gat_heads, gat_dropout, backend))
        )
        self.item_gat = nn.ModuleDict({name: branch() for name, _ in self.modalities} if use_gat and "item" in self.graphs else {})
        self.user_item_gat = (
            GraphAttentionBranch(dim, 1, gat_heads, gat_dropout, backend, share_weights=False)
            if use_gat and "user-item" in self.graphs and self.modalities
            else None
        )
        self.user_project = nn.Linear(user_feature_dim, dim) if user_feature_dim else None
        self.user_gat = (
            GraphAttentionBranch(dim, gat_layers, gat_heads, gat_dropout, backend)
            if user_feature_dim and use_gat and "user-user" in self.graphs
            else None
        )
        self.item_views = ["id"] + [name for name, _ in self.modalities]
        self.user_views = ["id"] + (["items"] if self.user_item_gat is not None else []) + (["lm"] if self.user_project is not None else [])
        # oat-map fuses the item views; the user views (the ID view alone in the reference) keep the adaptive fusion
        self.item_fusion = (
            TransportMapFusion(dim, [name for name, _ in self.modalities], map_scale, map_reg, map_iters, plan=map_plan, dropout=gat_dropout)
            if fusion == "oat-map"
            else AdaptiveFusion(dim, len(self.item_views), fusion)
        )
        self.user_fusion = AdaptiveFusion(dim, len(self.user_views), "oat" if fusion == "oat-map" else fusion)
        self.content = ContentScore([name for name, _ in self.modalities]) if content_score and self.modalities else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for table in (self.user_embedding.weight, self.item_embedding.weight):
            if self.init_std > 0:
                nn.init.normal_(table, std=self.init_std)
            else:
                nn.init.xavier_uniform_(table)
        for module in [*self.project.values(), *self.item_gat.values(), self.item_fusion, self.user_fusion]:
            module.reset_parameters()
        if self.user_item_gat is not None:
            self.user_item_gat.reset_parameters()
        if self.user_project is not None:
            self.user_project.reset_parameters()
        if self.user_gat is not None:
            self.user_gat.reset_parameters()
        if self.content is not None:
            self.content.reset_parameters()

    def forward(self, graph: dict[str, Tensor], users: Tensor | None = None, items: Tensor | None = None) -> RecOutput:
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight])
        collaborative = propagate(graph["adjacency"], ego, self.n_layers) if self.n_layers else ego
        user_id, item_id = collaborative[: self.n_users], collaborative[self.n_users :]
        # the transport map needs every item's views (its cost is a mean over all items), and the reference
        # branch computes every item anyway: then the views are computed in full and the batch's rows taken after
        all_items = self.fusion_mode == "oat-map" or (self.item_branch == "reference" and bool(self.item_gat))
        view_rows = None if all_items else items
        item_views = {"id": item_id if view_rows is None else item_id[view_rows]}
        user_views = {"id": user_id if users is None else user_id[users]}
        propagated = self.gat_values == "id"
        counts = self._batch_edge_counts(graph, users, view_rows)
        for name, _ in self.modalities:
            terms = [(graph[f"feat:{name}"], self.project[name])]
            if name in self.item_gat and self.item_branch == "reference":
                item_views[name] = self.item_gat[name](affine_rows(terms), graph[f"item_edges:{name}"])
            elif name in self.item_gat:
                item_views[name] = self.item_gat[name](
                    terms, None, graph[f"item_edges:{name}"], graph.get(f"item_weights:{name}"), view_rows, self.n_items,
                    values=item_id if propagated else None, edge_count=counts.get(f"item_edges:{name}"),
                )
            else:
                item_views[name] = affine_rows(terms, view_rows)
        if isinstance(self.item_fusion, TransportMapFusion):
            fused_items = self.item_fusion(item_views["id"], [item_views[name] for name, _ in self.modalities], items)
        if all_items and items is not None:
            item_views = {name: view.index_select(0, items) for name, view in item_views.items()}
        if not isinstance(self.item_fusion, TransportMapFusion):
            fused_items = self.item_fusion([item_views[v] for v in self.item_views])
        if self.user_item_gat is not None:
            # one attention over each user's train items, whose rows are the mean of their projected modalities
            terms = [(graph[f"feat:{name}"], self.project[name]) for name, _ in self.modalities]
            user_views["items"] = self.user_item_gat(
                terms, self.user_embedding.weight, graph["ui_edges"], None, users, self.n_users, values=item_id if propagated else None,
                edge_count=counts.get("ui_edges"),
            )
        if self.user_project is not None:
            terms = [(graph["user_feat"], self.user_project)]
            if self.user_gat is not None:
                user_views["lm"] = self.user_gat(
                    terms, None, graph["user_edges"], graph.get("user_weights"), users, self.n_users, values=user_id if propagated else None,
                    edge_count=counts.get("user_edges"),
                )
            else:
                user_views["lm"] = affine_rows(terms, users)
        fused_users = self.user_fusion([user_views[v] for v in self.user_views])
        views = {f"item:{k}": v for k, v in item_views.items()} | {f"user:{k}": v for k, v in user_views.items()}
        if propagated:
            # the fused views live in the ID space; what CMCL and OAT align to the ID view is each modality's own
            # projected LM rows (the multimodal representation), so the alignment is never ID against ID
            views = {f"{key}:graph" if key not in ("item:id", "user:id") else key: v for key, v in views.items()}
            for name, _ in self.modalities:
                views[f"item:{name}"] = affine_rows([(graph[f"feat:{name}"], self.project[name])], items)
            if self.user_project is not None:
                views["user:lm"] = affine_rows([(graph["user_feat"], self.user_project)], users)
        if self.content is not None:
            fused_users, fused_items = self.content.extend(graph, users, items, fused_users, fused_items)
        return RecOutput(fused_users, fused_items, views)

    def positive_offset(self, graph: dict[str, Tensor], users: Tensor, positives: Tensor) -> Tensor | None:
        return None if self.content is None else self.content.positive_offset(graph, users, positives)

    def _batch_edge_counts(self, graph: dict[str, Tensor], users: Tensor | None, items: Tensor | None) -> dict[str, int]:
        """How many edges each graph that the batch restricts keeps, read from the device in one transfer.

        Each count sets the size of that graph's batch tensors, so the host must know it; reading them one by
        one would wait for a GPU once per graph.
        """
        pending: dict[str, Tensor] = {}
        if items is not None and self.item_branch == "attention":
            for name, _ in self.modalities:
                if name in self.item_gat:
                    edges = graph[f"item_edges:{name}"]
                    incoming = self.item_gat[name].incoming_edges(edges, graph.get(f"item_weights:{name}"), self.n_items)
                    pending[f"item_edges:{name}"] = incoming.count(items)
        if users is not None and self.user_item_gat is not None:
            pending["ui_edges"] = self.user_item_gat.incoming_edges(graph["ui_edges"], None, self.n_users).count(users)
        if users is not None and self.user_gat is not None:
            pending["user_edges"] = self.user_gat.incoming_edges(graph["user_edges"], graph.get("user_weights"), self.n_users).count(users)
        if not pending:
            return {}
        return dict(zip(pending, torch.stack(list(pending.values())).tolist()))

    def auxiliary_losses(
        self, out: RecOutput, users: Tensor, items: Tensor, triples: tuple[Tensor, Tensor, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """CMCL and OAT on the batch rows of ``out`` (``users``/``items`` index those rows).

        ``triples`` (rows of ``out`` for each BPR triple's user, positive and negative item) feed the reference
        composition of CMCL (``cmcl_form="reference"``, :func:`~recgoat_cli.model.cmcl.reference_cmcl`), which
        follows the reference code: no stop-gradient on the ID view, the user-item term on the fused items.

        The ID view is the fixed target of both (stop-gradient, as BM3 does): the other views move towards the
        collaborative space, and the ID embeddings learn from BPR alone. Without it the alignment's gradient,
        scale-free through the cosine and the normalised cost, swamps BPR's on the small ID embeddings and
        training stalls at ln 2: measured on TikTok with ``gat_values="id"``, and on ml-100k with ``"lm"`` and
        no user-user graph.
        """
        terms: dict[str, Tensor] = {}
        modal = [name for name, _ in self.modalities]

        def id_view(side: str) -> Tensor:
            return out.views[f"{side}:id"].detach()

        if self.cmcl and self.lambda_cmcl > 0 and self.cmcl_form == "reference":
            if triples is None:
                raise ValueError("the reference CMCL needs the batch's triples")
            # cmcl_rows of the batch's triples, each InfoNCE over them (the reference takes the whole batch: B^2 logits
            # per term, 7 terms with two modalities, which alone costs several LightGCN steps on a CPU)
            sample = torch.randperm(triples[0].numel(), device=triples[0].device)[: self.cmcl_rows]
            user_rows, pos_rows, neg_rows = (rows.index_select(0, sample) for rows in triples)
            item_views = [out.views["item:id"]] + [out.views[f"item:{m}"] for m in modal]
            terms["cmcl"] = self.lambda_cmcl * reference_cmcl(
                out.users.index_select(0, user_rows), out.items.index_select(0, pos_rows),
                [v.index_select(0, pos_rows) for v in item_views], [v.index_select(0, neg_rows) for v in item_views],
                self.temperature, self.cmcl_view_weight,
            )
        elif self.cmcl and self.lambda_cmcl > 0:
            cmcl_users = users[torch.randperm(users.numel(), device=users.device)[: self.cmcl_rows]]
            cmcl_items = items[torch.randperm(items.numel(), device=items.device)[: self.cmcl_rows]]
            # every (ID view, other view) pair of one side is one batched problem [pairs, rows, dim]
            losses = []
            user_others = [v for v in self.user_views[1:] if f"user:{v}" in out.views]
            for side, rows, others in (("item", cmcl_items, modal), ("user", cmcl_users, user_others)):
                if others:
                    anchor = id_view(side).index_select(0, rows)
                    positive = torch.stack([out.views[f"{side}:{v}"].index_select(0, rows) for v in others])
                    losses.append(info_nce(anchor.expand_as(positive), positive, self.temperature))
            if losses:
                terms["cmcl"] = self.lambda_cmcl * torch.cat(losses).mean()
        if self.oat and self.lambda_oat > 0 and modal:
            sample = items[torch.randperm(items.numel(), device=items.device)[: self.ot_batch]]
            ids = id_view("item")[sample]
            costs = [
                wasserstein_cost(out.views[f"item:{m}"][sample], ids, reg=self.ot_reg, n_iter_max=self.ot_iters, tol=OT_TOLERANCE, grad="envelope")
                for m in modal
            ]
            terms["oat"] = self.lambda_oat * torch.stack(costs).mean()
        return terms

    def fusion_weights(self) -> dict[str, dict[str, float]]:
        """The learned view weights of the item and user fusion (``oat`` and ``sum`` modes)."""
        weights = {}
        for side, fusion, names in (("item", self.item_fusion, self.item_views), ("user", self.user_fusion, self.user_views)):
            w = fusion.weights()
            if w is not None:
                weights[side] = {n: float(x) for n, x in zip(names, w.detach().cpu())}
        if self.content is not None:
            weights["content"] = self.content.weights()
        return weights

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(n_users={self.n_users}, n_items={self.n_items}, dim={self.dim}, "
            f"n_layers={self.n_layers}, modalities={self.modalities}, user_feature_dim={self.user_feature_dim}, "
            f"graphs={self.graphs})"
        )
