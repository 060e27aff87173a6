"""Tests for recgoat_cli/model/fusion.py: adaptive softmax weights (scaled by the view count), concat, plain sum,
residual (ID view plus learned coefficients)."""

import pytest
import torch

from recgoat_cli.model.fusion import AdaptiveFusion


def views(n_views: int, rows: int, dim: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(n_views * 100 + rows)
    return [torch.randn(rows, dim, generator=generator) for _ in range(n_views)]


@pytest.mark.parametrize("n_views,rows,dim", [(1, 3, 2), (3, 5, 4), (4, 16, 8)])
def test_oat_weights_start_uniform_and_sum_to_one(n_views, rows, dim):
    fusion = AdaptiveFusion(dim, n_views, mode="oat")
    torch.testing.assert_close(fusion.weights(), torch.full((n_views,), 1.0 / n_views))
    with torch.no_grad():
        fusion.weight_logits.copy_(torch.randn(n_views) * 5)
    assert fusion.weights().sum().item() == pytest.approx(1.0) and (fusion.weights() > 0).all()
    inputs = views(n_views, rows, dim)
    expected = sum(n_views * w * v for w, v in zip(fusion.weights(), inputs))
    torch.testing.assert_close(fusion(inputs), expected)


def test_oat_starts_equal_to_the_plain_sum():
    inputs = views(3, 5, 4)
    torch.testing.assert_close(AdaptiveFusion(4, 3, mode="oat")(inputs), AdaptiveFusion(4, 3, mode="sum")(inputs))


def test_oat_weights_hand_computed():
    fusion = AdaptiveFusion(1, 2, mode="oat")
    with torch.no_grad():
        fusion.weight_logits.copy_(torch.tensor([0.0, torch.log(torch.tensor(3.0))]))  # softmax -> 1/4, 3/4
    out = fusion([torch.tensor([[4.0]]), torch.tensor([[8.0]])])
    torch.testing.assert_close(out, torch.tensor([[14.0]]))  # 2 views * (4/4 + 3*8/4) = 2 * 7


def test_gradient_reaches_weight_logits():
    fusion = AdaptiveFusion(4, 3, mode="oat")
    fusion(views(3, 6, 4)).pow(2).sum().backward()
    assert torch.isfinite(fusion.weight_logits.grad).all() and fusion.weight_logits.grad.abs().sum() > 0


@pytest.mark.parametrize("n_views,rows,dim", [(2, 3, 4), (3, 7, 16)])
def test_concat_projects_back_to_dim(n_views, rows, dim):
    fusion = AdaptiveFusion(dim, n_views, mode="concat")
    inputs = views(n_views, rows, dim)
    out = fusion(inputs)
    assert out.shape == (rows, dim) and fusion.weights() is None
    torch.testing.assert_close(out, fusion.project(torch.cat(inputs, dim=-1)))


@pytest.mark.parametrize("n_views", [1, 2, 5])
def test_sum_is_the_sum_and_accepts_a_stacked_tensor(n_views):
    fusion = AdaptiveFusion(3, n_views, mode="sum")
    inputs = views(n_views, 4, 3)
    torch.testing.assert_close(fusion(inputs), torch.stack(inputs).sum(0))
    torch.testing.assert_close(fusion(torch.stack(inputs)), torch.stack(inputs).sum(0))
    assert list(fusion.parameters()) == []
    torch.testing.assert_close(fusion.weights(), torch.full((n_views,), 1.0 / n_views))


@pytest.mark.parametrize("n_views", [1, 2, 4])
def test_residual_starts_equal_to_the_plain_sum(n_views):
    inputs = views(n_views, 5, 3)
    fusion = AdaptiveFusion(3, n_views, mode="residual")
    torch.testing.assert_close(fusion(inputs), torch.stack(inputs).sum(0))
    torch.testing.assert_close(fusion.weights(), torch.ones(n_views))


def test_residual_hand_computed_and_id_view_keeps_weight_one():
    fusion = AdaptiveFusion(1, 3, mode="residual")
    with torch.no_grad():
        fusion.coefficients.copy_(torch.tensor([0.5, -2.0]))
    out = fusion([torch.tensor([[4.0]]), torch.tensor([[8.0]]), torch.tensor([[1.0]])])
    torch.testing.assert_close(out, torch.tensor([[6.0]]))  # 4 + 0.5 * 8 - 2 * 1
    torch.testing.assert_close(fusion.weights(), torch.tensor([1.0, 0.5, -2.0]))
    with torch.no_grad():
        fusion.coefficients.zero_()
    inputs = views(3, 4, 1)
    torch.testing.assert_close(fusion(inputs), inputs[0])  # other views off: exactly the ID view, at its scale
    out = fusion(inputs)
    out.sum().backward()
    torch.testing.assert_close(fusion.coefficients.grad, torch.stack([inputs[1].sum(), inputs[2].sum()]))
    fusion.reset_parameters()
    torch.testing.assert_close(fusion.coefficients, torch.ones(2))


def test_validation_reset_and_repr():
    with pytest.raises(ValueError, match="mode"):
        AdaptiveFusion(4, 2, mode="attention")
    fusion = AdaptiveFusion(4, 2)
    with pytest.raises(ValueError, match="2 views of width 4"):
        fusion(views(3, 5, 4))
    with torch.no_grad():
        fusion.weight_logits.fill_(2.0).sub_(torch.tensor([0.0, 1.0]))
    fusion.reset_parameters()
    torch.testing.assert_close(fusion.weights(), torch.tensor([0.5, 0.5]))
    assert repr(fusion) == "AdaptiveFusion(dim=4, n_views=2, mode='oat')"
