"""Full-ranking metrics with the evaluated users split across the ranks of a torchrun job.

Each rank ranks a contiguous chunk of the users that have truth items (``distributed.shard_range``), sums its
per-user metric values, and one all-reduce adds the sums and the user counts: the means equal the
single-process ``evaluate_ranking`` up to float64 summation order (about 1e-16). With one process this is
``evaluate_ranking``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from recgoat_cli import distributed
from recgoat_cli.eval.ranker import evaluate_ranking


def csr_row_range(indptr: np.ndarray, indices: np.ndarray, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """The same CSR with every row outside ``[first, last]`` emptied.

    Shapes:
        indptr ``[n_rows + 1]``, indices ``[nnz]`` -> indptr ``[n_rows + 1]``, indices ``[nnz']``.
    """
    lo, hi = indptr[first], indptr[last + 1]
    return np.clip(indptr, lo, hi) - lo, indices[lo:hi]


def evaluate_ranking_sharded(
    user_emb: Tensor,
    item_emb: Tensor,
    truth: tuple[np.ndarray, np.ndarray],
    exclude: tuple[np.ndarray, np.ndarray] | None,
    ks: list[int],
    metrics: list[str] | None = None,
    batch_size: int | None = None,
) -> tuple[dict[str, float], int]:
    """Mean ``metric@k`` over the users with truth items, and their number, ranked across all ranks.

    ``truth`` and ``exclude`` are user-major CSRs ``(indptr, indices)`` (NumPy) over every user; every rank
    passes the whole tables and gets the same result.
    """
    exclude_indptr, exclude_indices = exclude if exclude is not None else (None, None)
    if distributed.world_size() == 1:
        result = evaluate_ranking(user_emb, item_emb, *truth, exclude_indptr, exclude_indices, ks=ks, metrics=metrics, batch_size=batch_size)
        return result.metrics, result.n_users
    indptr, indices = np.asarray(truth[0]), np.asarray(truth[1])
    evaluated = np.flatnonzero(np.diff(indptr) > 0)
    part = distributed.shard_range(len(evaluated))
    mine = evaluated[part.start : part.stop]
    if len(mine):
        indptr, indices = csr_row_range(indptr, indices, int(mine[0]), int(mine[-1]))
    else:
        indptr, indices = np.zeros_like(indptr), indices[:0]
    result = evaluate_ranking(
        user_emb, item_emb, indptr, indices, exclude_indptr, exclude_indices, ks=ks, metrics=metrics, batch_size=batch_size, return_per_user=True
    )
    keys = list(result.per_user)
    sums = torch.tensor([float(result.per_user[key].sum()) for key in keys] + [result.n_users], dtype=torch.float64)
    sums = distributed.sum_across_ranks(sums)
    n_users = int(sums[-1])
    return {key: float(sums[i] / n_users) if n_users else float("nan") for i, key in enumerate(keys)}, n_users
