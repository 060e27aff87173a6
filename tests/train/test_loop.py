"""The training loop's batch preparation (tests/train mirrors recgoat_cli/train)."""

import torch

from recgoat_cli.train.loop import prepare_batch


def test_prepare_batch_unique_ids_and_rows():
    u, i, j = torch.tensor([5, 2, 5]), torch.tensor([7, 3, 7]), torch.tensor([1, 7, 4])
    batch = prepare_batch(u, i, j, torch.device("cpu"))
    assert batch.users is u and batch.positives is i and batch.negatives is j  # on the CPU nothing is copied
    assert batch.batch_users.tolist() == [2, 5] and batch.user_rows.tolist() == [1, 0, 1]
    assert batch.batch_items.tolist() == [1, 3, 4, 7]
    assert batch.pos_rows.tolist() == [3, 1, 3] and batch.neg_rows.tolist() == [0, 3, 2]
    assert batch.positive_rows.tolist() == [1, 3]
    # every triple's rows address its own ids
    assert batch.batch_users[batch.user_rows].tolist() == u.tolist()
    assert batch.batch_items[batch.pos_rows].tolist() == i.tolist() and batch.batch_items[batch.neg_rows].tolist() == j.tolist()


def test_prepare_batch_copies_to_another_device_in_one_piece():
    # "meta" stands in for a GPU: the parts arrive as views of one copied tensor, with the same shapes
    u, i, j = torch.tensor([5, 2, 5]), torch.tensor([7, 3, 7]), torch.tensor([1, 7, 4])
    batch = prepare_batch(u, i, j, torch.device("meta"))
    assert all(part.device.type == "meta" for part in batch)
    assert [part.numel() for part in batch] == [3, 3, 3, 2, 3, 4, 3, 3, 2]
    assert batch.users._base is not None and all(part._base is batch.users._base for part in batch)
