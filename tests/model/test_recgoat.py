"""RecGOAT's composition: batch-restricted forward equals the full forward, losses are finite, ablations run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recgoat_cli.graphs.item_knn import blockwise_topk_cosine, knn_graph
from recgoat_cli.graphs.user_item import normalized_bipartite_adjacency, user_item_edges
from recgoat_cli.model.recgoat import RecGOAT, restrict_edges


def toy_graph(n_users: int, n_items: int, seed: int = 0, modalities=(("text", 12), ("image", 6)), user_dim: int = 8):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), 4)
    items = np.concatenate([rng.choice(n_items, 4, replace=False) for _ in range(n_users)])
    users, items = user_item_edges(users, items, n_users, n_items)
    graph = {"adjacency": normalized_bipartite_adjacency(users, items, n_users, n_items).to_sparse_csr()}
    for name, dim in modalities:
        features = rng.standard_normal((n_items, dim)).astype(np.float32)
        graph[f"feat:{name}"] = torch.nn.functional.normalize(torch.from_numpy(features), dim=1)
        rows, cols, weights = knn_graph(*blockwise_topk_cosine(features, 3), n_items, normalize="sym")
        graph[f"item_edges:{name}"] = torch.from_numpy(np.stack([rows, cols]))
        graph[f"item_weights:{name}"] = torch.from_numpy(weights)
    user_features = rng.standard_normal((n_users, user_dim)).astype(np.float32)
    graph["user_feat"] = torch.from_numpy(user_features)
    rows, cols, weights = knn_graph(*blockwise_topk_cosine(user_features, 3), n_users, normalize="sym")
    graph["user_edges"], graph["user_weights"] = torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(weights)
    graph["ui_edges"] = torch.from_numpy(np.stack([items, users]))
    return graph, [list(m) for m in modalities], user_dim


def test_restrict_edges_keeps_edges_into_nodes_and_renumbers():
    edges = torch.tensor([[0, 1, 2, 3], [1, 2, 1, 0]])
    kept, weights = restrict_edges(edges, torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1, 3]), 4)
    # edges into node 1 (position 0): 0->1 and 2->1; none into node 3
    assert kept.tolist() == [[0, 2], [0, 0]]
    assert weights.tolist() == [1.0, 3.0]


@pytest.mark.parametrize("gat_values", ["lm", "id"])
@pytest.mark.parametrize(("n_users", "n_items", "gat_layers", "heads"), [(12, 10, 1, 1), (20, 15, 2, 2)])
def test_batch_forward_equals_full_forward(n_users, n_items, gat_layers, heads, gat_values):
    graph, modalities, user_dim = toy_graph(n_users, n_items)
    torch.manual_seed(0)
    model = RecGOAT(n_users, n_items, 8, 2, modalities, user_dim, gat_layers=gat_layers, gat_heads=heads, gat_values=gat_values).eval()
    full = model(graph)
    users, items = torch.tensor([0, 3, 5]), torch.tensor([1, 2, 7, 9])
    part = model(graph, users, items)
    assert full.users.shape == (n_users, 8) and full.items.shape == (n_items, 8)
    assert torch.allclose(part.users, full.users[users], atol=1e-5)
    assert torch.allclose(part.items, full.items[items], atol=1e-5)
    for key, view in part.views.items():
        rows = users if key.startswith("user:") else items
        assert torch.allclose(view, full.views[key][rows], atol=1e-5), key


def test_losses_are_finite_and_reach_every_part():
    graph, modalities, user_dim = toy_graph(16, 12)
    torch.manual_seed(0)
    model = RecGOAT(16, 12, 8, 2, modalities, user_dim)
    out = model(graph, torch.arange(16), torch.arange(12))
    terms = model.auxiliary_losses(out, torch.arange(16), torch.arange(12))
    assert set(terms) == {"cmcl", "oat"}
    assert all(torch.isfinite(t) and t > 0 for t in terms.values())
    (out.users.sum() + out.items.sum() + sum(terms.values())).backward()
    for name in ("project.text.weight", "item_gat.image.last.lin_src.weight", "user_item_gat.last.lin_src.weight", "user_project.weight", "item_fusion.weight_logits"):
        param = dict(model.named_parameters())[name]
        assert param.grad is not None and bool(param.grad.abs().sum() > 0), name
    weights = model.fusion_weights()
    assert abs(sum(weights["item"].values()) - 1) < 1e-6 and set(weights["user"]) == {"id", "items", "lm"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"graphs": ["item"]},
        {"graphs": ["user-item", "user-user"]},
        {"graphs": []},
        {"gat_layers": 0},
        {"fusion": "concat"},
        {"fusion": "sum"},
        {"fusion": "residual"},
        {"cmcl": False, "oat": False},
    ],
)
def test_ablations_run(kwargs):
    graph, modalities, user_dim = toy_graph(10, 9)
    model = RecGOAT(10, 9, 8, 1, modalities, user_dim if "user-user" in kwargs.get("graphs", ["user-user"]) else 0, **kwargs)
    out = model(graph, torch.arange(10), torch.arange(9))
    terms = model.auxiliary_losses(out, torch.arange(10), torch.arange(9))
    assert out.users.shape == (10, 8) and out.items.shape == (9, 8)
    if not kwargs.get("cmcl", True):
        assert "cmcl" not in terms and "oat" not in terms


def test_no_modalities_is_lightgcn_with_fusion_of_one_view():
    graph, _, _ = toy_graph(8, 7, modalities=())
    model = RecGOAT(8, 7, 4, 2, [], 0).eval()
    out = model(graph)
    assert model.item_views == ["id"] and model.user_views == ["id"]
    assert torch.allclose(out.items, out.views["item:id"])


def test_residual_fusion_with_the_other_views_off_scores_like_its_lightgcn_backbone():
    from recgoat_cli.model.lightgcn import LightGCN

    graph, modalities, user_dim = toy_graph(9, 8)
    torch.manual_seed(0)
    model = RecGOAT(9, 8, 4, 2, modalities, user_dim, fusion="residual", gat_values="id").eval()
    backbone = LightGCN(9, 8, 4, 2).eval()
    backbone.user_embedding.weight.data.copy_(model.user_embedding.weight.data)
    backbone.item_embedding.weight.data.copy_(model.item_embedding.weight.data)
    with torch.no_grad():
        model.item_fusion.coefficients.zero_()
        model.user_fusion.coefficients.zero_()
    out, expected = model(graph), backbone(graph)
    torch.testing.assert_close(out.users @ out.items.T, expected.users @ expected.items.T)
    assert model.fusion_weights()["item"] == {"id": 1.0, "text": 0.0, "image": 0.0}


@pytest.mark.parametrize("weighted", [True, False])
def test_incoming_edges_restrict_like_restrict_edges(weighted):
    from recgoat_cli.model.recgoat import IncomingEdges

    generator = torch.Generator().manual_seed(0)
    edges = torch.randint(0, 30, (2, 200), generator=generator)
    weights = torch.rand(200, generator=generator) if weighted else None
    nodes = torch.tensor([29, 3, 7, 11, 0])  # any order: positions follow ``nodes``
    got_edges, got_weights = IncomingEdges(edges, weights, 30).restrict(nodes)
    expected_edges, expected_weights = restrict_edges(edges, weights, nodes, 30)
    assert bool((got_edges[1][1:] >= got_edges[1][:-1]).all())  # grouped by destination position
    key = lambda e, w: sorted(zip(e[0].tolist(), e[1].tolist(), (w if w is not None else torch.zeros(e.size(1))).tolist()))
    assert key(got_edges, got_weights) == key(expected_edges, expected_weights)


def test_incoming_edges_count_is_the_restricted_size():
    from recgoat_cli.model.recgoat import IncomingEdges

    # edges into node 0: two, into node 2: three, into node 1: none
    edges = torch.tensor([[1, 2, 0, 1, 3, 0], [0, 2, 2, 0, 2, 3]])
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    incoming = IncomingEdges(edges, weights, 4)
    nodes = torch.tensor([2, 1, 0])
    assert int(incoming.count(nodes)) == 5
    plain_edges, plain_weights = incoming.restrict(nodes)
    sized_edges, sized_weights = incoming.restrict(nodes, size=5)
    assert sized_edges.tolist() == plain_edges.tolist() == [[2, 0, 3, 1, 1], [0, 0, 0, 2, 2]]
    assert sized_weights.tolist() == plain_weights.tolist() == pytest.approx([0.2, 0.3, 0.5, 0.1, 0.4])


@pytest.mark.parametrize("n_users,n_items", [(40, 12), (12, 40)])
def test_batch_forward_equals_full_forward_on_sparse_and_dense_paths(n_users, n_items):
    # a small batch in a large graph uses only part of the source rows; the other side uses most of them
    graph, modalities, user_dim = toy_graph(n_users, n_items)
    torch.manual_seed(0)
    model = RecGOAT(n_users, n_items, 8, 2, modalities, user_dim, gat_heads=2).eval()
    full = model(graph)
    users, items = torch.tensor([1, 2]), torch.tensor([0, 5])
    for _ in range(2):  # the second call reuses the cached destination index
        part = model(graph, users, items)
        for key, view in part.views.items():
            rows = users if key.startswith("user:") else items
            assert torch.allclose(view, full.views[key][rows], atol=1e-5), key


@pytest.mark.parametrize("gat_values", ["lm", "id"])
@pytest.mark.parametrize("gat_layers", [1, 2])
def test_batch_gradients_equal_full_gradients(gat_layers, gat_values):
    """The training path (restricted, feature-space attention) gives every parameter the full forward's gradient."""
    graph, modalities, user_dim = toy_graph(14, 11)
    torch.manual_seed(0)
    model = RecGOAT(14, 11, 8, 2, modalities, user_dim, gat_layers=gat_layers, gat_dropout=0.0, gat_values=gat_values)
    users, items = torch.tensor([1, 4, 6, 13]), torch.tensor([0, 3, 8])
    parameters = [p for p in model.parameters() if p.requires_grad]

    def objective(out, user_rows, item_rows):
        views = sum(v.square().sum() for v in out.views.values() if v.size(0) in (len(users), len(items)))
        return (out.users[user_rows] @ out.items[item_rows].T).sum() + views

    part = model(graph, users, items)
    part_grads = torch.autograd.grad(objective(part, slice(None), slice(None)), parameters, allow_unused=True)
    full = model(graph)
    full.views.update({k: v[users if k.startswith("user:") else items] for k, v in full.views.items()})
    full_grads = torch.autograd.grad(objective(full, users, items), parameters, allow_unused=True)
    for (name, _), got, expected in zip(model.named_parameters(), part_grads, full_grads):
        if expected is None:
            assert got is None or bool((got == 0).all()), name
        else:
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5, msg=name)


def test_id_values_propagate_collaborative_embeddings_over_content_graphs():
    """With gat_values="id" an item's modality view is a convex mix of its content neighbours' ID embeddings."""
    graph, modalities, user_dim = toy_graph(10, 9)
    torch.manual_seed(0)
    model = RecGOAT(10, 9, 8, 2, modalities, user_dim, gat_values="id").eval()
    out = model(graph)
    edges = graph["item_edges:text"]
    ids = out.views["item:id"]
    for item in range(9):
        neighbours = ids[edges[0, edges[1] == item]]
        # a convex combination: it lies within the neighbours' per-coordinate range
        view = out.views["item:text:graph"][item]
        assert bool((view >= neighbours.min(0).values - 1e-6).all() and (view <= neighbours.max(0).values + 1e-6).all())


def test_id_values_align_each_modalitys_own_projection_to_the_id_view():
    graph, modalities, user_dim = toy_graph(10, 9)
    torch.manual_seed(0)
    model = RecGOAT(10, 9, 8, 2, modalities, user_dim, gat_values="id")
    out = model(graph, torch.arange(10), torch.arange(9))
    expected = model.project["text"](graph["feat:text"])
    torch.testing.assert_close(out.views["item:text"], expected)  # the aligned view is the LM projection
    assert "user:items" not in out.views and "user:items:graph" in out.views
    terms = model.auxiliary_losses(out, torch.arange(10), torch.arange(9))
    sum(terms.values()).backward()
    assert bool(model.project["text"].weight.grad.abs().sum() > 0)
    # the ID view is the alignment's fixed target: no gradient reaches the ID embeddings from CMCL or OAT
    assert model.item_embedding.weight.grad is None and model.user_embedding.weight.grad is None


def test_lm_values_alignment_sends_no_gradient_to_the_id_embeddings():
    """With gat_values="lm" too, CMCL and OAT move the content views, never the ID view (which BPR trains): the
    alignment's gradient on the ID side collapsed training to ln 2 on ml-100k. (With the user-item graph, the
    user ID embedding is also the attention's query, so the user-item view's alignment reaches it that way.)"""
    graph, modalities, user_dim = toy_graph(10, 9)
    torch.manual_seed(0)
    model = RecGOAT(10, 9, 8, 2, modalities, user_dim, gat_values="lm", graphs=("item", "user-user"))
    out = model(graph, torch.arange(10), torch.arange(9))
    terms = model.auxiliary_losses(out, torch.arange(10), torch.arange(9))
    assert set(terms) == {"cmcl", "oat"}
    sum(terms.values()).backward()
    assert bool(model.project["text"].weight.grad.abs().sum() > 0) and bool(model.user_project.weight.grad.abs().sum() > 0)
    assert model.item_embedding.weight.grad is None and model.user_embedding.weight.grad is None
