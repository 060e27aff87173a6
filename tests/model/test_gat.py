"""Tests for recgoat_cli/model/gat.py: sparse GAT against a dense masked-softmax reference."""

import pytest
import torch
import torch.nn.functional as F

from recgoat_cli.model.gat import GATEncoder, SparseGATLayer
from recgoat_cli.model.scatter import available_backends


def unique_edges(num_src: int, num_dst: int, num_edges: int, seed: int) -> torch.Tensor:
    """``num_edges`` distinct (source, destination) pairs; the last destination never receives an edge."""
    generator = torch.Generator().manual_seed(seed)
    pairs = torch.randperm(num_src * (num_dst - 1), generator=generator)[:num_edges]
    return torch.stack([pairs % num_src, pairs // num_src])


def dense_gat_reference(layer, x_src, x_dst, edge_index, edge_weight=None):
    """Hand-written dense GAT: every (destination, source) pair scored, non-edges masked to -inf."""
    heads, width = layer.heads, layer.out_dim
    h_src = (x_src @ layer.lin_src.weight.T).view(-1, heads, width)
    h_dst = (x_dst @ layer.lin_dst.weight.T).view(-1, heads, width)
    score_src = torch.einsum("nhc,hc->nh", h_src, layer.att_src[0])
    score_dst = torch.einsum("nhc,hc->nh", h_dst, layer.att_dst[0])
    logits = F.leaky_relu(score_dst[:, None, :] + score_src[None, :, :], layer.negative_slope)  # [Nd, Ns, H]
    adjacency = torch.zeros(x_dst.size(0), x_src.size(0), dtype=torch.bool)
    adjacency[edge_index[1], edge_index[0]] = True
    if edge_weight is not None:
        log_weight = torch.zeros(x_dst.size(0), x_src.size(0), dtype=x_src.dtype)
        log_weight[edge_index[1], edge_index[0]] = edge_weight.log()
        logits = logits + log_weight[..., None]
    logits = logits.masked_fill(~adjacency[..., None], float("-inf"))
    alpha = torch.softmax(logits, dim=1).nan_to_num(0.0)  # rows without edges -> all zeros
    out = torch.einsum("ijh,jhc->ihc", alpha, h_src)
    out = out.reshape(x_dst.size(0), -1) if layer.concat else out.mean(1)
    if layer.residual is not None:
        out = out + layer.residual(x_dst)
    return out + layer.bias


def make_layer(in_dim, out_dim, **kwargs):
    torch.manual_seed(0)
    layer = SparseGATLayer(in_dim, out_dim, backend="native", **kwargs).double()
    with torch.no_grad():
        layer.bias.normal_()  # reset_parameters zeroes it; a non-zero bias checks it is added
    return layer


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("concat", [True, False])
@pytest.mark.parametrize(
    "num_src,num_dst,num_edges,in_dim,out_dim", [(4, 4, 6, 3, 2), (7, 5, 15, 8, 4), (12, 20, 60, 6, 6)]
)
@pytest.mark.parametrize("share_weights", [True, False])
def test_bipartite_layer_matches_dense_reference(
    heads, concat, num_src, num_dst, num_edges, in_dim, out_dim, share_weights
):
    layer = make_layer(in_dim, out_dim, heads=heads, concat=concat, share_weights=share_weights)
    generator = torch.Generator().manual_seed(num_edges)
    x_src = torch.randn(num_src, in_dim, generator=generator, dtype=torch.float64)
    x_dst = torch.randn(num_dst, in_dim, generator=generator, dtype=torch.float64)
    edge_index = unique_edges(num_src, num_dst, num_edges, seed=heads)
    edge_weight = torch.rand(num_edges, generator=generator, dtype=torch.float64) + 0.1
    for weight in (None, edge_weight):
        got = layer((x_src, x_dst), edge_index, weight)
        torch.testing.assert_close(got, dense_gat_reference(layer, x_src, x_dst, edge_index, weight))


@pytest.mark.parametrize("num_nodes,num_edges,heads", [(6, 10, 1), (15, 50, 3)])
def test_homogeneous_layer_matches_dense_reference(num_nodes, num_edges, heads):
    layer = make_layer(5, 4, heads=heads)
    x = torch.randn(num_nodes, 5, dtype=torch.float64)
    edge_index = unique_edges(num_nodes, num_nodes, num_edges, seed=3)
    out, alpha = layer(x, edge_index, return_attention=True)
    torch.testing.assert_close(out, dense_gat_reference(layer, x, x, edge_index))
    per_node = torch.zeros(num_nodes, heads, dtype=alpha.dtype).index_add_(0, edge_index[1], alpha)
    receives = torch.zeros(num_nodes, dtype=torch.bool)
    receives[edge_index[1]] = True
    torch.testing.assert_close(per_node[receives], torch.ones_like(per_node[receives]))


def test_edge_weights_set_attention_when_scores_tie():
    # With zero attention vectors every logit is LeakyReLU(0) = 0, so alpha_ij = w_ij / sum_k w_ik.
    layer = SparseGATLayer(2, 2, residual=False, bias=False, backend="native")
    with torch.no_grad():
        layer.att_src.zero_()
        layer.att_dst.zero_()
    edge_index = torch.tensor([[0, 1, 2], [0, 0, 1]])
    _, alpha = layer(torch.randn(3, 2), edge_index, torch.tensor([1.0, 3.0, 0.5]), return_attention=True)
    torch.testing.assert_close(alpha[:, 0], torch.tensor([0.25, 0.75, 1.0]))


def test_isolated_nodes_get_residual_and_bias_only():
    layer = make_layer(3, 5, heads=2, concat=True)
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 1]])  # nodes 0, 4, 5 receive nothing
    out = layer(x, edge_index)
    isolated = torch.tensor([0, 4, 5])
    torch.testing.assert_close(out[isolated], layer.residual(x[isolated]) + layer.bias)
    out.pow(2).sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_no_edges_at_all_is_finite():
    layer = SparseGATLayer(4, 4, backend="native")
    x = torch.randn(3, 4)
    out = layer(x, torch.empty(2, 0, dtype=torch.long))
    torch.testing.assert_close(out, x + layer.bias)


def test_gradients_finite_for_large_inputs():
    layer = SparseGATLayer(8, 4, heads=4, backend="native")
    x = (torch.randn(30, 8) * 1e3).requires_grad_(True)
    edge_index = unique_edges(30, 30, 200, seed=0)
    layer(x, edge_index).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_attention_dropout_only_in_training():
    layer = make_layer(4, 4, attn_dropout=1.0)
    x = torch.randn(5, 4, dtype=torch.float64)
    edge_index = unique_edges(5, 5, 12, seed=0)
    layer.eval()
    torch.testing.assert_close(layer(x, edge_index), dense_gat_reference(layer, x, x, edge_index))
    layer.train()  # every attention weight dropped: only residual and bias remain
    torch.testing.assert_close(layer(x, edge_index), x + layer.bias)


def test_negative_edge_weight_is_rejected():
    layer = SparseGATLayer(2, 2, backend="native")
    with pytest.raises(ValueError, match=">= 0"):
        layer(torch.randn(2, 2), torch.tensor([[0], [1]]), torch.tensor([-1.0]))


def test_layer_reset_and_repr():
    layer = SparseGATLayer(6, 3, heads=2, backend="native")
    torch.manual_seed(1)
    layer.reset_parameters()
    first = [p.clone() for p in layer.parameters()]
    torch.manual_seed(1)
    layer.reset_parameters()
    assert all(torch.equal(a, b) for a, b in zip(first, layer.parameters()))
    assert repr(layer).startswith("SparseGATLayer(6, 3, heads=2")
    assert isinstance(layer.residual, torch.nn.Identity)  # 6 inputs, 2 heads x 3 concatenated
    assert isinstance(SparseGATLayer(6, 3, heads=2, concat=False, backend="native").residual, torch.nn.Linear)
    assert SparseGATLayer(6, 3, residual=False, backend="native").residual is None


@pytest.mark.parametrize("num_layers,heads,hidden", [(1, 1, 8), (2, 2, 8), (3, 4, 16)])
def test_encoder_is_a_stack_of_layers_with_elu(num_layers, heads, hidden):
    torch.manual_seed(0)
    encoder = GATEncoder(5, hidden, 3, num_layers=num_layers, heads=heads, backend="native")
    x = torch.randn(10, 5, requires_grad=True)
    edge_index = unique_edges(10, 10, 30, seed=num_layers)
    out = encoder(x, edge_index)
    assert out.shape == (10, 3) and len(encoder.layers) == num_layers
    expected = x
    for depth, layer in enumerate(encoder.layers):
        expected = layer(expected, edge_index)
        expected = F.elu(expected) if depth < num_layers - 1 else expected
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert repr(encoder).startswith("GATEncoder(5,")


def test_encoder_rejects_hidden_not_divisible_by_heads():
    with pytest.raises(ValueError, match="divisible"):
        GATEncoder(4, 10, 4, num_layers=2, heads=3)


@pytest.mark.parametrize("heads,concat", [(1, True), (3, False)])
def test_native_matches_torch_scatter_backend(heads, concat):
    if "torch_scatter" not in available_backends():
        pytest.skip("torch-scatter not installed (optional extra 'kernels')")
    x = torch.randn(20, 6, dtype=torch.float64)
    edge_index = unique_edges(20, 20, 80, seed=0)
    outputs, grads = [], []
    for backend in ("native", "torch_scatter"):
        torch.manual_seed(0)
        layer = SparseGATLayer(6, 4, heads=heads, concat=concat, backend=backend).double()
        leaf = x.clone().requires_grad_(True)
        out = layer(leaf, edge_index)
        out.pow(2).sum().backward()
        outputs.append(out.detach())
        grads.append(leaf.grad)
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("heads,share_weights,weighted", [(1, True, False), (2, False, True), (3, True, True)])
def test_gradients_match_dense_reference(heads, share_weights, weighted):
    layer = make_layer(5, 3, heads=heads, concat=False, share_weights=share_weights)
    generator = torch.Generator().manual_seed(heads)
    x_src = torch.randn(9, 5, generator=generator, dtype=torch.float64)
    x_dst = torch.randn(6, 5, generator=generator, dtype=torch.float64)
    edge_index = unique_edges(9, 6, 25, seed=heads)
    weight = torch.rand(25, generator=generator, dtype=torch.float64) + 0.1 if weighted else None
    probe = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    grads = []
    for forward in (lambda a, b: layer((a, b), edge_index, weight), lambda a, b: dense_gat_reference(layer, a, b, edge_index, weight)):
        inputs = (x_src.clone().requires_grad_(True), x_dst.clone().requires_grad_(True))
        layer.zero_grad()
        (forward(*inputs) * probe).sum().backward()
        grads.append([inputs[0].grad, inputs[1].grad] + [p.grad.clone() for p in layer.parameters()])
    for got, expected in zip(*grads):
        torch.testing.assert_close(got, expected)


def test_layer_passes_gradcheck():
    layer = make_layer(4, 2, heads=2, concat=True)
    x = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    edge_index = unique_edges(7, 7, 20, seed=5)
    weight = (torch.rand(20, dtype=torch.float64) + 0.1).requires_grad_(False)
    assert torch.autograd.gradcheck(lambda v: layer(v, edge_index, weight), (x,))


def test_destination_rows_equal_explicit_destinations():
    layer = make_layer(4, 4, heads=2, concat=False)
    x = torch.randn(8, 4, dtype=torch.float64)
    rows = torch.tensor([6, 1, 3])
    edge_index = torch.tensor([[0, 2, 5, 7, 1], [0, 0, 1, 2, 2]])  # destinations are positions in ``rows``
    torch.testing.assert_close(layer(x, edge_index, dst_rows=rows), layer((x, x[rows]), edge_index))


@pytest.mark.parametrize(("heads", "concat", "share_weights", "weighted"), [(1, False, True, True), (2, True, False, False), (3, False, False, True)])
def test_affine_sources_equal_projected_sources_in_value_and_gradient(heads, concat, share_weights, weighted):
    """forward_affine on frozen features and maps == forward on the rows those maps make (train mode, dropout on)."""
    torch.manual_seed(0)
    layer = SparseGATLayer(8, 5, heads=heads, concat=concat, share_weights=share_weights, attn_dropout=0.3).train()
    features = [torch.randn(20, 6), torch.randn(20, 4)]
    maps = [torch.randn(8, 6, requires_grad=True), torch.randn(8, 4, requires_grad=True)]
    shift = torch.randn(8, requires_grad=True)
    x_dst = torch.randn(7, 8, requires_grad=True)
    edge_index = unique_edges(20, 7, 60, seed=1)
    edge_weight = torch.rand(60) + 0.1 if weighted else None
    inputs = [*maps, shift, x_dst, *layer.parameters()]

    torch.manual_seed(5)  # the same dropout mask for both calls
    expected = layer((features[0] @ maps[0].T + shift + features[1] @ maps[1].T, x_dst), edge_index, edge_weight)
    expected_grads = torch.autograd.grad(expected.square().sum(), inputs)
    torch.manual_seed(5)
    got = layer.forward_affine([(features[0], maps[0], shift), (features[1], maps[1], None)], x_dst, edge_index, edge_weight)
    got_grads = torch.autograd.grad(got.square().sum(), inputs)

    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for got_grad, expected_grad in zip(got_grads, expected_grads):
        torch.testing.assert_close(got_grad, expected_grad, rtol=1e-4, atol=1e-4)


def test_affine_sources_accept_log_weights():
    torch.manual_seed(0)
    layer = SparseGATLayer(4, 4).eval()
    features, project = torch.randn(9, 3), torch.randn(4, 3)
    x_dst, edge_index = torch.randn(5, 4), unique_edges(9, 5, 20, seed=2)
    weight = torch.rand(20) + 0.05
    by_weight = layer.forward_affine([(features, project, None)], x_dst, edge_index, edge_weight=weight)
    by_log = layer.forward_affine([(features, project, None)], x_dst, edge_index, edge_log_weight=weight.log())
    torch.testing.assert_close(by_log, by_weight)


@pytest.mark.parametrize(("heads", "weighted", "affine"), [(1, True, False), (2, False, True), (3, True, True)])
def test_propagated_values_use_the_layers_attention(heads, weighted, affine):
    """y_i = mean_h sum_j alpha^h_ij v_j with alpha exactly the attention forward() computes from the keys."""
    torch.manual_seed(0)
    layer = SparseGATLayer(6, 4, heads=heads, concat=False, share_weights=False).eval()
    features, project = torch.randn(12, 5), torch.randn(6, 5)
    keys_src, keys_dst = features @ project.T, torch.randn(7, 6)
    values = torch.randn(12, 3, requires_grad=True)
    edge_index = unique_edges(12, 7, 40, seed=3)
    weight = torch.rand(40) + 0.1 if weighted else None
    _, alpha = layer((keys_src, keys_dst), edge_index, weight, return_attention=True)  # [E, H]
    expected = torch.zeros(7, 3).index_add_(0, edge_index[1], alpha.mean(1, keepdim=True) * values[edge_index[0]])

    sources = [(features, project, None)] if affine else keys_src
    got = layer.propagate_values(sources, keys_dst, values, edge_index, None if weight is None else weight.log())
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    (grad,) = torch.autograd.grad(got.sum(), values)
    # d sum(y) / d v_j = sum over j's out-edges of the (head-mean) attention
    expected_grad = torch.zeros(12).index_add_(0, edge_index[0], alpha.mean(1).detach())
    torch.testing.assert_close(grad, expected_grad[:, None].expand(12, 3), rtol=1e-5, atol=1e-6)
