"""The reference RecGOAT's parts (``--preset reference``): d x d transport cost and plan, the map fusion, the
reference composition of CMCL, and that training reaches every trainable part."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import torch

from recgoat_cli.model.cmcl import reference_cmcl
from recgoat_cli.model.fusion import TransportMapFusion, transport_mix_init
from recgoat_cli.model.oat import dimension_cost, dimension_plan
from recgoat_cli.model.recgoat import RecGOAT

from test_recgoat import toy_graph


@pytest.mark.parametrize(("n", "d"), [(7, 4), (50, 16)])
def test_dimension_cost_equals_the_naive_items_x_d_x_d_formula(n, d):
    torch.manual_seed(n)
    x, y = torch.randn(n, d, dtype=torch.float64), torch.randn(n, d, dtype=torch.float64)
    naive = (x.unsqueeze(2) - y.unsqueeze(1)).pow(2).mean(0) * 100  # what the reference code builds, [n, d, d]
    torch.testing.assert_close(dimension_cost(x, y, scale=100), naive, rtol=1e-5, atol=0)


def test_dimension_cost_by_hand():
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    y = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    # C[a, b] = mean_i (x[i, a] - y[i, b])^2: C[0,0] = (1 + 4)/2, C[0,1] = (0 + 4)/2, C[1,0] = (0 + 1)/2, C[1,1] = (1 + 1)/2
    assert dimension_cost(x, y).tolist() == [[2.5, 2.0], [0.5, 1.0]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dimension_plan_matches_pots_reference_solver(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((30, 6)), rng.standard_normal((30, 6))
    scale, reg = 1.0, 0.5
    result = dimension_plan(torch.from_numpy(x), torch.from_numpy(y), scale=scale, reg=reg, n_iter_max=5000, tol=1e-12)
    cost = ((x[:, :, None] - y[:, None, :]) ** 2).mean(0) * scale
    uniform = np.full(6, 1 / 6)
    expected = ot.sinkhorn(uniform, uniform, cost, reg, method="sinkhorn", numItermax=5000, stopThr=1e-12)
    np.testing.assert_allclose(result.plan.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(result.plan.sum(0).numpy(), uniform, atol=1e-10)
    np.testing.assert_allclose(result.plan.sum(1).numpy(), uniform, atol=1e-10)


def test_dimension_plan_stays_finite_where_the_exp_domain_kernel_underflows():
    # reference settings: cost x100, eps 0.01, so exp(-C / eps) is 0 in float32 for every entry
    torch.manual_seed(0)
    x = torch.randn(200, 8)
    y = x[:, torch.randperm(8)] + 0.3 * torch.randn(200, 8)
    cost = dimension_cost(x, y, scale=100)
    assert bool((torch.exp(-cost / 0.01) == 0).all())
    plan = dimension_plan(x, y, scale=100, reg=0.01).plan
    assert torch.isfinite(plan).all()
    torch.testing.assert_close(plan.sum(0), torch.full((8,), 1 / 8), atol=1e-6, rtol=0)
    # so sharp that it is the assignment of each dimension to its cheapest partner: a permutation / d
    assert torch.equal(plan.argmax(1), cost.argmin(1)) and torch.allclose(plan.max(1).values, torch.full((8,), 1 / 8), atol=1e-6)


def test_mix_init_follows_the_reference_and_keeps_the_id_view_positive():
    assert transport_mix_init(["image", "text"]) == [0.05, 0.8]
    assert transport_mix_init(["text"]) == [0.8]
    assert transport_mix_init(["image", "audio"]) == [0.05, 0.05]
    scaled = transport_mix_init(["text", "text_b"])  # 0.85 in all, so 0.8 and 0.05 stand
    assert scaled == [0.8, 0.05]
    crowded = transport_mix_init(["text", "image", "audio", "extra"])  # 0.95 > 0.85: scaled down to 0.85
    assert math.isclose(sum(crowded), 0.85) and crowded[0] == pytest.approx(0.8 * 0.85 / 0.95)


def test_map_fusion_equals_a_hand_computation_on_3_items_and_4_dims():
    cf = torch.tensor([[1.0, 0.0, 2.0, -1.0], [0.0, 1.0, 0.0, 1.0], [2.0, -1.0, 1.0, 0.0]])
    # the text rows are the ID rows with dimensions permuted (0->1, 1->2, 2->3, 3->0) and scaled by 3: the cost of
    # sending text dimension a to ID dimension b is 0 only for b = perm[a], so the sharp plan is that permutation / 4
    perm = [1, 2, 3, 0]
    text = torch.zeros(3, 4)
    for a, b in enumerate(perm):
        text[:, a] = cf[:, b]
    fusion = TransportMapFusion(4, ["text"], scale=100.0, reg=0.01, dropout=0.0).eval()
    delta = torch.tensor([[0.1, 0.0, 0.0, 0.0], [0.0, 0.2, 0.0, 0.0], [0.0, 0.0, -0.1, 0.0], [0.0, 0.0, 0.0, 0.3]])
    with torch.no_grad():
        fusion.delta.copy_(delta.unsqueeze(0))
    out = fusion(cf, [text])
    # by hand: T = P / 4 with P[a, perm[a]] = 1; aligned = text (T + delta); z = 0.2 cf + 0.8 aligned
    T = np.zeros((4, 4))
    for a, b in enumerate(perm):
        T[a, b] = 0.25
    z = 0.2 * cf.numpy() + 0.8 * text.numpy() @ (T + delta.numpy())
    z = (z - z.mean(1, keepdims=True)) / np.sqrt(z.var(1, keepdims=True) + 1e-5)  # LayerNorm (weight 1, bias 0)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    np.testing.assert_allclose(out.detach().numpy(), z, rtol=1e-5, atol=1e-6)
    # rows: the same rows of the full result; the plan still comes from all items
    np.testing.assert_allclose(fusion(cf, [text], torch.tensor([2, 0])).detach().numpy(), z[[2, 0]], rtol=1e-5, atol=1e-6)
    # plan "none" (the reference's underflowed plan): aligned = text @ delta
    fusion.plan = "none"
    z0 = 0.2 * cf.numpy() + 0.8 * text.numpy() @ delta.numpy()
    z0 = (z0 - z0.mean(1, keepdims=True)) / np.sqrt(z0.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(fusion(cf, [text]).detach().numpy(), z0 / np.linalg.norm(z0, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def _nce_by_hand(a: np.ndarray, b: np.ndarray, temperature: float) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    losses = []
    for k in range(len(a)):
        logits = [float(a[k] @ b[j]) / temperature for j in range(len(b))]
        losses.append(-(logits[k] - math.log(sum(math.exp(v) for v in logits))))
    return sum(losses) / len(losses)


def test_reference_cmcl_equals_a_hand_computation():
    rng = np.random.default_rng(3)
    users, fused = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    pos = [rng.standard_normal((4, 5)) for _ in range(3)]  # cf, image, text
    neg = [rng.standard_normal((4, 5)) for _ in range(3)]
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    got = reference_cmcl(t(users), t(fused), [t(v) for v in pos], [t(v) for v in neg], temperature=0.2, modality_weight=0.5)
    pairs = [(0, 1), (0, 2), (1, 2)]
    views = [_nce_by_hand(side[a], side[b], 0.2) for side in (pos, neg) for a, b in pairs]
    expected = 0.5 * _nce_by_hand(users, fused, 0.2) + 0.5 * sum(views) / 6
    assert float(got) == pytest.approx(expected, rel=1e-9)
    # minimised: aligned views score lower than misaligned ones (the reference's 1 - NCE would reward the latter)
    aligned = reference_cmcl(t(users), t(users), [t(pos[0])] * 3, [t(neg[0])] * 3)
    assert float(aligned) < float(got)
    # one view: only the user-item term
    assert float(reference_cmcl(t(users), t(fused), [t(pos[0])], [t(neg[0])])) == pytest.approx(_nce_by_hand(users, fused, 0.2), rel=1e-9)


def reference_model(graph, modalities, n_users, n_items, **overrides):
    args = dict(
        graphs=("item",), gat_layers=2, gat_heads=2, item_branch="reference", fusion="oat-map", oat=False,
        cmcl_form="reference", lambda_cmcl=0.01,
    ) | overrides
    return RecGOAT(n_users, n_items, 8, 2, modalities, 0, **args)


@pytest.mark.filterwarnings("ignore::recgoat_cli.model.oat.SinkhornNotConverged")
def test_reference_training_step_reaches_the_map_the_weights_the_projections_and_the_attention():
    graph, modalities, _ = toy_graph(16, 12)
    torch.manual_seed(0)
    model = reference_model(graph, modalities, 16, 12)
    users, items = torch.arange(16), torch.arange(12)
    out = model(graph, users, items)
    user_rows, pos_rows, neg_rows = torch.arange(16), torch.arange(16) % 12, (torch.arange(16) + 5) % 12
    terms = model.auxiliary_losses(out, users, torch.unique(pos_rows), triples=(user_rows, pos_rows, neg_rows))
    assert set(terms) == {"cmcl"}
    scores = (out.users[user_rows] * out.items[pos_rows]).sum(-1) - (out.users[user_rows] * out.items[neg_rows]).sum(-1)
    (torch.nn.functional.softplus(-scores).mean() + terms["cmcl"]).backward()
    named = dict(model.named_parameters())
    for name in ["item_fusion.delta", "item_fusion.mix", "project.text.weight", "project.image.weight",
                 "item_gat.text.layers.0.lin_src.weight", "item_gat.text.layers.1.att_src", "item_gat.image.layers.0.att_dst",
                 "user_embedding.weight", "item_embedding.weight"]:
        assert named[name].grad is not None and float(named[name].grad.abs().sum()) > 0, name
    # the plans were solved; on this 12-item toy with dropout the plan is near ties and 1000 iterations leave a
    # marginal error below 1e-3 (of marginals 1/8), which the convergence warning reports
    assert set(model.item_fusion.last_marginal_error) == {"text", "image"}
    assert max(model.item_fusion.last_marginal_error.values()) <= 1e-3


def test_reference_branch_batch_rows_equal_the_full_forward_rows():
    graph, modalities, _ = toy_graph(12, 10)
    torch.manual_seed(0)
    model = reference_model(graph, modalities, 12, 10).eval()
    full = model(graph)
    users, items = torch.tensor([1, 4]), torch.tensor([0, 3, 9])
    part = model(graph, users, items)
    torch.testing.assert_close(part.items, full.items[items])
    torch.testing.assert_close(part.users, full.users[users])
    assert torch.allclose(full.items.norm(dim=1), torch.ones(10))  # L2-normalised items


def test_reference_branch_refuses_id_messages_and_map_fusion_needs_a_modality():
    graph, modalities, _ = toy_graph(8, 6)
    with pytest.raises(ValueError, match="gat_values"):
        reference_model(graph, modalities, 8, 6, gat_values="id")
    with pytest.raises(ValueError, match="oat-map"):
        RecGOAT(8, 6, 8, 2, [], 0, fusion="oat-map")


def test_init_std_draws_the_id_tables_from_a_normal_and_zero_keeps_xavier():
    graph, modalities, _ = toy_graph(400, 300)
    torch.manual_seed(0)
    normal = reference_model(graph, modalities, 400, 300, init_std=0.1)
    for table in (normal.user_embedding.weight, normal.item_embedding.weight):
        assert abs(float(table.std()) - 0.1) < 0.005 and abs(float(table.mean())) < 0.005
    xavier = reference_model(graph, modalities, 400, 300)
    bound = (6 / (400 + 8)) ** 0.5  # Xavier uniform of the [400, 8] user table
    assert float(xavier.user_embedding.weight.abs().max()) <= bound
