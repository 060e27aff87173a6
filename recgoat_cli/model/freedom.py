r"""FREEDOM (Zhou and Shen, 2023, "A Tale of Two Graphs: Freezing and Denoising Graph Structures for
Multimodal Recommendation"), as the MMRec toolbox's ``FREEDOM`` computes it.

Two graphs:

* a **frozen item-item graph** built once from the raw modality features: for each modality :math:`m`, the
  :math:`k` most cosine-similar items of every item (the item itself included, as a dense ``topk`` of the
  similarity matrix finds it), binary, normalised :math:`S_m = D^{-1/2} A_m D^{-1/2}` with :math:`D` the row
  sums (:math:`k` for every row, so every entry is :math:`1/k`), then mixed :math:`S = \sum_m w_m S_m`
  (``modality_mix_weights``);
* a **degree-sensitively pruned user-item graph**, resampled every epoch (``start_epoch``): of the :math:`E`
  train edges, :math:`\lfloor E (1 - p) \rfloor` are kept, drawn without replacement with probability
  proportional to :math:`1 / \sqrt{d_u d_i}` (``degree_sensitive_probabilities``), and the kept graph is
  normalised again by its own degrees. Ranking (``eval()``) uses the full normalised graph.

Representations: LightGCN's layer mean over the (pruned) user-item graph gives :math:`e_u` and :math:`e_i`;
the item's final row adds the item ID embeddings propagated over the frozen item graph,
:math:`\hat e_i = e_i + (S^{L_{mm}} E^{item})_i`; scores are :math:`e_u^\top \hat e_i`.

Loss (besides the shared BPR on those scores): for each modality, BPR of the user rows against a linear
projection of the item's feature row, :math:`\lambda \sum_m \mathrm{BPR}(e_u^\top W_m x^m_{i^+}, e_u^\top W_m
x^m_{i^-})` (MMRec's ``reg_weight``). MMRec trains the feature tables themselves too (``from_pretrained(...,
freeze=False)``); here each table is the frozen input row plus a learned offset initialised at zero, which
Adam (no weight decay) updates exactly as it would the table. The frozen graph is built from the input rows.
"""

from __future__ import annotations

import torch
from torch import nn

from recgoat_cli.model.base import RecOutput, Recommender, select_rows
from recgoat_cli.model.bpr import bpr_loss
from recgoat_cli.model.lightgcn import propagate

#: modality names that take ``image_weight`` of the item graph mixture (MMRec's ``mm_image_weight``)
IMAGE_MODALITIES = ("image", "visual", "v_feat")


def modality_mix_weights(names: list[str], image_weight: float) -> list[float]:
    """Weights of the modality graphs in the frozen mixture, summing to 1.

    One modality: weight 1. Several: the image modalities (``IMAGE_MODALITIES``) share ``image_weight``
    and the others share the rest equally (text alone: MMRec's ``0.1 * image + 0.9 * text``); when none or
    all of them are images, every modality gets the same weight.
    """
    images = [name in IMAGE_MODALITIES for name in names]
    n_images = sum(images)
    if len(names) == 1 or n_images in (0, len(names)):
        return [1.0 / len(names)] * len(names)
    return [image_weight / n_images if image else (1.0 - image_weight) / (len(names) - n_images) for image in images]


def knn_item_graph(features: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""FREEDOM's graph of one modality: each item's ``k`` most cosine-similar items (itself included), binary,
    normalised by the row sums on both sides, :math:`D^{-1/2} A D^{-1/2}`.

    Computed tile by tile (``blockwise_topk_cosine``), never as an ``N x N`` matrix.

    Shapes:
        features: [N, d] -> indices [2, N k] (row, column), values [N k]
    """
    from recgoat_cli.graphs.item_knn import blockwise_topk_cosine

    n = features.shape[0]
    neighbours, _ = blockwise_topk_cosine(features.float(), k, exclude_self=False)
    rows = torch.arange(n).repeat_interleave(k)
    cols = neighbours.reshape(-1).cpu()
    row_sums = torch.bincount(rows, minlength=n).double()
    inv_sqrt = row_sums.clamp(min=1e-7).pow(-0.5)
    return torch.stack([rows, cols]), (inv_sqrt[rows] * inv_sqrt[cols]).float()


def frozen_item_graph(features: list[torch.Tensor], weights: list[float], k: int) -> torch.Tensor:
    r""":math:`S = \sum_m w_m D_m^{-1/2} A_m D_m^{-1/2}` over the modalities' kNN graphs, a coalesced sparse tensor.

    Shapes:
        features: M tensors [N, d_m]; weights: M floats -> sparse [N, N]
    """
    n = features[0].shape[0]
    parts = [knn_item_graph(x, k) for x in features]
    indices = torch.cat([i for i, _ in parts], dim=1)
    values = torch.cat([v * w for (_, v), w in zip(parts, weights)])
    return torch.sparse_coo_tensor(indices, values, (n, n), check_invariants=False).coalesce()


def degree_sensitive_probabilities(users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int) -> torch.Tensor:
    r""":math:`1 / \sqrt{d_u d_i}` for every train edge :math:`(u, i)`, with the degrees of the full train graph.

    Shapes:
        users, items: [E] int64 (unique pairs) -> [E] float32
    """
    user_degree = torch.bincount(users, minlength=n_users).double()
    item_degree = torch.bincount(items, minlength=n_items).double()
    return (user_degree[users] * item_degree[items]).rsqrt().float()


def sample_kept_edges(probabilities: torch.Tensor, dropout: float, generator: torch.Generator) -> torch.Tensor:
    r"""Positions of the :math:`\lfloor E (1 - p) \rfloor` edges kept, drawn without replacement with
    probability proportional to ``probabilities``.

    Shapes:
        probabilities: [E] -> [floor(E (1 - dropout))] int64
    """
    n_keep = int(probabilities.numel() * (1.0 - dropout))
    if n_keep == 0:
        return torch.zeros(0, dtype=torch.int64)
    return torch.multinomial(probabilities, n_keep, replacement=False, generator=generator)


class Freedom(Recommender):
    r"""FREEDOM over a user-item graph and a frozen item-item graph (see the module docstring).

    Args:
        n_layers: LightGCN layers over the user-item graph (MMRec's ``n_ui_layers``, 2 there)
        mm_layers: propagation steps over the frozen item graph (``n_mm_layers``, 1)
        modalities: ``[name, feature width]`` of each modality, in the order of the graph's ``feat:<name>``
        dropout: share of the user-item edges dropped each epoch (MMRec's ``dropout``, 0.8)
        modality_weight: weight of the modality BPR terms (MMRec's ``reg_weight``)

    Shapes:
        forward(graph) reads graph["adjacency"] (sparse [U+I, U+I], symmetric normalised), graph["item_item"]
        (sparse [I, I]) and, for the modality losses, graph["feat:<name>"] ([I, d_m]); ``start_epoch`` reads
        graph["ui_pairs"] ([2, E] int64 users, items). -> RecOutput(users [U, dim], items [I, dim],
        views {"modality:<name>": [items, dim]} while training)
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        n_layers: int,
        modalities: list[list],
        mm_layers: int = 1,
        dropout: float = 0.8,
        modality_weight: float = 1e-4,
    ):
        super().__init__()
        self.n_users, self.n_items, self.dim, self.n_layers, self.mm_layers = n_users, n_items, dim, n_layers, mm_layers
        self.modalities = [(str(name), int(width)) for name, width in modalities]
        self.dropout, self.modality_weight = dropout, modality_weight
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        # without modality losses the projections would be parameters no step uses (DDP refuses those)
        trained_modalities = self.modalities if modality_weight > 0 else []
        self.projections = nn.ModuleDict({name: nn.Linear(width, dim) for name, width in trained_modalities})
        self.feature_offsets = nn.ParameterDict({name: nn.Parameter(torch.zeros(n_items, width)) for name, width in trained_modalities})
        self.train_adjacency: torch.Tensor | None = None  # this epoch's pruned graph; None: the full one
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        for projection in self.projections.values():
            projection.reset_parameters()
        for offset in self.feature_offsets.values():
            nn.init.zeros_(offset)
        self.train_adjacency = None

    @torch.no_grad()
    def start_epoch(self, graph: dict[str, torch.Tensor], generator: torch.Generator) -> None:
        """Draw this epoch's degree-sensitively pruned user-item graph (used while ``training``)."""
        if self.dropout <= 0:
            self.train_adjacency = None
            return
        from recgoat_cli.graphs.user_item import normalized_bipartite_adjacency

        users, items = graph["ui_pairs"].cpu()
        keep = sample_kept_edges(degree_sensitive_probabilities(users, items, self.n_users, self.n_items), self.dropout, generator)
        adjacency = normalized_bipartite_adjacency(users[keep].numpy(), items[keep].numpy(), self.n_users, self.n_items, layout="csr")
        self.train_adjacency = adjacency.to(graph["adjacency"].device)

    def forward(self, graph: dict[str, torch.Tensor], users: torch.Tensor | None = None, items: torch.Tensor | None = None) -> RecOutput:
        adjacency = self.train_adjacency if self.training and self.train_adjacency is not None else graph["adjacency"]
        ego = torch.cat([self.user_embedding.weight, self.item_embedding.weight])
        out = propagate(adjacency, ego, self.n_layers)
        item_graph_rows = self.item_embedding.weight
        for _ in range(self.mm_layers):
            item_graph_rows = torch.sparse.mm(graph["item_item"], item_graph_rows)
        item_rows = out[self.n_users :] + item_graph_rows
        views = {}
        if self.training and self.modality_weight > 0:
            for name, _ in self.modalities:
                features = select_rows(graph[f"feat:{name}"], items) + select_rows(self.feature_offsets[name], items)
                views[f"modality:{name}"] = self.projections[name](features)
        return RecOutput(select_rows(out[: self.n_users], users), select_rows(item_rows, items), views)

    def pairwise_losses(self, out: RecOutput, user_rows: torch.Tensor, positive_rows: torch.Tensor, negative_rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """``modality_weight`` times each modality's BPR of the batch's user rows against its projected features."""
        losses = {}
        user_vectors = out.users[user_rows]
        for name, _ in self.modalities:
            view = out.views.get(f"modality:{name}")
            if view is not None:
                positive = (user_vectors * view[positive_rows]).sum(-1)
                negative = (user_vectors * view[negative_rows]).sum(-1)
                losses[f"bpr_{name}"] = self.modality_weight * bpr_loss(positive, negative)
        return losses

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(n_users={self.n_users}, n_items={self.n_items}, dim={self.dim}, n_layers={self.n_layers}, "
            f"mm_layers={self.mm_layers}, modalities={self.modalities}, dropout={self.dropout}, modality_weight={self.modality_weight})"
        )
