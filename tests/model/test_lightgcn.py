"""LightGCN's layer-mean propagation against a hand computation, and MF's plain tables."""

from __future__ import annotations

import pytest
import torch

from recgoat_cli.model.bpr import bpr_loss, l2_penalty
from recgoat_cli.model.lightgcn import LightGCN, propagate
from recgoat_cli.model.mf import MatrixFactorization


def test_propagate_matches_hand_computation():
    # one user (node 0) and one item (node 1) linked: A_hat = [[0, 1], [1, 0]]
    adjacency = torch.tensor([[0.0, 1.0], [1.0, 0.0]]).to_sparse()
    ego = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    # layers: E0 = ego, E1 = swap(ego), E2 = ego -> mean = (2*ego + swap) / 3
    expected = torch.tensor([[2 / 3, 2 / 3], [1 / 3, 4 / 3]])
    assert torch.allclose(propagate(adjacency, ego, 2), expected)


@pytest.mark.parametrize(("n_users", "n_items", "dim", "layers"), [(3, 4, 8, 0), (10, 7, 16, 3)])
def test_lightgcn_shapes_and_zero_layers_is_mf(n_users, n_items, dim, layers):
    torch.manual_seed(0)
    model = LightGCN(n_users, n_items, dim, layers)
    n = n_users + n_items
    adjacency = torch.sparse_coo_tensor(torch.empty(2, 0, dtype=torch.long), torch.empty(0), (n, n))
    out = model({"adjacency": adjacency})
    assert out.users.shape == (n_users, dim) and out.items.shape == (n_items, dim)
    # with no edges, layer outputs are zero: the mean is ego / (L + 1)
    assert torch.allclose(out.users, model.user_embedding.weight / (layers + 1))
    assert "n_layers=" in repr(model)


def test_mf_returns_its_tables():
    model = MatrixFactorization(4, 5, 3)
    out = model({})
    assert out.users is model.user_embedding.weight and out.items.shape == (5, 3)


def test_bpr_and_l2_hand_values():
    # -log sigmoid(1 - 0) = log(1 + e^-1) = 0.31326
    assert bpr_loss(torch.tensor([1.0]), torch.tensor([0.0])).item() == pytest.approx(0.3132617)
    # huge margins stay finite
    assert torch.isfinite(bpr_loss(torch.tensor([-1e4]), torch.tensor([1e4])))
    # (1 + 4 + 9 + 16) / (2 * 2) = 7.5
    assert l2_penalty(torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [4.0]])).item() == pytest.approx(7.5)


def test_symmetric_spmm_gradient_matches_dense():
    torch.manual_seed(0)
    dense = torch.rand(6, 6)
    dense = (dense + dense.t()) * (torch.rand(6, 6) > 0.5)
    dense = dense + dense.t()
    x1 = torch.randn(6, 3, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    (propagate(dense.to_sparse_csr(), x1, 2) ** 2).sum().backward()
    (propagate_dense(dense, x2, 2) ** 2).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-5)


def propagate_dense(adjacency: torch.Tensor, ego: torch.Tensor, n_layers: int) -> torch.Tensor:
    layers = [ego]
    for _ in range(n_layers):
        layers.append(adjacency @ layers[-1])
    return torch.stack(layers).mean(0)
