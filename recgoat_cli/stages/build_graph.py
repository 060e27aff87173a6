"""``recgoat build-graph``: the graphs every model propagates over, from the train split only.

Files of the artifact (all ``.npz`` without pickled objects):
- ``user_item.npz``: the deduplicated train edges (``users``, ``items``) and the symmetric-normalised
  bipartite adjacency over ``U + I`` nodes (``rows``, ``cols``, ``values``, ``shape``);
- ``item_knn_<modality>.npz``: one cosine kNN item-item graph per modality of the embed artifact;
- ``user_user.npz``: the user-user kNN graph (LM representations and/or co-interaction).
"""

from __future__ import annotations

import numpy as np

from recgoat_cli.artifacts.manifest import compute_artifact_id
from recgoat_cli.artifacts.store import Artifact, write_manifest
from recgoat_cli.config import GraphConfig
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


def load_coo(path):
    """A saved graph as a coalesced torch sparse COO tensor."""
    import torch

    with np.load(path, allow_pickle=False) as data:
        indices = torch.from_numpy(np.stack([data["rows"], data["cols"]]))
        values = torch.from_numpy(data["values"])
        shape = tuple(int(s) for s in data["shape"])
    return torch.sparse_coo_tensor(indices, values, shape).coalesce()


def load_train_edges(artifact: Artifact) -> tuple[np.ndarray, np.ndarray]:
    with np.load(artifact.file("user_item.npz"), allow_pickle=False) as data:
        return data["users"].copy(), data["items"].copy()


def run_build_graph(ctx: StageContext, config: GraphConfig, embed: Artifact | None = None) -> tuple[Artifact, bool]:
    """Build (or find cached) the graph artifact; returns it and whether it came from the cache."""
    from recgoat_cli.graphs.stats import graph_stats
    from recgoat_cli.graphs.user_item import normalized_bipartite_adjacency, user_item_edges

    dataset = ctx.dataset
    upstream = [embed] if embed is not None else []
    artifact_id = compute_artifact_id(STAGE, config.semantic_dump(), [a.id for a in upstream], dataset.input_hashes())
    if not ctx.force and (cached := ctx.store.find_cached(STAGE, artifact_id)) is not None:
        ctx.store.set_latest(STAGE, artifact_id)
        return cached, True

    train_users, train_items = dataset.split("train")
    with ctx.store.writer(STAGE, artifact_id, force=ctx.force) as out:
        users, items = user_item_edges(train_users, train_items, dataset.n_users, dataset.n_items)
        adjacency = normalized_bipartite_adjacency(users, items, dataset.n_users, dataset.n_items).coalesce()
        indices = adjacency.indices().numpy()
        n_nodes = dataset.n_users + dataset.n_items
        save_coo(out / "user_item.npz", indices[0], indices[1], adjacency.values().numpy(), (n_nodes, n_nodes), users=users, items=items)
        stats = {"user_item": graph_stats(indices[0], indices[1], n_nodes)}
        write_manifest(
            out,
            stage=STAGE,
            artifact_id=artifact_id,
            dataset=ctx.key,
            config=config.model_dump(),
            upstream=upstream,
            inputs=dataset.input_hashes(),
            summary={"dataset": dataset.summary(), "graphs": stats},
        )
    return ctx.store.get(STAGE, artifact_id), False


def upstream_embed(ctx: StageContext, artifact_id: str | None) -> Artifact | None:
    """The embed artifact to build from: the named one, else the latest when there is one, else none (IDs only)."""
    if artifact_id is not None or ctx.store.latest_id("embed") is not None:
        return ctx.store.get("embed", artifact_id)
    return None
