"""Tests for recgoat_cli/model/scatter.py: edge softmax and edge-to-node sums against dense references."""

import pytest
import torch

from recgoat_cli.errors import UserError
from recgoat_cli.model.scatter import available_backends, resolve_backend, scatter_sum, segment_softmax


def random_edges(num_edges: int, num_nodes: int, heads: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    # Leave the last node without incoming edges on purpose.
    index = torch.randint(0, max(num_nodes - 1, 1), (num_edges,), generator=generator)
    scores = torch.randn(num_edges, heads, generator=generator, dtype=torch.float64) * 3
    return scores, index


def dense_softmax_reference(scores, index, num_nodes):
    out = torch.zeros_like(scores)
    for node in range(num_nodes):
        mask = index == node
        if mask.any():
            out[mask] = torch.softmax(scores[mask], dim=0)
    return out


@pytest.mark.parametrize("num_edges,num_nodes,heads", [(1, 2, 1), (12, 5, 1), (40, 9, 3), (200, 30, 2)])
def test_native_segment_softmax_matches_dense_reference(num_edges, num_nodes, heads):
    scores, index = random_edges(num_edges, num_nodes, heads, seed=num_edges)
    got = segment_softmax(scores, index, num_nodes, backend="native")
    torch.testing.assert_close(got, dense_softmax_reference(scores, index, num_nodes))


def test_segment_softmax_hand_computed():
    # Node 0 receives edges with scores 0 and log 3 -> weights 1/4, 3/4; node 1 receives one edge -> 1.
    scores = torch.tensor([0.0, torch.log(torch.tensor(3.0)), 5.0])
    index = torch.tensor([0, 0, 1])
    got = segment_softmax(scores, index, num_nodes=3, backend="native")
    torch.testing.assert_close(got, torch.tensor([0.25, 0.75, 1.0]))


def test_segment_softmax_is_stable_for_huge_scores():
    scores = torch.tensor([[1e4], [1e4 - 1.0], [-1e4]])
    index = torch.tensor([0, 0, 1])
    got = segment_softmax(scores, index, num_nodes=2, backend="native")
    assert torch.isfinite(got).all()
    expected_first = 1.0 / (1.0 + torch.exp(torch.tensor(-1.0)))
    torch.testing.assert_close(got[0, 0], expected_first)
    torch.testing.assert_close(got[2, 0], torch.tensor(1.0))


@pytest.mark.parametrize("trailing", [(), (3,), (2, 4)])
def test_native_scatter_sum_matches_one_hot_matmul(trailing):
    generator = torch.Generator().manual_seed(0)
    index = torch.randint(0, 6, (25,), generator=generator)
    src = torch.randn(25, *trailing, generator=generator, dtype=torch.float64)
    one_hot = torch.nn.functional.one_hot(index, num_classes=8).T.to(src.dtype)  # [N, E]
    expected = (one_hot @ src.reshape(25, -1)).reshape(8, *trailing)
    torch.testing.assert_close(scatter_sum(src, index, 8, backend="native"), expected)


def test_backend_resolution():
    assert available_backends()[0] == "native"
    assert resolve_backend("auto") in available_backends()
    with pytest.raises(UserError, match="native"):
        resolve_backend("cuda_magic")


def test_requesting_missing_torch_scatter_is_a_user_error():
    if "torch_scatter" in available_backends():
        pytest.skip("torch-scatter is installed, so requesting it is valid")
    with pytest.raises(UserError, match="kernels"):
        resolve_backend("torch_scatter")


@pytest.mark.parametrize("num_edges,num_nodes,heads", [(30, 7, 1), (300, 40, 4)])
def test_native_matches_torch_scatter_values_and_gradients(num_edges, num_nodes, heads):
    if "torch_scatter" not in available_backends():
        pytest.skip("torch-scatter not installed (optional extra 'kernels')")
    scores, index = random_edges(num_edges, num_nodes, heads, seed=1)
    upstream = torch.randn(num_edges, heads, dtype=scores.dtype)
    results = {}
    for backend in ("native", "torch_scatter"):
        leaf = scores.clone().requires_grad_(True)
        alpha = segment_softmax(leaf, index, num_nodes, backend=backend)
        summed = scatter_sum(alpha * upstream, index, num_nodes, backend=backend)
        (summed**2).sum().backward()
        results[backend] = (alpha.detach(), summed.detach(), leaf.grad)
    for native, other in zip(results["native"], results["torch_scatter"]):
        torch.testing.assert_close(native, other, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "num_src,num_dst,num_edges,heads,width", [(5, 4, 9, 1, 3), (6, 7, 15, 2, 3), (8, 3, 12, 3, 2), (4, 4, 0, 2, 2)]
)
def test_edge_weighted_sum_matches_scatter_and_passes_gradcheck(num_src, num_dst, num_edges, heads, width):
    from recgoat_cli.model.scatter import edge_layout, edge_weighted_sum

    generator = torch.Generator().manual_seed(num_edges)
    # unsorted destinations (the layout sorts them); the last destination receives nothing
    edge_index = torch.stack(
        [torch.randint(0, num_src, (num_edges,), generator=generator), torch.randint(0, num_dst - 1, (num_edges,), generator=generator)]
    )
    layout = edge_layout(edge_index, num_src, num_dst, heads)
    weights = torch.rand(num_edges, heads, generator=generator, dtype=torch.float64).requires_grad_(True)
    values = torch.randn(num_src, heads, width, generator=generator, dtype=torch.float64).requires_grad_(True)
    got = edge_weighted_sum(weights, values, layout)
    expected = scatter_sum(values[layout.src] * weights.unsqueeze(-1), layout.dst, num_dst, backend="native")
    torch.testing.assert_close(got, expected)
    assert torch.all(got[-1] == 0)
    assert torch.autograd.gradcheck(lambda w, v: edge_weighted_sum(w, v, layout), (weights, values))


def test_edge_layout_orders_edges_by_destination():
    from recgoat_cli.model.scatter import edge_layout

    edge_index = torch.tensor([[0, 1, 2, 3], [2, 0, 2, 1]])
    layout = edge_layout(edge_index, 4, 3, heads=2)
    assert layout.order.tolist() == [1, 3, 0, 2]  # stable: edges 0 and 2 (both into node 2) keep their order
    assert layout.dst.tolist() == [0, 1, 2, 2] and layout.src.tolist() == [1, 3, 0, 2]
    # head-interleaved rows: node i, head h is row 2 i + h; node 2 has two edges in each head
    assert layout.forward_ptr.tolist() == [0, 1, 2, 3, 4, 6, 8]
    assert layout.forward_col.tolist() == [2, 3, 6, 7, 0, 4, 1, 5]
    assert edge_layout(layout.order.new_tensor([[1, 3], [0, 1]]), 4, 3).order is None  # already sorted


def test_row_pointers_count_each_rows_run():
    from recgoat_cli.model.scatter import _row_pointers

    # rows 0 and 2 hold two entries each, row 1 none, row 3 one, row 4 none
    assert _row_pointers(torch.tensor([0, 0, 2, 2, 3]), 5).tolist() == [0, 2, 2, 4, 5, 5]
    assert _row_pointers(torch.tensor([], dtype=torch.int64), 2).tolist() == [0, 0, 0]


@pytest.mark.parametrize("heads", [1, 3])
def test_edge_layout_trusting_sorted_destinations_equals_checking_them(heads):
    from recgoat_cli.model.scatter import edge_layout

    edge_index = torch.tensor([[4, 0, 2, 1, 3, 0], [0, 0, 1, 3, 3, 3]])  # destinations sorted
    checked = edge_layout(edge_index, 5, 4, heads)
    trusted = edge_layout(edge_index, 5, 4, heads, dst_sorted=True)
    assert checked.order is None and trusted.order is None
    for field, got in trusted._asdict().items():
        expected = getattr(checked, field)
        assert torch.equal(got, expected) if isinstance(got, torch.Tensor) else got == expected, field
    assert trusted.forward_col.dtype == torch.int32  # index width from the shape: 5 * heads columns fit


def test_layout_without_transpose_serves_frozen_values_only():
    from recgoat_cli.model.scatter import edge_layout, edge_weighted_sum

    edge_index = torch.tensor([[0, 2, 1, 2], [0, 0, 1, 2]])
    weights = torch.tensor([[0.5], [0.25], [1.0], [2.0]], requires_grad=True)
    values = torch.arange(6.0).view(3, 1, 2)
    layout = edge_layout(edge_index, 3, 3, transpose=False)
    assert layout.backward_ptr is None and layout.forward_gather is None  # one head: no gather needed
    out = edge_weighted_sum(weights, values, layout)
    # row 0 = 0.5 * values[0] + 0.25 * values[2]; row 1 = values[1]; row 2 = 2 * values[2]
    assert out[:, 0].tolist() == [[1.0, 1.75], [2.0, 3.0], [8.0, 10.0]]
    out.sum().backward()
    assert weights.grad.view(-1).tolist() == [1.0, 9.0, 5.0, 9.0]  # sum of each source's row
    with pytest.raises(RuntimeError, match="transpose=False"):
        edge_weighted_sum(weights, values.clone().requires_grad_(), layout).sum().backward()
