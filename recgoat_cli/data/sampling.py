"""BPR training triples: every train interaction once per epoch, with a negative the user never had in train."""

from __future__ import annotations

import torch


class NegativeSampler:
    """Draws (user, positive, negative) triples; negatives exclude the user's train positives.

    Shapes:
        train_users, train_items: [n] int64 (the train split)
        returns three [n] int64 tensors, shuffled, one triple per train interaction
    """

    def __init__(self, train_users: torch.Tensor, train_items: torch.Tensor, n_items: int, max_rounds: int = 100):
        self.users = train_users.long()
        self.items = train_items.long()
        self.n_items = n_items
        self.max_rounds = max_rounds
        self.positive_keys = torch.sort(self.users * n_items + self.items).values
        degree = torch.bincount(self.users)
        if bool((degree >= n_items).any()):
            full = int(torch.nonzero(degree >= n_items)[0])
            raise ValueError(f"user {full} has every item as a train positive; no negative can be drawn")

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = users * self.n_items + items
        pos = torch.searchsorted(self.positive_keys, keys).clamp(max=len(self.positive_keys) - 1)
        return self.positive_keys[pos] == keys

    def epoch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One epoch's triples. Under torchrun every rank draws the whole epoch from the same seed and takes its
        rows of each batch (``distributed.rank_rows``), so the triples match a single-process run."""
        order = torch.randperm(len(self.users), generator=generator)
        negatives = torch.randint(self.n_items, (len(self.users),), generator=generator)
        users, positives = self.users[order], self.items[order]
        for _ in range(self.max_rounds):
            clash = self.is_positive(users, negatives)
            if not bool(clash.any()):
                return users, positives, negatives
            negatives[clash] = torch.randint(self.n_items, (int(clash.sum()),), generator=generator)
        raise RuntimeError("negative sampling did not converge; a user has almost every item as a positive")
