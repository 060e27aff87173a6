"""What the training loop needs from every recommender: final embeddings, ego embeddings, extra losses."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


def select_rows(table: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
    return table if ids is None else table[ids]


@dataclass
class RecOutput:
    """Final representations, scored by dot product; ``views`` holds per-view item/user tensors for extra losses.

    Shapes:
        users: [n_users, d]; items: [n_items, d]; views: name -> [n_items or n_users, d]
    """

    users: torch.Tensor
    items: torch.Tensor
    views: dict[str, torch.Tensor] = field(default_factory=dict)


class Recommender(nn.Module):
    """Base class: ``forward(graph, users=None, items=None) -> RecOutput``; ``graph`` maps names to tensors.

    When ``users`` / ``items`` (unique ids) are given, the output rows are those nodes, in that order: a
    model may then compute only what the batch needs. Without them, every user and item is returned.
    """

    def ego_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The free user and item tables the L2 penalty applies to."""
        return self.user_embedding.weight, self.item_embedding.weight

    def auxiliary_losses(
        self, out: RecOutput, users: torch.Tensor, items: torch.Tensor, triples: tuple[torch.Tensor, ...] | None = None
    ) -> dict[str, torch.Tensor]:
        """Model-specific loss terms for a batch (already weighted); none by default.

        ``users`` / ``items`` are the rows of ``out`` for the batch's unique users and positive items; ``triples``
        the rows of each BPR triple's user, positive and negative item.
        """
        return {}
