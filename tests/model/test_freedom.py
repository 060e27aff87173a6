"""FREEDOM: the frozen mixed item graph, degree-sensitive pruning, the item rows and the modality losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recgoat_cli.graphs.user_item import normalized_bipartite_adjacency
from recgoat_cli.model.freedom import (
    Freedom,
    degree_sensitive_probabilities,
    frozen_item_graph,
    knn_item_graph,
    modality_mix_weights,
    sample_kept_edges,
)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["text"], [1.0]),
        (["image"], [1.0]),
        (["image", "text"], [0.1, 0.9]),
        (["text", "image"], [0.9, 0.1]),
        (["image", "audio", "text"], [0.1, 0.45, 0.45]),
        (["audio", "text"], [0.5, 0.5]),
    ],
)
def test_mix_weights(names, expected):
    assert modality_mix_weights(names, 0.1) == pytest.approx(expected)


# a: items 0,1 point one way and 2,3 the other; b: items 0,2 and 1,3 pair up instead
A = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
B = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])


def test_knn_graph_includes_the_item_and_normalises_by_row_sums():
    indices, values = knn_item_graph(A, 2)
    edges = {(int(r), int(c)) for r, c in indices.T}
    assert edges == {(0, 0), (0, 1), (1, 1), (1, 0), (2, 2), (2, 3), (3, 3), (3, 2)}
    # every row has k = 2 entries, so D^-1/2 A D^-1/2 is 1/sqrt(2) * 1/sqrt(2) = 1/2 everywhere
    assert torch.allclose(values, torch.full((8,), 0.5))


def test_frozen_graph_mixes_the_modalities():
    graph = frozen_item_graph([A, B], [0.1, 0.9], 2).to_dense()
    expected = torch.tensor(
        [
            [0.5, 0.05, 0.45, 0.0],  # self in both (0.1 * 0.5 + 0.9 * 0.5), item 1 in a only, item 2 in b only
            [0.05, 0.5, 0.0, 0.45],
            [0.45, 0.0, 0.5, 0.05],
            [0.0, 0.45, 0.05, 0.5],
        ]
    )
    assert torch.allclose(graph, expected)


def test_degree_sensitive_probabilities():
    # user 0 has items 0 and 1, user 1 has item 1: d_u = (2, 1), d_i = (1, 2)
    users, items = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1])
    expected = torch.tensor([1 / math.sqrt(2 * 1), 1 / math.sqrt(2 * 2), 1 / math.sqrt(1 * 2)])
    assert torch.allclose(degree_sensitive_probabilities(users, items, 2, 2), expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pruning_keeps_floor_share_without_replacement_and_skips_zero_probability(seed):
    probabilities = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.5])
    kept = sample_kept_edges(probabilities, 0.5, torch.Generator().manual_seed(seed))
    assert kept.numel() == 2  # floor(5 * 0.5)
    assert len(set(kept.tolist())) == 2 and 1 not in kept.tolist()
    again = sample_kept_edges(probabilities, 0.5, torch.Generator().manual_seed(seed))
    assert torch.equal(kept, again)


def test_pruning_prefers_low_degree_edges():
    # edge 0 has probability 1, edge 1 has 1/16: kept alone (dropout 0.5 of 2 edges) it is edge 0 about 16/17 of the time
    probabilities = torch.tensor([1.0, 1 / 16])
    generator = torch.Generator().manual_seed(0)
    first = sum(int(sample_kept_edges(probabilities, 0.5, generator)[0]) == 0 for _ in range(2000))
    assert abs(first / 2000 - 16 / 17) < 0.03


def _tiny(n_users=3, n_items=4, dim=4, **kwargs):
    torch.manual_seed(0)
    users = torch.tensor([0, 0, 1, 1, 2, 2])
    items = torch.tensor([0, 1, 1, 2, 2, 3])
    graph = {
        "adjacency": normalized_bipartite_adjacency(users.numpy(), items.numpy(), n_users, n_items, layout="csr"),
        "item_item": frozen_item_graph([A, B], [0.1, 0.9], 2),
        "ui_pairs": torch.stack([users, items]),
        "feat:image": A,
        "feat:text": B * 2,
    }
    args = dict(n_users=n_users, n_items=n_items, dim=dim, n_layers=0, modalities=[["image", 2], ["text", 2]], mm_layers=1) | kwargs
    return Freedom(**args), graph


def test_item_rows_add_the_frozen_graph_propagation():
    model, graph = _tiny()
    model.eval()
    out = model(graph)
    ids = model.item_embedding.weight
    # no user-item layers: users are their ID rows, items their ID rows plus S @ ID rows
    assert torch.allclose(out.users, model.user_embedding.weight)
    assert torch.allclose(out.items, ids + graph["item_item"].to_dense() @ ids, atol=1e-6)
    assert out.views == {}


def test_pruned_graph_is_used_in_training_only_and_renormalised():
    model, graph = _tiny(n_layers=1, dropout=0.5)
    model.train()
    model.start_epoch(graph, torch.Generator().manual_seed(0))
    pruned = model.train_adjacency.to_dense()
    assert int((pruned != 0).sum()) == 2 * 3  # floor(6 * 0.5) edges, both directions
    assert torch.allclose(pruned, pruned.T)
    # each kept edge weighs 1 / sqrt(d_u d_i) with the kept graph's degrees
    block = pruned[:3, 3:] != 0
    du, di = block.sum(1).double(), block.sum(0).double()
    expected = torch.where(block, 1 / torch.sqrt(du[:, None] * di[None, :]).clamp(min=1e-12), torch.zeros(()))
    assert torch.allclose(pruned[:3, 3:].double(), expected)
    ego = torch.cat([model.user_embedding.weight, model.item_embedding.weight])
    trained = model(graph)
    assert torch.allclose(trained.users, ((ego + pruned @ ego) / 2)[:3], atol=1e-6)
    model.eval()
    full = graph["adjacency"].to_dense()
    assert torch.allclose(model(graph).users, ((ego + full @ ego) / 2)[:3], atol=1e-6)


def test_no_dropout_trains_on_the_full_graph():
    model, graph = _tiny(dropout=0.0)
    model.train()
    model.start_epoch(graph, torch.Generator().manual_seed(0))
    assert model.train_adjacency is None


def test_modality_bpr_terms_by_hand():
    model, graph = _tiny(modality_weight=0.5)
    model.train()
    users, items = torch.tensor([0, 2]), torch.tensor([1, 3, 0])
    out = model(graph, users, items)
    user_rows, positive_rows, negative_rows = torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 2])
    losses = model.pairwise_losses(out, user_rows, positive_rows, negative_rows)
    assert set(losses) == {"bpr_image", "bpr_text"}
    u = model.user_embedding.weight[users]
    for name, features in (("image", A), ("text", B * 2)):
        projected = features[items] @ model.projections[name].weight.T + model.projections[name].bias
        positive = (u * projected[positive_rows]).sum(-1)
        negative = (u * projected[negative_rows]).sum(-1)
        expected = 0.5 * -F.logsigmoid(positive - negative).mean()
        assert torch.allclose(losses[f"bpr_{name}"], expected, atol=1e-6)
    sum(losses.values()).backward()
    # the feature tables learn (through their offsets), as MMRec's unfrozen feature embeddings do
    assert model.feature_offsets["text"].grad[items].abs().sum() > 0
    assert model.feature_offsets["text"].grad[2].abs().sum() == 0  # item 2 is in no triple
    assert model.projections["image"].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("n_users", "n_items", "dim"), [(3, 4, 2), (3, 4, 8)])
def test_shapes_and_selected_rows(n_users, n_items, dim):
    model, graph = _tiny(n_users, n_items, dim, n_layers=2)
    model.eval()
    full = model(graph)
    part = model(graph, torch.tensor([2, 0]), torch.tensor([3, 1]))
    assert full.users.shape == (n_users, dim) and full.items.shape == (n_items, dim)
    assert torch.allclose(part.users, full.users[[2, 0]]) and torch.allclose(part.items, full.items[[3, 1]])
    assert "modalities=[('image', 2), ('text', 2)]" in repr(model)


def test_state_dict_round_trip_rebuilds_the_model():
    model, graph = _tiny()
    model.eval()
    clone, _ = _tiny()
    torch.nn.init.zeros_(clone.user_embedding.weight)
    clone.load_state_dict(model.state_dict())
    clone.eval()
    assert np.allclose(clone(graph).items.detach().numpy(), model(graph).items.detach().numpy())


def test_without_modality_losses_there_are_no_projection_parameters():
    model, graph = _tiny(modality_weight=0.0)
    model.train()
    out = model(graph)
    assert out.views == {} and len(model.projections) == 0 and len(model.feature_offsets) == 0
    assert model.pairwise_losses(out, torch.tensor([0]), torch.tensor([0]), torch.tensor([1])) == {}
