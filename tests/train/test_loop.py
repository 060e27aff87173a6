"""The training loop's batch preparation (tests/train mirrors recgoat_cli/train)."""

import pytest
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


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_prepare_batch_on_cuda_matches_cpu():
    generator = torch.Generator().manual_seed(0)
    u, i, j = (torch.randint(0, 50, (64,), generator=generator) for _ in range(3))
    on_cpu = prepare_batch(u, i, j, torch.device("cpu"))
    on_gpu = prepare_batch(u, i, j, torch.device("cuda"))
    for name, expected in on_cpu._asdict().items():
        got = getattr(on_gpu, name)
        assert got.device.type == "cuda" and got.cpu().tolist() == expected.tolist(), name


@cuda
def test_fit_on_cuda_sums_the_epoch_losses(tmp_path):
    from recgoat_cli.data.sampling import NegativeSampler
    from recgoat_cli.graphs.user_item import normalized_bipartite_adjacency
    from recgoat_cli.model.lightgcn import LightGCN
    from recgoat_cli.train.loop import TrainSettings, fit

    users, items = torch.arange(40) % 20, (torch.arange(40) * 7) % 15
    adjacency = normalized_bipartite_adjacency(users.numpy(), items.numpy(), 20, 15).to_sparse_csr()
    settings = TrainSettings(epochs=2, batch_size=16, lr=1e-2, reg=1e-4, patience=5, eval_every=10, val_metric="r", seed=0)
    result = fit(LightGCN(20, 15, 8, 2).cuda(), {"adjacency": adjacency}, NegativeSampler(users, items, 15), lambda m: {"r": 0.0}, settings, tmp_path, {})
    for record in result.history:
        assert record["loss"] == pytest.approx(record["loss_bpr"] + record["loss_l2"]) and 0 < record["loss_bpr"] < 1.0
