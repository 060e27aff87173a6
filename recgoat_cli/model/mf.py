"""Matrix factorisation: one free embedding per user and item, scored by dot product."""

from __future__ import annotations

import torch
from torch import nn

from recgoat_cli.model.base import RecOutput, Recommender, select_rows


class MatrixFactorization(Recommender):
    r"""BPR-MF (Rendle et al., 2009): :math:`\hat y_{ui} = e_u^\top e_i`.

    Shapes:
        forward(graph) -> RecOutput(users [n_users, dim], items [n_items, dim]); the graph is unused
    """

    def __init__(self, n_users: int, n_items: int, dim: int):
        super().__init__()
        self.n_users, self.n_items, self.dim = n_users, n_items, dim
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)

    def forward(self, graph: dict[str, torch.Tensor] | None = None, users: torch.Tensor | None = None, items: torch.Tensor | None = None) -> RecOutput:
        return RecOutput(select_rows(self.user_embedding.weight, users), select_rows(self.item_embedding.weight, items))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(n_users={self.n_users}, n_items={self.n_items}, dim={self.dim})"
