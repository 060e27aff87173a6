"""BPR negatives are never a train positive of the user, and epochs are reproducible from the seed."""

from __future__ import annotations

import pytest
import torch

from recgoat_cli.data.sampling import NegativeSampler


@pytest.mark.parametrize(("n_users", "n_items", "per_user"), [(5, 6, 4), (50, 30, 10), (200, 400, 3)])
def test_negatives_are_not_positives(n_users, n_items, per_user):
    g = torch.Generator().manual_seed(0)
    users = torch.arange(n_users).repeat_interleave(per_user)
    items = torch.stack([torch.randperm(n_items, generator=g)[:per_user] for _ in range(n_users)]).reshape(-1)
    sampler = NegativeSampler(users, items, n_items)
    u, i, j = sampler.epoch(torch.Generator().manual_seed(1))
    positives = set(zip(users.tolist(), items.tolist()))
    assert len(u) == len(users)
    assert sorted(zip(u.tolist(), i.tolist())) == sorted(positives)
    assert not any((a, b) in positives for a, b in zip(u.tolist(), j.tolist()))


def test_same_seed_same_epoch():
    users = torch.tensor([0, 0, 1, 1, 2])
    items = torch.tensor([0, 1, 1, 2, 0])
    sampler = NegativeSampler(users, items, 4)
    a = sampler.epoch(torch.Generator().manual_seed(3))
    b = sampler.epoch(torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_user_with_every_item_is_refused():
    with pytest.raises(ValueError, match="every item"):
        NegativeSampler(torch.tensor([0, 0]), torch.tensor([0, 1]), 2)
