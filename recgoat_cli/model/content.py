r"""The content score: what late fusion adds to a collaborative model, learned jointly with it.

For a modality with item rows :math:`\hat x_i` (centred by the column mean, unit length: centred cosines), the
content ranker scores :math:`c_{ui} = \hat x_i^\top p_u` with :math:`p_u = \sum_{j \in T(u)} \hat x_j` over the
user's train items (the late-fusion baseline's ranker, ``model/late_fusion.py``). Per user it is made
scale-free as late fusion does, as the z-score over all items
:math:`\tilde c_{ui} = (\hat x_i - \bar x)^\top p_u / \sigma_u`.

The model's score is :math:`\hat y_{ui} = z_u^\top z_i + \sum_m \beta_m \tilde c^m_{ui}` with one learned
:math:`\beta_m` per modality, trained by BPR with everything else: the collaborative and attention parts learn
what the content does not explain, instead of being fused with it after training. It stays an inner product of
two tables (``[z_u, \beta_m p_u / \sigma_u]`` and ``[z_i, \hat x_i - \bar x]``), so evaluation, export and the
TorchScript scorer rank it like any model.

**Leave-one-out in training.** A train positive :math:`i` is one of the items in :math:`p_u`, so
:math:`\tilde c_{ui}` holds its similarity to itself, :math:`\hat x_i^\top (\hat x_i - \bar x) / \sigma_u`,
which no unseen item can have. Left in, BPR would learn that "the content score of a positive is high" from
that self term and inflate :math:`\beta`. Training removes it from every positive's score
(:meth:`ContentScore.positive_offset`); negatives are never train items, so theirs is already leave-one-out.
At evaluation train items are masked, so nothing needs removing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from recgoat_cli.model.late_fusion import centred_unit_rows, content_user_rows, zscore_scales


def content_tensors(name: str, features: Tensor, train_indptr: Tensor, train_indices: Tensor) -> dict[str, Tensor]:
    r"""The frozen tables of one modality's content score, keyed as the model reads them.

    ``content_users:<m>`` :math:`p_u / \sigma_u` ``[U, d]``; ``content_items:<m>`` :math:`\hat x_i - \bar x`
    ``[I, d]``; ``content_self:<m>`` :math:`\hat x_i^\top(\hat x_i - \bar x)` ``[I]``;
    ``content_scale:<m>`` :math:`1 / \sigma_u` ``[U]`` (0 for a user whose content scores are all equal).

    Shapes:
        features: [I, d] raw rows; train_indptr [U + 1], train_indices [nnz] (the train CSR)
    """
    unit = centred_unit_rows(features)
    profiles = content_user_rows(train_indptr, train_indices, unit)
    scale, items = zscore_scales(profiles, unit)
    items = items.float()
    return {
        f"content_users:{name}": (profiles.double() * scale[:, None]).float(),
        f"content_items:{name}": items,
        f"content_self:{name}": (unit * items).sum(dim=1),
        f"content_scale:{name}": scale.float(),
    }


class ContentScore(nn.Module):
    r"""One learned weight :math:`\beta_m` per modality on the z-scored content ranker (see the module docstring).

    Shapes:
        extend(graph, users [Bu] | None, items [Bi] | None, user_rows [Bu, D], item_rows [Bi, D])
        -> ([Bu, D + sum d_m], [Bi, D + sum d_m]); positive_offset(graph, users [B], items [B]) -> [B]
    """

    def __init__(self, modalities: list[str], init: float = 1.0):
        super().__init__()
        self.modalities = list(modalities)
        self.init = init
        self.weight = nn.Parameter(torch.empty(len(self.modalities)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.weight, self.init)

    def extend(self, graph: dict[str, Tensor], users: Tensor | None, items: Tensor | None, user_rows: Tensor, item_rows: Tensor) -> tuple[Tensor, Tensor]:
        user_parts, item_parts = [user_rows], [item_rows]
        for weight, name in zip(self.weight, self.modalities):
            table_u, table_i = graph[f"content_users:{name}"], graph[f"content_items:{name}"]
            user_parts.append(weight * (table_u if users is None else table_u.index_select(0, users)))
            item_parts.append(table_i if items is None else table_i.index_select(0, items))
        return torch.cat(user_parts, dim=1), torch.cat(item_parts, dim=1)

    def positive_offset(self, graph: dict[str, Tensor], users: Tensor, items: Tensor) -> Tensor:
        """The self-similarity each (user, train positive) score holds, weighted: what training subtracts."""
        offset = torch.zeros(users.numel(), device=users.device)
        for weight, name in zip(self.weight, self.modalities):
            own = graph[f"content_self:{name}"].index_select(0, items) * graph[f"content_scale:{name}"].index_select(0, users)
            offset = offset + weight * own
        return offset

    def weights(self) -> dict[str, float]:
        return {name: float(w) for name, w in zip(self.modalities, self.weight.detach().cpu())}
