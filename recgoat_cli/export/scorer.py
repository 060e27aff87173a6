"""A standalone top-K scorer: one TorchScript file that serves recommendations with only ``torch`` installed.

``recgoat export --format torchscript`` writes ``scorer.pt``. It holds the learned user and item embeddings,
the original user and item ids and the CSR of each user's known items (the export's ``--exclude``
splits, train by default), so a process without recgoat can do::

    import torch
    scorer = torch.jit.load("scorer.pt")
    items, scores = scorer.recommend(["u42", "u7"], 10)  # original ids in, original ids out
    # items: List[List[str]], best first; scores: float32 Tensor [2, 10]

``recommend(user_ids: List[str], k: int) -> Tuple[List[List[str]], Tensor]`` ranks every item by the inner
product ``user_emb[u] . item_emb[i]``, never returns a known item, and breaks ties by the lower item index
first: exactly the lists of ``recgoat_cli.eval.ranker.rank_users`` (the scorer sorts each row with a
stable descending sort, which keeps equal scores in index order). A user with fewer than ``k`` unknown
items gets a shorter list; ``scores[r, j]`` is the score of ``items[r][j]`` and ``-inf`` beyond the list.
An id that is not in the training data raises an error naming it (``torch.jit.Error`` in Python).
``recommend_indices(users: Tensor, k: int)`` is the same on internal integer ids (``-1`` pads the lists),
and ``scorer.lineage`` maps each pipeline stage to the artifact id the scorer came from.

Scores for a call are one dense ``[len(user_ids), n_items]`` float32 block, so a server should batch a few
hundred users per call on catalogues of a million items.
"""

# No ``from __future__ import annotations``: TorchScript reads the annotations of TopKScorer as real types.
import io
import json
import warnings
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["TopKScorer", "build_scorer", "save_scorer"]

#: name of the JSON file stored inside ``scorer.pt`` (``torch.jit.load(path, _extra_files={...})``)
METADATA_NAME = "recgoat.json"


class TopKScorer(nn.Module):
    r"""Masked top-K over inner-product scores, keyed by original ids.

    .. math::
        \mathrm{top}_k(u) = \operatorname{arg\,sort}^{\downarrow}_{i \notin E(u)} \; e_u^\top e_i

    where :math:`E(u)` is the user's row of the exclusion CSR and ties keep the lower item index first.

    Shapes:
        - user_embeddings ``[n_users, d]`` float32, item_embeddings ``[n_items, d]`` float32
        - exclude_indptr ``[n_users + 1]`` int64, exclude_indices ``[nnz]`` int64 (item indices)
        - ``recommend_indices``: users ``[B]`` int64 -> item indices ``[B, k]`` int64 (``-1`` pads), scores ``[B, k]``
        - ``recommend``: ``B`` original user ids -> ``B`` lists of at most ``k`` original item ids, scores ``[B, k]``
    """

    user_index: Dict[str, int]
    item_ids: List[str]
    lineage: Dict[str, str]

    def __init__(
        self,
        user_embeddings: Tensor,
        item_embeddings: Tensor,
        exclude_indptr: Tensor,
        exclude_indices: Tensor,
        user_ids: List[str],
        item_ids: List[str],
        lineage: Dict[str, str],
    ):
        super().__init__()
        self.register_buffer("user_embeddings", user_embeddings)
        self.register_buffer("item_embeddings", item_embeddings)
        self.register_buffer("exclude_indptr", exclude_indptr)
        self.register_buffer("exclude_indices", exclude_indices)
        self.user_index = {user_id: index for index, user_id in enumerate(user_ids)}
        self.item_ids = list(item_ids)
        self.lineage = dict(lineage)

    def reset_parameters(self) -> None:
        """Nothing to reset: the scorer holds trained embeddings, not parameters."""

    def extra_repr(self) -> str:
        n_users, dim = self.user_embeddings.shape
        return f"n_users={n_users}, n_items={self.item_embeddings.shape[0]}, dim={dim}, excluded={self.exclude_indices.numel()}"

    def forward(self, users: Tensor, k: int) -> Tuple[Tensor, Tensor]:
        return self.recommend_indices(users, k)

    @torch.jit.export
    def recommend_indices(self, users: Tensor, k: int) -> Tuple[Tensor, Tensor]:
        n_users = self.user_embeddings.shape[0]
        n_items = self.item_embeddings.shape[0]
        if k < 1:
            raise ValueError("k must be a positive integer, got " + str(k))
        if users.numel() > 0 and (int(users.min()) < 0 or int(users.max()) >= n_users):
            raise ValueError("user indices must lie in [0, " + str(n_users) + ")")
        users = users.to(self.exclude_indptr.device, torch.int64)
        scores = torch.matmul(self.user_embeddings[users], self.item_embeddings.t())
        # The rows' excluded items as (row, item) pairs, gathered from the CSR without a loop over users.
        starts = self.exclude_indptr[users]
        lengths = self.exclude_indptr[users + 1] - starts
        rows = torch.repeat_interleave(torch.arange(users.numel(), device=users.device), lengths)
        first_entry = torch.cumsum(lengths, dim=0) - lengths
        offsets = torch.arange(rows.numel(), device=users.device) - torch.repeat_interleave(first_entry, lengths)
        items = self.exclude_indices[torch.repeat_interleave(starts, lengths) + offsets]
        scores.view(-1).index_fill_(0, rows * n_items + items, float("-inf"))
        # A stable sort keeps equal scores in item index order: ties rank the lower index first, as rank_users.
        values, indices = torch.sort(scores, dim=1, descending=True, stable=True)
        width = min(k, n_items)
        values, indices = values[:, :width], indices[:, :width]
        if width < k:
            values = torch.cat([values, values.new_full((values.shape[0], k - width), float("-inf"))], dim=1)
            indices = torch.cat([indices, indices.new_full((indices.shape[0], k - width), -1)], dim=1)
        indices = indices.masked_fill(torch.isneginf(values), -1)
        return indices, values

    @torch.jit.export
    def recommend(self, user_ids: List[str], k: int) -> Tuple[List[List[str]], Tensor]:
        users: List[int] = []
        for user_id in user_ids:
            if user_id not in self.user_index:
                raise ValueError(
                    "unknown user id '" + user_id + "': the scorer knows the " + str(len(self.user_index))
                    + " users of its training data; retrain with this user's interactions to serve them"
                )
            users.append(self.user_index[user_id])
        indices, values = self.recommend_indices(torch.tensor(users, dtype=torch.int64), k)
        ranked: List[List[int]] = indices.tolist()
        lists: List[List[str]] = []
        for row in ranked:
            items: List[str] = []
            for index in row:
                if index >= 0:
                    items.append(self.item_ids[index])
            lists.append(items)
        return lists, values


def build_scorer(
    user_embeddings: np.ndarray,
    item_embeddings: np.ndarray,
    exclude_indptr: np.ndarray,
    exclude_indices: np.ndarray,
    user_ids: Sequence[str],
    item_ids: Sequence[str],
    lineage: Mapping[str, str] | None = None,
) -> torch.jit.ScriptModule:
    """Script a ``TopKScorer`` over these embeddings, exclusions (CSR over users) and original ids."""
    n_users, n_items = len(user_embeddings), len(item_embeddings)
    if len(user_ids) != n_users or len(item_ids) != n_items:
        raise ValueError(f"{len(user_ids)} user ids and {len(item_ids)} item ids for {n_users} x {n_items} embeddings")
    if len(set(user_ids)) != n_users:
        raise ValueError("user ids must be unique")
    if len(exclude_indptr) != n_users + 1:
        raise ValueError(f"exclude_indptr has {len(exclude_indptr)} entries for {n_users} users (+1 expected)")
    module = TopKScorer(
        torch.tensor(np.asarray(user_embeddings, dtype=np.float32)),
        torch.tensor(np.asarray(item_embeddings, dtype=np.float32)),
        torch.tensor(np.asarray(exclude_indptr, dtype=np.int64)),
        torch.tensor(np.asarray(exclude_indices, dtype=np.int64)),
        [str(u) for u in user_ids],
        [str(i) for i in item_ids],
        {str(k): str(v) for k, v in (lineage or {}).items()},
    )
    with _torchscript_deprecation_silenced():
        return torch.jit.script(module.eval())


def save_scorer(scorer: torch.jit.ScriptModule, path: Path, metadata: Mapping | None = None) -> None:
    """Write ``scorer`` to ``path`` with ``metadata`` as the JSON extra file ``recgoat.json``."""
    buffer = io.BytesIO()
    with _torchscript_deprecation_silenced():
        torch.jit.save(scorer, buffer, _extra_files={METADATA_NAME: json.dumps(dict(metadata or {}), sort_keys=True)})
    Path(path).write_bytes(buffer.getvalue())


@contextmanager
def _torchscript_deprecation_silenced():
    # Recent torch marks TorchScript deprecated in favour of torch.export, whose programs cannot take or
    # return string ids; a scripted file still loads with plain torch.jit.load, which is what a server needs.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+. is deprecated", category=FutureWarning)
        yield
