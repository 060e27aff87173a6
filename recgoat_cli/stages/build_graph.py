"""``recgoat build-graph``: the graphs every model propagates over, from the train split only.

Files of the artifact (all ``.npz`` without pickled objects):
- ``user_item.npz``: the deduplicated train edges (``users``, ``items``) and the symmetric-normalised
  bipartite adjacency over ``U + I`` nodes (``rows``, ``cols``, ``values``, ``shape``);
- ``item_knn_<modality>.npz``: one cosine kNN item-item graph per modality of the embed artifact;
- ``user_user.npz``: the user-user kNN graph (LM representations and/or co-interaction of train items).

Item-item and user-user graphs are symmetrised cosine kNN graphs with ``--normalize`` weights; the
similarities are computed blockwise (``--memory-budget``), never as a dense N x N matrix.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from recgoat_cli.artifacts.manifest import compute_artifact_id
from recgoat_cli.artifacts.store import Artifact, write_manifest
from recgoat_cli.config import GraphConfig
from recgoat_cli.errors import UserError
from recgoat_cli.limits import check_graphs
from recgoat_cli.stages.common import StageContext

STAGE = "build-graph"


def save_coo(path, rows, cols, values, shape, **extra) -> None:
    np.savez(
        path,
        rows=np.asarray(rows, dtype=np.int64),
        cols=np.asarray(cols, dtype=np.int64),
        values=np.asarray(values, dtype=np.float32),
        shape=np.asarray(shape, dtype=np.int64),
        **extra,
    )


def load_sparse(path, layout: str = "csr"):
    """A saved graph as a torch sparse tensor (CSR: fastest products on CPU; or coalesced COO)."""
    import torch

    with np.load(path, allow_pickle=False) as data:
        indices = torch.from_numpy(np.stack([data["rows"], data["cols"]]))
        values = torch.from_numpy(data["values"])
        shape = tuple(int(s) for s in data["shape"])
    coo = torch.sparse_coo_tensor(indices, values, shape, check_invariants=True).coalesce()
    if layout != "csr":
        return coo
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return coo.to_sparse_csr()


def load_train_edges(artifact: Artifact) -> tuple[np.ndarray, np.ndarray]:
    with np.load(artifact.file("user_item.npz"), allow_pickle=False) as data:
        return data["users"].copy(), data["items"].copy()


def neighbour_count_sentence(error, flag: str) -> str:
    """The user-facing sentence for a ``NeighbourCountError`` of the graph code, naming the flag ``k`` came from."""
    k, n, entity, limit = error.k, error.n, error.entity, error.limit
    if k < 1:
        return f"{flag} {k} must be at least 1; pass a positive number of neighbours."
    if limit < 1:
        return f"{flag} {k} asks for neighbours among {n} {entity}; a neighbour graph needs at least 2."
    if error.exclude_self:
        return f"{flag} {k} must be smaller than the number of {entity} {n}; pass {flag} {limit} or less."
    return f"{flag} {k} must be at most the number of {entity} {n}; pass {flag} {limit} or less."


@contextmanager
def neighbour_count_from(flag: str) -> Iterator[None]:
    """Turn the graph code's ``NeighbourCountError`` into a ``UserError`` that names ``flag``."""
    from recgoat_cli.graphs.item_knn import NeighbourCountError

    try:
        yield
    except NeighbourCountError as error:
        raise UserError(neighbour_count_sentence(error, flag)) from None


def knn_from_features(features, k, n, config: GraphConfig, budget: int, entity: str, flag: str, log):
    """Cosine top-k rows (blockwise, never N x N), symmetrised and normalised as the config says.

    ``k`` was checked against ``n`` (``limits.check_graphs``) before the stage began to write.
    """
    from recgoat_cli.graphs.item_knn import blockwise_topk_cosine, knn_graph

    with neighbour_count_from(flag):
        indices, values = blockwise_topk_cosine(features, k, memory_budget_bytes=budget, entity=entity)
    return knn_graph(indices, values, n, symmetrize=config.symmetrize, self_loops=config.self_loops, normalize=config.normalize)


def user_user_graph(config: GraphConfig, dataset, users, items, user_features, budget: int, log):
    """The user-user graph the config asks for, or None (no graph, or no LM representations to build it)."""
    from recgoat_cli.graphs.item_knn import knn_graph
    from recgoat_cli.graphs.user_user import user_knn_from_co_interaction

    if config.user_graph == "none":
        return None
    k, n = config.user_knn_k, dataset.n_users
    parts = []
    if config.user_graph in ("embedding", "both"):
        if user_features is None:
            if config.user_graph == "embedding":
                return None
            raise UserError("--user-graph both needs an embed artifact for the user LM representations; run `recgoat embed` first.")
        parts.append(knn_from_features(user_features, k, n, config, budget, "users", "--user-knn-k", log))
    if config.user_graph in ("co-interaction", "both"):
        with neighbour_count_from("--user-knn-k"):
            indices, values = user_knn_from_co_interaction(users, items, n, dataset.n_items, k, measure=config.co_measure, memory_budget_bytes=budget)
        parts.append(knn_graph(indices, values, n, symmetrize=config.symmetrize, self_loops=config.self_loops, normalize=config.normalize))
    if len(parts) == 1:
        return parts[0]
    import scipy.sparse as sp

    union = sp.coo_matrix((parts[0][2], (parts[0][0], parts[0][1])), shape=(n, n)).tocsr()
    union = union.maximum(sp.coo_matrix((parts[1][2], (parts[1][0], parts[1][1])), shape=(n, n)).tocsr()).tocoo()
    order = np.lexsort((union.col, union.row))
    return union.row[order].astype(np.int64), union.col[order].astype(np.int64), union.data[order].astype(np.float32)


def run_build_graph(ctx: StageContext, config: GraphConfig, embed: Artifact | None = None, *, log=lambda message: None) -> tuple[Artifact, bool]:
    """Build (or find cached) the graph artifact; returns it and whether it came from the cache."""
    from recgoat_cli.graphs.stats import graph_stats
    from recgoat_cli.graphs.user_item import normalized_bipartite_adjacency, user_item_edges

    dataset = ctx.dataset
    upstream = [embed] if embed is not None else []
    artifact_id = compute_artifact_id(STAGE, config.semantic_dump(), [a.id for a in upstream], dataset.input_hashes())
    if (cached := ctx.cached(STAGE, artifact_id)) is not None:
        return cached, True

    check_graphs(config, dataset.n_users, dataset.n_items, embed is not None)  # before the stage folder exists
    train_users, train_items = dataset.split("train")
    budget = config.memory_budget_mb * 1024 * 1024

    def write(out) -> None:
        users, items = user_item_edges(train_users, train_items, dataset.n_users, dataset.n_items)
        adjacency = normalized_bipartite_adjacency(users, items, dataset.n_users, dataset.n_items).coalesce()
        indices = adjacency.indices().numpy()
        n_nodes = dataset.n_users + dataset.n_items
        save_coo(out / "user_item.npz", indices[0], indices[1], adjacency.values().numpy(), (n_nodes, n_nodes), users=users, items=items)
        stats = {"user_item": graph_stats(indices[0], indices[1], n_nodes)}
        choices: dict[str, str] = {}
        if embed is not None:
            from recgoat_cli.stages.embed import load_modalities

            item_features, user_features = load_modalities(embed)
            for name, features in item_features.items():
                rows, cols, weights = knn_from_features(features, config.knn_k, dataset.n_items, config, budget, "items", "--knn-k", log)
                save_coo(out / f"item_knn_{name}.npz", rows, cols, weights, (dataset.n_items, dataset.n_items))
                stats[f"item_knn_{name}"] = graph_stats(rows, cols, dataset.n_items)
        else:
            user_features = None
        user_graph = user_user_graph(config, dataset, users, items, user_features, budget, log)
        if user_graph is None:
            choices["user_user"] = "none" if config.user_graph == "none" else "skipped: no embed artifact for user LM representations"
        else:
            rows, cols, weights = user_graph
            save_coo(out / "user_user.npz", rows, cols, weights, (dataset.n_users, dataset.n_users))
            stats["user_user"] = graph_stats(rows, cols, dataset.n_users)
            choices["user_user"] = config.user_graph
        memory = {"budget_bytes": budget}
        if embed is not None:
            from recgoat_cli.graphs.item_knn import tile_side_for_budget

            memory["item_knn_tile_side"] = tile_side_for_budget(dataset.n_items, budget)
        write_manifest(
            out,
            stage=STAGE,
            artifact_id=artifact_id,
            dataset=ctx.key,
            config=config.model_dump(),
            upstream=upstream,
            inputs=dataset.input_hashes(),
            summary={"dataset": dataset.summary(), "graphs": stats, "choices": choices, "memory": memory},
        )

    return ctx.publish(STAGE, artifact_id, write), False


def upstream_embed(ctx: StageContext, artifact_id: str | None) -> Artifact | None:
    """The embed artifact to build from: the named one, else the latest when there is one, else none (IDs only)."""
    if artifact_id is not None or ctx.store.latest_id("embed") is not None:
        return ctx.store.get("embed", artifact_id)
    return None
