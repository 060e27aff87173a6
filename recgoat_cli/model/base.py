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

    def positive_offset(self, graph: dict[str, torch.Tensor], users: torch.Tensor, positives: torch.Tensor) -> torch.Tensor | None:
        """What training subtracts from each (user, train positive) score before BPR, or None (nothing).

        A model whose score counts the user's own train items (RecGOAT's content score) removes the positive's
        similarity to itself here, so training sees leave-one-out scores. Shapes: users, positives ``[B]`` ids.
        """
        return None

    def pairwise_losses(
        self, out: RecOutput, user_rows: torch.Tensor, positive_rows: torch.Tensor, negative_rows: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Model-specific loss terms over the batch's (user, positive, negative) triples, as rows of ``out``
        (already weighted); none by default."""
        return {}

    def start_epoch(self, graph: dict[str, torch.Tensor], generator: torch.Generator) -> None:
        """Called before every training epoch with a generator seeded by (seed, epoch); nothing by default.

        A model that redraws part of its structure each epoch (FREEDOM's pruned graph) draws it here, from
        ``generator`` only, so a resumed run draws what the uninterrupted one did.
        """
