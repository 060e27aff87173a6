"""Edge softmax and edge-to-node aggregation, the two kernels a sparse GAT needs.

The weighted aggregation :func:`edge_weighted_sum` runs as sparse-matrix products over an
:class:`EdgeLayout` (the edge list grouped by destination and by source) and never builds the
``[E, heads, width]`` message tensor; see its docstring. For the softmax and the plain sums, two
interchangeable backends compute the same thing:

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
from typing import NamedTuple

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
    # index_select: the same gather as ``node_max[index]``, several times faster on a CPU
    exp_scores = (scores - node_max.index_select(0, index)).exp()
    denominator = scatter_sum(exp_scores, index, num_nodes, backend="native")
    return exp_scores / denominator.index_select(0, index)


class EdgeLayout(NamedTuple):
    """An edge list grouped by destination, plus the sparse matrices that :func:`edge_weighted_sum` multiplies.

    Edges are numbered in destination order; ``order`` maps that numbering back to the caller's. For ``H``
    heads, node ``n`` and head ``h`` are row ``n * H + h`` of a ``[N * H, C]`` view of ``[N, H, C]`` node
    rows, so one sparse matrix ``[N_dst * H, N_src * H]`` (block-diagonal in the heads, rows interleaved)
    serves all heads in one product without copying the rows into per-head tensors. ``forward_*`` is that
    matrix in CSR form, ``backward_*`` its transpose; ``*_gather`` picks each stored value from the
    ``[E, H]`` edge weights (flattened).

    The ``backward_*`` fields are None in a layout built with ``transpose=False``: it serves products whose
    node rows need no gradient (frozen features), and saves the sort by source.

    Shapes:
        order: ``[E]`` or None (caller's edges already in destination order); dst, src: ``[E]`` in
        destination order; forward_ptr: ``[N_dst * H + 1]``; backward_ptr: ``[N_src * H + 1]``;
        forward_col, forward_gather, backward_col, backward_gather: ``[E * H]``; ``forward_gather`` is None
        when it is the identity (one head).
    """

    num_src: int
    num_dst: int
    heads: int
    order: Tensor | None
    dst: Tensor
    src: Tensor
    forward_ptr: Tensor
    forward_col: Tensor
    forward_gather: Tensor | None
    backward_ptr: Tensor | None
    backward_col: Tensor | None
    backward_gather: Tensor | None


def _head_interleaved_csr(
    pointers: Tensor, columns: Tensor, edge_ids: Tensor | None, heads: int, num_columns: int
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Expand a CSR pattern ``[R, K]`` (``K = num_columns``) to the head-interleaved pattern ``[R * H, K * H]``.

    Big row ``r H + h`` holds row ``r``'s entries again, in head ``h``'s columns (see EdgeLayout). Indices
    come back as int32 (what the sparse kernels use; int64 would be converted on every product) when they fit,
    decided from the shape alone (reading the largest column would wait for a GPU). The gather (which edge
    weight each stored entry takes) is None when it is the identity.
    """
    largest = max(columns.numel(), pointers.numel() - 1, num_columns) * heads
    index_type = torch.int32 if largest < 2**31 else torch.int64
    if heads == 1:  # the pattern itself; no gather when the entries are already the edges in order
        return pointers.to(index_type), columns.to(index_type), edge_ids
    degree = pointers.diff()
    head = torch.arange(heads, device=pointers.device)
    big_pointers = torch.cat([(pointers[:-1, None] * heads + head * degree[:, None]).reshape(-1), pointers[-1:] * heads])
    # output_size: the number of entries is known, so the GPU is not waited for to count them
    big_row = torch.repeat_interleave(
        torch.arange(degree.numel() * heads, device=pointers.device), degree.repeat_interleave(heads), output_size=columns.numel() * heads
    )
    row_head = big_row % heads
    # the entry of the original row that big position p repeats: p's rank inside its big row + the row's start
    start_shift = (pointers[:-1].repeat_interleave(heads) - big_pointers[:-1]).index_select(0, big_row)
    entry = torch.arange(big_row.numel(), device=pointers.device) + start_shift
    big_columns = columns.index_select(0, entry) * heads + row_head
    gather = (entry if edge_ids is None else edge_ids.index_select(0, entry)) * heads + row_head
    return big_pointers.to(index_type), big_columns.to(index_type), gather


def _row_pointers(sorted_index: Tensor, num_rows: int) -> Tensor:
    """CSR row pointers ``[num_rows + 1]`` of a sorted row index: where each row's run starts, and the end.

    A binary search rather than ``bincount``, whose CUDA kernel reads the index's extremes on the host.
    """
    return torch.searchsorted(sorted_index, torch.arange(num_rows + 1, device=sorted_index.device, dtype=sorted_index.dtype))


def edge_layout(
    edge_index: Tensor, num_src: int, num_dst: int, heads: int = 1, transpose: bool = True, dst_sorted: bool = False
) -> EdgeLayout:
    """Group ``edge_index`` (row 0 source, row 1 destination) by destination and by source, for ``heads`` heads.

    Edges already sorted by destination (e.g. restricted from a destination-sorted list) are not re-sorted.
    ``dst_sorted=True`` is the caller's word that they are (as :class:`~recgoat_cli.model.recgoat.IncomingEdges`
    builds them): the check, which waits for a GPU, is skipped. ``transpose=False`` skips the grouping by
    source (the layout then gives no gradient to node rows).

    Shapes:
        edge_index: ``[2, E]`` int64 -> :class:`EdgeLayout`.
    """
    src, dst = edge_index[0], edge_index[1]
    order = None
    if not dst_sorted and dst.numel() > 1 and not bool((dst[1:] >= dst[:-1]).all()):
        order = torch.argsort(dst, stable=True)
        src, dst = src.index_select(0, order), dst.index_select(0, order)
    forward = _head_interleaved_csr(_row_pointers(dst, num_dst), src, None, heads, num_src)
    backward = (None, None, None)
    if transpose:
        by_source = torch.argsort(src, stable=True)
        backward = _head_interleaved_csr(
            _row_pointers(src.index_select(0, by_source), num_src), dst.index_select(0, by_source), by_source, heads, num_dst
        )
    return EdgeLayout(num_src, num_dst, heads, order, dst, src, *forward, *backward)


def _gathered(weights: Tensor, gather: Tensor | None) -> Tensor:
    flat = weights.reshape(-1)
    return flat if gather is None else flat.index_select(0, gather)


class _EdgeWeightedSum(torch.autograd.Function):
    """Forward: one CSR product. Backward: the transposed CSR product for the values and a sampled
    dense-dense product (SDDMM) for the weights, so no ``[E, H, C]`` tensor exists in either pass."""

    @staticmethod
    def forward(ctx, weights: Tensor, values: Tensor, layout: EdgeLayout) -> Tensor:
        ctx.layout = layout
        ctx.save_for_backward(weights, values)
        heads, width = values.size(1), values.size(2)
        matrix = torch.sparse_csr_tensor(
            layout.forward_ptr, layout.forward_col, _gathered(weights, layout.forward_gather),
            (layout.num_dst * heads, layout.num_src * heads),
            check_invariants=False,  # the layout is built sorted and in range; checking costs every batch
        )
        return (matrix @ values.reshape(-1, width)).view(layout.num_dst, heads, width)

    @staticmethod
    def backward(ctx, grad: Tensor):
        weights, values = ctx.saved_tensors
        layout: EdgeLayout = ctx.layout
        heads, width = values.size(1), values.size(2)
        grad_rows = grad.reshape(-1, width)
        grad_weights = grad_values = None
        if ctx.needs_input_grad[0]:
            # d out[i,h,:] / d w[e,h] = values[src(e),h,:], so grad_w[e,h] = <grad[dst(e),h], values[src(e),h]>:
            # a dense product sampled at the stored entries, which come back in the forward matrix's order.
            pattern = torch.sparse_csr_tensor(
                layout.forward_ptr, layout.forward_col, weights.new_zeros(layout.forward_col.numel()),
                (layout.num_dst * heads, layout.num_src * heads),
                check_invariants=False,
            )
            sampled = torch.sparse.sampled_addmm(pattern, grad_rows, values.reshape(-1, width).T, beta=0.0).values()
            if layout.forward_gather is not None:
                sampled = torch.empty_like(sampled).index_copy_(0, layout.forward_gather, sampled)
            grad_weights = sampled.view_as(weights)
        if ctx.needs_input_grad[1]:
            if layout.backward_ptr is None:
                raise RuntimeError("edge_weighted_sum: values need a gradient but the layout was built with transpose=False.")
            transposed = torch.sparse_csr_tensor(
                layout.backward_ptr, layout.backward_col, _gathered(weights, layout.backward_gather),
                (layout.num_src * heads, layout.num_dst * heads),
                check_invariants=False,
            )
            grad_values = (transposed @ grad_rows).view_as(values)
        return grad_weights, grad_values, None


def edge_weighted_sum(weights: Tensor, values: Tensor, layout: EdgeLayout) -> Tensor:
    r"""``out[i, h] = sum_{e = (j -> i)} weights[e, h] * values[j, h]``, differentiable in both inputs.

    Equals ``scatter_sum(values[src] * weights[..., None], dst)`` but runs as one sparse product with the
    layout's head-interleaved matrix (entry ``(i H + h, j H + h)`` holds ``weights[e, h]``); the backward uses
    its transpose for the values and ``grad_w[e, h] = grad[i, h] . values[j, h]`` (sampled dense product)
    for the weights. Memory ``O(E H)`` instead of ``O(E H C)``; on a CPU several times faster than the
    gather-multiply-scatter form.

    Shapes:
        weights: ``[E, H]`` in the layout's destination order; values: ``[N_src, H, C]`` with ``H`` the
        layout's heads; returns ``[N_dst, H, C]`` (zeros for nodes that no edge points to).
    """
    if values.size(1) != layout.heads or weights.shape != (layout.dst.numel(), layout.heads):
        raise ValueError(
            f"edge_weighted_sum: layout for {layout.heads} heads and {layout.dst.numel()} edges, got weights "
            f"{tuple(weights.shape)} and values {tuple(values.shape)}."
        )
    # one dtype for the sparse product (under autocast the softmax weights stay float32)
    return _EdgeWeightedSum.apply(weights.to(values.dtype).contiguous(), values.contiguous(), layout)
