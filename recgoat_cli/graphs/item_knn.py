"""Item-item k-nearest-neighbour graphs from feature vectors, without ever holding an N x N matrix.

Two steps, both pure functions (arrays in, arrays out, no I/O):

1. :func:`blockwise_topk_cosine` finds, for every row :math:`i` of :math:`X \\in \\mathbb{R}^{N \\times d}`,
   the :math:`k` columns :math:`j` with the largest cosine similarity

   .. math::
       s_{ij} = \\frac{x_i^\\top x_j}{\\lVert x_i \\rVert \\, \\lVert x_j \\rVert}
       \\qquad (s_{ij} = 0 \\text{ when } x_i = 0 \\text{ or } x_j = 0).

   The similarity matrix is computed in square tiles :math:`S_{IJ} = \\hat X_I \\hat X_J^\\top` over the upper
   triangle :math:`I \\le J` only; the tile serves the rows of block :math:`I` and, transposed, the rows of block
   :math:`J`. This halves the matrix products and makes :math:`s_{ij}` and :math:`s_{ji}` bitwise equal, so the
   graph built from the lists is exactly symmetric. Each tile contributes an exact partial top-k that is merged
   into a running ``[N, k]`` top-k, so peak memory is one or two tiles plus ``O(N k)``.

   **Ties** are broken deterministically: neighbours are ordered by decreasing similarity and, among equal
   similarities, by increasing column index (the rule of :mod:`recgoat_cli.topk`, whose exact top-k and
   packed rank keys this module uses). This is a total order, so the top-k of each tile and the merge
   of the partial lists are exact: the result equals a dense ``argsort`` of each row under the key
   ``(-s_ij, j)`` (up to float rounding of ``s_ij`` itself, which depends on the tile shape and the BLAS).

   **Grouped selection** (CPU): a tile's columns (for its rows) or rows (for its columns) are cut into groups
   of 32; let :math:`m_k` be an owner's k-th largest group maximum. At least k entries reach :math:`m_k`, so
   the owner's k-th best value :math:`v_k \\ge m_k`, and every entry of its top-k (ties at the cut-off
   included) is among the entries :math:`\\ge m_k`: only those few (about k per owner) are ranked, by the
   same packed key. The column side reduces groups of rows in place, with no transposed copy of the tile.
   Tiles with heavy ties (many entries reach :math:`m_k`) or fewer than k groups use full-row ``topk``.

2. :func:`knn_graph` turns the lists into a sparse weighted adjacency (COO triplets), symmetrised, with
   optional self-loops and degree normalisation.

Shapes:
    - x: ``[N, d]`` float (numpy array or torch tensor, any device)
    - indices: ``[N, k]`` int64, values: ``[N, k]`` float32
    - graph: rows ``[E]`` int64, cols ``[E]`` int64, weights ``[E]`` float32, for an ``[N, N]`` adjacency
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from recgoat_cli.defaults import GraphDefaults
from recgoat_cli.topk import (
    exact_topk_set,
    kth_largest_numpy,
    rank_keys,
    rank_keys_numpy,
    unpack_rank_keys,
)

__all__ = [
    "DEFAULT_MEMORY_BUDGET_BYTES",
    "NeighbourCountError",
    "blockwise_topk_cosine",
    "check_neighbour_count",
    "knn_graph",
    "tile_side_for_budget",
]

DEFAULT_MEMORY_BUDGET_BYTES = GraphDefaults.memory_budget_mb * 1024 * 1024  # the default of --memory-budget

# Bytes held per similarity entry of a tile at the peak: the float32 tile (4) and a bool candidate mask (1);
# the grouped selection's gathered groups are capped at half the tile (2), its candidates at 1/16 of the
# entries (~90 bytes of index/key arrays each, ~6) and its padded merge at 1/4 (2). The full-row fallback
# (heavy ties) adds a float32 transpose (4) and tie temporaries for a quarter of the rows (about 2.25).
_BYTES_PER_TILE_ENTRY = 16

ProgressCallback = Callable[[int, int], None]


def tile_side_for_budget(n: int, memory_budget_bytes: int) -> int:
    """Largest square tile side whose buffers fit in ``memory_budget_bytes`` (at least 1, at most ``n``)."""
    side = math.isqrt(max(int(memory_budget_bytes), 0) // _BYTES_PER_TILE_ENTRY)
    return max(1, min(n, side))


# Grouped selection (see _row_candidates, _column_candidates): rows or columns of a tile are cut into
# groups of this many entries; 32 float32 are whole SIMD vectors for the group maxima.
_GROUP_WIDTH = 32
_INT64_MIN = np.iinfo(np.int64).min


def _merge_candidates(
    best_keys: torch.Tensor, owners: np.ndarray, keys: np.ndarray, owners_sorted: bool, k: int, row_cap: int
) -> bool:
    """Merge candidate keys into ``best_keys`` (``[n_owners, k]`` view, updated in place): ``owners[c]`` is
    the local row of candidate ``c``. Returns ``False`` (and changes nothing) when one row holds so many
    candidates that the padded ``[n_owners, k + most]`` merge matrix would exceed ``row_cap`` entries."""
    n_owners = best_keys.shape[0]
    counts = np.bincount(owners, minlength=n_owners)
    most = int(counts.max()) if counts.size else 0
    if n_owners * (k + most) > row_cap:
        return False
    if not owners_sorted:
        order = np.argsort(owners, kind="stable")
        owners, keys = owners[order], keys[order]
    first = np.cumsum(counts) - counts
    slots = np.arange(owners.size, dtype=np.int64) - first[owners]
    padded = np.full((n_owners, k + most), _INT64_MIN, dtype=np.int64)
    padded[:, :k] = best_keys.numpy()
    padded[owners, k + slots] = keys
    # Keys of distinct columns never tie, so the k largest form an exact set; padding only sits below them.
    best_keys.numpy()[...] = np.partition(padded, most, axis=1)[:, most:]
    return True


def _row_candidates(
    scores: np.ndarray, group_max: np.ndarray, cutoff: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Entries ``>= cutoff[i]`` of each tile row ``i``, read from the chosen column groups only.

    An entry reaching the cutoff lies in a group whose maximum reaches it, so only the groups with
    ``group_max >= cutoff`` (about k per row) are gathered, plus the tail columns beyond the last whole
    group. Returns ``(rows, columns, values)``, or ``None`` when heavy ties choose more than half of the tile
    or more than 1/16 of it reaches the cutoff.
    """
    n_rows, n_cols = scores.shape
    n_groups = group_max.shape[1]
    chosen = np.flatnonzero(group_max >= cutoff[:, None])
    # About k groups per row: some 3.7M of the 33.5M entries of a 5792-wide tile for k = 20.
    if chosen.size * _GROUP_WIDTH > n_rows * n_cols // 2:
        return None
    chunk_rows, chunk_groups = np.divmod(chosen, n_groups)
    grouped_columns = n_groups * _GROUP_WIDTH
    # [chosen, width] copy of the chosen groups. np.take on whole rows of width entries measured ~4x faster
    # than fancy indexing the (view) [rows, groups, width] slice that tail columns need.
    if grouped_columns == n_cols:
        chunks = np.take(scores.reshape(n_rows * n_groups, _GROUP_WIDTH), chosen, axis=0)
    else:
        chunks = scores[:, :grouped_columns].reshape(n_rows, n_groups, _GROUP_WIDTH)[chunk_rows, chunk_groups]
    hits = np.flatnonzero(chunks >= cutoff[chunk_rows][:, None])
    if hits.size > n_rows * n_cols // 16:
        return None
    chunk_of, offset = np.divmod(hits, _GROUP_WIDTH)
    rows = chunk_rows[chunk_of]
    columns = chunk_groups[chunk_of] * _GROUP_WIDTH + offset
    values = chunks.ravel()[hits]
    if grouped_columns < n_cols:
        tail = scores[:, grouped_columns:]
        tail_rows, tail_columns = np.divmod(np.flatnonzero(tail >= cutoff[:, None]), tail.shape[1])
        rows = np.concatenate([rows, tail_rows])
        columns = np.concatenate([columns, tail_columns + grouped_columns])
        values = np.concatenate([values, tail[tail_rows, tail_columns]])
    return rows, columns, values


def _column_candidates(
    scores: np.ndarray, cutoff: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Entries ``>= cutoff[j]`` of each tile column ``j``, by one compare over the tile into ``mask``.

    (Gathering the chosen row groups of a column reads the tile with a stride and measured no faster.)
    Returns ``(rows, columns, values)``, or ``None`` when heavy ties select more than 1/16 of the tile.
    """
    n_rows, n_cols = scores.shape
    tile_mask = mask[: n_rows * n_cols].reshape(n_rows, n_cols)
    # torch's broadcast compare along rows measured ~1.5x faster than numpy's here.
    torch.ge(torch.from_numpy(scores), torch.from_numpy(cutoff)[None, :], out=torch.from_numpy(tile_mask))
    if np.count_nonzero(tile_mask) > n_rows * n_cols // 16:
        return None
    positions = np.flatnonzero(tile_mask)
    rows, columns = np.divmod(positions, n_cols)
    return rows, columns, scores.ravel()[positions]


def _as_float_tensor(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A float32 tensor that may share memory with ``x``; it is only read, never written."""
    if isinstance(x, np.ndarray):
        with warnings.catch_warnings():
            # A read-only array (np.load with mmap_mode="r") is fine here: the tensor is never written.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return x.detach().to(dtype=torch.float32)


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    # A zero row stays zero (dividing by 1), so its similarity with every row is 0 rather than NaN.
    return (x / torch.where(norms > 0, norms, torch.ones_like(norms))).contiguous()


def _tile_product(left: torch.Tensor, right: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``left @ right.T`` written into ``out``.

    On CPU the product goes through numpy: its OpenBLAS ran this float32 GEMM about 1.5-2x faster than
    torch's MKL on the AMD CPUs we measured. The two share memory, so nothing is copied.
    """
    if left.device.type == "cpu":
        np.matmul(left.numpy(), right.numpy().T, out=out.numpy())
        return out
    return torch.matmul(left, right.T, out=out)


class NeighbourCountError(ValueError):
    """``k`` neighbours cannot be chosen among ``n`` rows: ``k < 1``, or ``k`` above ``limit``.

    ``limit`` is ``n - 1`` when a row may not be its own neighbour (``exclude_self``), else ``n``. The caller
    that knows where ``k`` came from (a command-line flag, a config field) turns this into its own message.
    """

    def __init__(self, k: int, n: int, entity: str, exclude_self: bool):
        self.k, self.n, self.entity, self.exclude_self = k, n, entity, exclude_self
        self.limit = n - 1 if exclude_self else n
        if k < 1:
            reason = "must be at least 1"
        elif self.limit < 1:
            reason = f"is impossible among {n} {entity}: a neighbour graph needs at least 2"
        else:
            reason = f"must be at most {self.limit} for {n} {entity}" + (" (a row is not its own neighbour)" if exclude_self else "")
        super().__init__(f"k = {k} neighbours {reason}")


def check_neighbour_count(k: int, n: int, exclude_self: bool, entity: str) -> None:
    """Raise ``NeighbourCountError`` unless ``1 <= k <= n - 1`` (``<= n`` when a row may be its own neighbour)."""
    limit = n - 1 if exclude_self else n
    if k < 1 or limit < 1 or k > limit:
        raise NeighbourCountError(k, n, entity, exclude_self)


def blockwise_topk_cosine(
    x: torch.Tensor | np.ndarray,
    k: int,
    *,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    block_size: int | None = None,
    exclude_self: bool = True,
    progress: ProgressCallback | None = None,
    entity: str = "items",
) -> tuple[torch.Tensor, torch.Tensor] | tuple[np.ndarray, np.ndarray]:
    """The ``k`` most cosine-similar rows of every row of ``x``, computed tile by tile.

    Args:
        x: ``[N, d]`` features; rows are L2-normalised here (zero rows get similarity 0 with everything).
            The caller validates finiteness. Cast to float32.
        k: neighbours per row; at most ``N - 1`` with ``exclude_self`` (``N`` without).
        memory_budget_bytes: bound on the tile buffers (two ``t x t`` float32 tiles plus tie-resolution
            buffers, 16 bytes per entry); the tile side is ``floor(sqrt(budget / 16))``. The features, their
            normalised copy and the ``[N, k]`` result come on top.
        block_size: tile side (rows and columns per tile); overrides the budget when given.
        exclude_self: mask the diagonal so a row is never its own neighbour.
        progress: called as ``progress(tiles_done, tiles_total)`` after each tile.
        entity: names the rows in the error raised for a bad ``k``.

    Returns:
        ``(indices, values)``: ``[N, k]`` int64 column indices and ``[N, k]`` float32 similarities, each row
        ordered by decreasing similarity then increasing index. numpy arrays for a numpy input, torch tensors
        on the input's device for a tensor input.

    Raises:
        NeighbourCountError: ``k`` is below 1 or not smaller than the number of rows (with ``exclude_self``).
    """
    return_numpy = isinstance(x, np.ndarray)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D [N, d] array, got shape {tuple(x.shape)}")
    n = int(x.shape[0])
    check_neighbour_count(k, n, exclude_self, entity)
    if block_size is not None and block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")

    unit = _unit_rows(_as_float_tensor(x))
    device = unit.device
    side = min(n, block_size) if block_size is not None else tile_side_for_budget(n, memory_budget_bytes)
    starts = list(range(0, n, side))
    tiles_total = len(starts) * (len(starts) + 1) // 2

    # The running top-k of every row, as rank keys (see recgoat_cli.topk.rank_keys). The initial minimum key never survives
    # the merges because every row has at least k candidate columns.
    best_keys = torch.full((n, k), torch.iinfo(torch.int64).min, dtype=torch.int64, device=device)
    # The tile buffer is reused by every tile; the last, smaller tiles take a contiguous prefix of it.
    tile_buffer = torch.empty(side * side, dtype=torch.float32, device=device)
    # The grouped selection runs on CPU tiles with at least k groups per owner; it needs a bool mask buffer.
    use_groups = device.type == "cpu" and side // _GROUP_WIDTH >= k
    mask_buffer = np.empty(side * side, dtype=np.bool_) if use_groups else None

    def absorb(row_start: int, col_start: int, scores: torch.Tensor) -> None:
        """Merge the exact top-k set of a tile's rows into the running top-k of those rows (full rows)."""
        row_end = row_start + scores.shape[0]
        values, local = exact_topk_set(scores, k)
        if device.type == "cpu":
            # numpy for the small merge ops: see recgoat_cli.topk.rank_keys_numpy.
            owner_keys = best_keys[row_start:row_end].numpy()
            candidates = np.concatenate([owner_keys, rank_keys_numpy(values.numpy(), local.numpy() + col_start)], 1)
            owner_keys[...] = np.partition(candidates, candidates.shape[1] - k, axis=1)[:, -k:]
            return
        candidates = torch.cat([best_keys[row_start:row_end], rank_keys(values, local + col_start)], dim=1)
        best_keys[row_start:row_end] = torch.topk(candidates, k, dim=1, sorted=False).values

    def merge_found(owner_start: int, n_owners: int, owners, neighbours, values, tile_entries: int) -> bool:
        """Merge grouped-selection candidates (owner, neighbour id, value) into the owners' running top-k;
        False (nothing merged) when one owner has too many for the merge matrix, and the tile falls back to
        ``absorb``."""
        keys = rank_keys_numpy(values, neighbours)
        owner_keys = best_keys[owner_start : owner_start + n_owners]
        return _merge_candidates(owner_keys, owners, keys, False, k, tile_entries // 4)

    def absorb_rows(row_start: int, col_start: int, scores: torch.Tensor) -> None:
        """The tile's rows take their neighbours among its columns."""
        n_rows, n_cols = scores.shape
        groups = n_cols // _GROUP_WIDTH
        if use_groups and groups >= k:
            # Tail columns beyond the last whole group are left out of the maxima: the cutoff then still has
            # k entries above it (in the k best groups), and the tail columns are compared separately.
            group_max = scores[:, : groups * _GROUP_WIDTH].reshape(n_rows, groups, _GROUP_WIDTH).amax(dim=2)
            group_max = group_max.numpy()
            cutoff = kth_largest_numpy(group_max, k)
            found = _row_candidates(scores.numpy(), group_max, cutoff)
            if found is not None:
                rows, columns, values = found
                if merge_found(row_start, n_rows, rows, columns + col_start, values, n_rows * n_cols):
                    return
        absorb(row_start, col_start, scores)

    def absorb_columns(row_start: int, col_start: int, scores: torch.Tensor) -> None:
        """The tile's columns take their neighbours among its rows, without transposing the tile."""
        n_rows, n_cols = scores.shape
        groups = n_rows // _GROUP_WIDTH
        if use_groups and groups >= k:
            # Groups of consecutive rows: reducing the middle axis keeps the inner loop along a tile row.
            group_max = scores[: groups * _GROUP_WIDTH].view(groups, _GROUP_WIDTH, n_cols).amax(dim=1)
            cutoff = kth_largest_numpy(np.ascontiguousarray(group_max.numpy().T), k)
            found = _column_candidates(scores.numpy(), cutoff, mask_buffer)
            if found is not None:
                rows, columns, values = found
                if merge_found(col_start, n_cols, columns, rows + row_start, values, n_rows * n_cols):
                    return
        absorb(col_start, row_start, scores.T.contiguous())

    tiles_done = 0
    for block_i, row_start in enumerate(starts):
        rows = unit[row_start : row_start + side]
        for col_start in starts[block_i:]:
            cols = unit[col_start : col_start + side]
            n_rows, n_cols = rows.shape[0], cols.shape[0]
            scores = _tile_product(rows, cols, tile_buffer[: n_rows * n_cols].view(n_rows, n_cols))
            if col_start == row_start:
                if exclude_self:
                    scores.fill_diagonal_(-math.inf)
                absorb_rows(row_start, col_start, scores)
            else:
                absorb_rows(row_start, col_start, scores)
                absorb_columns(row_start, col_start, scores)
            tiles_done += 1
            if progress is not None:
                progress(tiles_done, tiles_total)

    best_values, best_indices = unpack_rank_keys(torch.sort(best_keys, dim=1, descending=True).values)
    if return_numpy:
        return best_indices.numpy(), best_values.numpy()
    return best_indices, best_values


SymmetrizeMode = Literal["max", "mean", "none"]
NormalizeMode = Literal["none", "sym", "rw"]


def _to_numpy(a: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _reduce_duplicates(
    keys: np.ndarray, weights: np.ndarray, how: Literal["max", "sum"]
) -> tuple[np.ndarray, np.ndarray]:
    """Unique sorted keys with the max or the sum of the weights sharing each key."""
    if keys.size == 0:
        return keys.astype(np.int64), weights.astype(np.float32)
    order = np.argsort(keys, kind="stable")
    keys, weights = keys[order], weights[order]
    group_starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    reducer = np.maximum if how == "max" else np.add
    return keys[group_starts], reducer.reduceat(weights, group_starts).astype(np.float32)


def knn_graph(
    indices: torch.Tensor | np.ndarray,
    values: torch.Tensor | np.ndarray,
    n: int,
    *,
    symmetrize: SymmetrizeMode = "max",
    self_loops: bool = False,
    normalize: NormalizeMode = "none",
    min_similarity: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sparse ``[n, n]`` weighted adjacency from per-row top-k lists.

    Edge ``i -> j`` with weight ``s_ij`` for every listed neighbour ``j`` of ``i``, then:

    - **dropped**: entries with index ``< 0`` (empty slots), self-pairs ``i -> i`` (self-loops are governed
      by ``self_loops`` alone), and entries with similarity ``<= 0``: a non-positive cosine means "unrelated
      or opposite", and a message-passing weight should not be negative or zero, so such neighbours are
      not edges (rather than edges clamped to weight 0). With ``min_similarity``, entries below it are
      dropped too.
    - **symmetrised**: ``"max"`` keeps the union of ``i -> j`` and ``j -> i`` with weight
      :math:`\\max(A_{ij}, A_{ji})`; ``"mean"`` uses :math:`(A + A^\\top)/2`, so an edge listed by only one
      endpoint keeps half its weight; ``"none"`` keeps the directed lists.
    - **self-loops**: with ``self_loops``, every node gets ``i -> i`` with weight 1 (isolated nodes too).
    - **normalised** with degrees :math:`d_i = \\sum_j A_{ij}` (row sums, after self-loops):
      ``"sym"`` gives :math:`D^{-1/2} A D^{-1/2}`, ``"rw"`` gives :math:`D^{-1} A` (rows sum to 1);
      nodes with no edges keep none, so there is no division by zero. For ``symmetrize="none"``,
      ``"sym"`` uses out-degrees on the left and in-degrees on the right.

    Shapes:
        - indices: ``[n, k]`` int, values: ``[n, k]`` float (e.g. from :func:`blockwise_topk_cosine`)
        - returns rows ``[E]`` int64, cols ``[E]`` int64, weights ``[E]`` float32, sorted by ``(row, col)``
          with no duplicate pairs
    """
    if symmetrize not in ("max", "mean", "none"):
        raise ValueError(f"symmetrize must be 'max', 'mean' or 'none', got {symmetrize!r}")
    if normalize not in ("none", "sym", "rw"):
        raise ValueError(f"normalize must be 'none', 'sym' or 'rw', got {normalize!r}")
    neighbour = _to_numpy(indices).astype(np.int64, copy=False)
    similarity = _to_numpy(values).astype(np.float32, copy=False)
    if neighbour.shape != similarity.shape or neighbour.ndim != 2 or neighbour.shape[0] != n:
        raise ValueError(
            f"indices and values must both be [n={n}, k], got {neighbour.shape} and {similarity.shape}"
        )
    if neighbour.size and neighbour.max() >= n:
        raise ValueError(f"neighbour index {int(neighbour.max())} is out of range for n={n}")

    rows = np.repeat(np.arange(n, dtype=np.int64), neighbour.shape[1])
    cols = neighbour.ravel()
    weights = similarity.ravel()
    keep = (cols >= 0) & (cols != rows) & (weights > 0)
    if min_similarity is not None:
        keep &= weights >= min_similarity
    rows, cols, weights = rows[keep], cols[keep], weights[keep]

    # Duplicates within one direction are collapsed first, so that "mean" averages A and A^T, not lists.
    keys, weights = _reduce_duplicates(rows * n + cols, weights, "max")
    if symmetrize != "none":
        rows, cols = np.divmod(keys, n)
        both_keys = np.concatenate([keys, cols * n + rows])
        both_weights = np.concatenate([weights, weights])
        if symmetrize == "max":
            keys, weights = _reduce_duplicates(both_keys, both_weights, "max")
        else:
            keys, weights = _reduce_duplicates(both_keys, both_weights * np.float32(0.5), "sum")
    if self_loops:
        # No self-pair survived the filter above, so every loop is new.
        loop = np.arange(n, dtype=np.int64)
        keys, weights = _reduce_duplicates(
            np.concatenate([keys, loop * n + loop]), np.concatenate([weights, np.ones(n, dtype=np.float32)]), "max"
        )
    rows, cols = np.divmod(keys, n)

    if normalize != "none" and weights.size:
        out_degree = np.bincount(rows, weights=weights.astype(np.float64), minlength=n)
        if normalize == "rw":
            weights = weights / out_degree[rows]
        else:
            # A symmetric graph uses the same degrees on both sides, so the result stays exactly symmetric;
            # a directed one ("none") gets D_out^{-1/2} A D_in^{-1/2}.
            in_degree = (
                out_degree
                if symmetrize != "none"
                else np.bincount(cols, weights=weights.astype(np.float64), minlength=n)
            )
            weights = weights / np.sqrt(out_degree[rows] * in_degree[cols])
        # Only nodes with edges are indexed above and their degrees are positive: no inf or NaN appears.
    return rows.astype(np.int64), cols.astype(np.int64), weights.astype(np.float32)
