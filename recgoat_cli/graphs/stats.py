"""Summary numbers of a sparse graph, for manifests and ``show``. Pure function, no I/O."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["graph_stats"]


def _as_int64(a: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a).astype(np.int64, copy=False).ravel()


def graph_stats(
    rows: torch.Tensor | np.ndarray,
    cols: torch.Tensor | np.ndarray,
    n_nodes: int,
) -> dict[str, int | float | bool]:
    """Counts and degree summary of the graph with edges ``rows[e] -> cols[e]`` over ``n_nodes`` nodes.

    Repeated ``(row, col)`` pairs count once. Definitions:

    - ``edges``: distinct stored pairs (a symmetric graph stores each undirected edge twice);
      ``self_loops``: pairs with ``row == col``, included in ``edges`` and in the degrees.
    - ``degree_*``: over all nodes (zero-degree ones included) of the out-degree, the number of distinct
      pairs a node starts; for a symmetric graph this is the number of neighbours.
    - ``isolated_nodes``: nodes in no pair with another node (a lone self-loop leaves a node isolated).
    - ``symmetric``: the set of pairs equals the set of reversed pairs (structure only, not weights).

    For a bipartite user-item graph, pass item nodes shifted by the number of users.

    Shapes:
        - rows, cols: ``[E]`` int, values in ``[0, n_nodes)``

    Returns:
        A JSON-serialisable dict with keys ``nodes``, ``edges``, ``self_loops``, ``degree_min``,
        ``degree_median``, ``degree_max``, ``degree_mean``, ``isolated_nodes``, ``symmetric``.
    """
    sources = _as_int64(rows)
    targets = _as_int64(cols)
    if sources.shape != targets.shape:
        raise ValueError(f"rows and cols differ in length: {sources.size} vs {targets.size}")
    if sources.size and (min(sources.min(), targets.min()) < 0 or max(sources.max(), targets.max()) >= n_nodes):
        raise ValueError(f"node ids must lie in [0, {n_nodes})")
    keys = np.unique(sources * np.int64(n_nodes) + targets)
    sources, targets = np.divmod(keys, np.int64(max(n_nodes, 1)))
    reversed_keys = np.sort(targets * np.int64(n_nodes) + sources)
    degree = np.bincount(sources, minlength=n_nodes)
    not_loop = sources != targets
    connected = np.zeros(n_nodes, dtype=bool)
    connected[sources[not_loop]] = True
    connected[targets[not_loop]] = True
    has_nodes = n_nodes > 0
    return {
        "nodes": int(n_nodes),
        "edges": int(keys.size),
        "self_loops": int(np.count_nonzero(~not_loop)),
        "degree_min": int(degree.min()) if has_nodes else 0,
        "degree_median": float(np.median(degree)) if has_nodes else 0.0,
        "degree_max": int(degree.max()) if has_nodes else 0,
        "degree_mean": float(degree.mean()) if has_nodes else 0.0,
        "isolated_nodes": int(n_nodes - np.count_nonzero(connected)),
        "symmetric": bool(np.array_equal(keys, reversed_keys)),
    }
