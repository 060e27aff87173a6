"""Edge softmax and edge-to-node aggregation, the two kernels a sparse GAT needs.

Two interchangeable backends compute the same thing:

* ``"native"``: plain PyTorch (``scatter_reduce`` for the per-node max, ``index_add_`` for sums);
  always available.
* ``"torch_scatter"``: ``torch_scatter.scatter_softmax`` / ``scatter_add`` from the optional extra
  ``kernels`` (package ``torch-scatter``); used only when it imports.

``backend="auto"`` picks ``torch_scatter`` when it is importable and ``native`` otherwise. Both give the
same values and gradients up to float rounding (tested to 1e-5).

Math, for edges ``e = (j -> i)`` grouped by their destination ``i = index[e]``::

    segment_softmax(s)[e] = exp(s[e] - m_i) / sum_{e' : index[e'] = i} exp(s[e'] - m_i),
    m_i = max_{e' : index[e'] = i} s[e']

Subtracting the per-destination maximum ``m_i`` keeps ``exp`` from overflowing; the maximum is
detached because softmax is invariant to a per-group shift, so no gradient is lost and the ``amax``
backward (ill-defined on ties) is never needed. Every denominator is at least 1 (the maximal edge
contributes ``exp(0)``), so no epsilon is added. Nodes with no incoming edge receive nothing.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from recgoat_cli.errors import UserError

BACKENDS = ("auto", "native", "torch_scatter")


@lru_cache(maxsize=1)
def _torch_scatter_importable() -> bool:
    try:
        import torch_scatter  # noqa: F401
    except (ImportError, OSError):
        # OSError: a torch-scatter wheel built against another torch fails to load its shared library.
        return False
    return True


def available_backends() -> list[str]:
    """Names of the backends usable in this environment (``"native"`` always comes first)."""
    return ["native", "torch_scatter"] if _torch_scatter_importable() else ["native"]


def resolve_backend(backend: str) -> str:
    """Turn ``"auto"`` into a concrete backend and check that a requested one is installed."""
    if backend not in BACKENDS:
        raise UserError(f"Unknown scatter backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    if backend == "auto":
        return "torch_scatter" if _torch_scatter_importable() else "native"
    if backend == "torch_scatter" and not _torch_scatter_importable():
        raise UserError(
            "Scatter backend 'torch_scatter' was requested but torch-scatter is not installed; "
            "install the optional extra 'kernels' (package torch-scatter) or use backend 'native'."
        )
    return backend


def _expand_index(index: Tensor, like: Tensor) -> Tensor:
    """Broadcast an edge index ``[E]`` to the shape of ``like`` ``[E, ...]`` (a view, no copy)."""
    return index.view(-1, *([1] * (like.dim() - 1))).expand_as(like)


def scatter_sum(src: Tensor, index: Tensor, num_nodes: int, backend: str = "auto") -> Tensor:
    """Sum edge rows into their destination node: ``out[i] = sum_{e : index[e] = i} src[e]``.

    Shapes:
        src: ``[E, *]``; index: ``[E]`` (int64, values in ``[0, num_nodes)``);
        returns ``[num_nodes, *]`` (zeros for nodes that no edge points to).
    """
    if resolve_backend(backend) == "torch_scatter":
        import torch_scatter

        return torch_scatter.scatter_add(src, index, dim=0, dim_size=num_nodes)
    out = src.new_zeros((num_nodes, *src.shape[1:]))
    return out.index_add_(0, index, src)


def segment_softmax(scores: Tensor, index: Tensor, num_nodes: int, backend: str = "auto") -> Tensor:
    """Softmax of edge scores over the edges that share a destination node (see the module docstring).

    Shapes:
        scores: ``[E, H]`` (or ``[E]``); index: ``[E]``; returns the same shape as ``scores``,
        and for every destination node the returned values of its edges sum to 1 (per head).
    """
    if resolve_backend(backend) == "torch_scatter":
        import torch_scatter

        return torch_scatter.scatter_softmax(scores, index, dim=0, dim_size=num_nodes)
    expanded = _expand_index(index, scores)
    node_max = scores.new_full((num_nodes, *scores.shape[1:]), float("-inf"))
    node_max = node_max.scatter_reduce(0, expanded, scores.detach(), reduce="amax", include_self=True)
    exp_scores = (scores - node_max[index]).exp()
    denominator = scatter_sum(exp_scores, index, num_nodes, backend="native")
    return exp_scores / denominator[index]
