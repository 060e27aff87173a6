"""Tests for recgoat_cli/model/cmcl.py: InfoNCE values, monotonicity, stability and the multi-view average."""

import math

import pytest
import torch

from recgoat_cli.model.cmcl import cross_modal_contrastive_loss, info_nce


def softplus(value: float) -> float:
    return math.log1p(math.exp(value))


def test_info_nce_hand_computed_two_by_two():
    # anchor rows e1, e2; positive rows e1 and (1, 1)/sqrt2 after normalisation; tau = 0.5:
    # logits = [[1, 1/sqrt2], [0, 1/sqrt2]] / 0.5 = [[2, s], [0, s]] with s = sqrt2.
    # row losses (anchor -> positive): -log softmax on the diagonal
    #   row 0: log(1 + e^(s - 2)) = 0.442548, row 1: log(1 + e^(0 - s)) = 0.217622 -> mean 0.330085
    # column losses (positive -> anchor), logits^T = [[2, 0], [s, s]]:
    #   col 0: log(1 + e^(0 - 2)) = 0.126928, col 1: log(1 + e^0) = log 2 = 0.693147 -> mean 0.410038
    # symmetric = (0.330085 + 0.410038) / 2 = 0.370061
    s = math.sqrt(2.0)
    forward = (softplus(s - 2) + softplus(-s)) / 2
    backward = (softplus(-2.0) + math.log(2.0)) / 2
    anchor = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    positive = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    one_way = info_nce(anchor, positive, temperature=0.5, symmetric=False)
    both_ways = info_nce(anchor, positive, temperature=0.5, symmetric=True)
    assert one_way.item() == pytest.approx(forward, abs=1e-12) == pytest.approx(0.330085, abs=1e-6)
    assert both_ways.item() == pytest.approx((forward + backward) / 2, abs=1e-12)
    assert both_ways.item() == pytest.approx(0.370061, abs=1e-6)


@pytest.mark.parametrize("n", [2, 7, 32])
def test_all_equal_rows_give_log_n(n):
    rows = torch.ones(n, 4)
    assert info_nce(rows, 3 * rows, temperature=0.1).item() == pytest.approx(math.log(n), rel=1e-6)


@pytest.mark.parametrize("n,dim", [(8, 4), (64, 32)])
def test_loss_decreases_as_views_are_interpolated_together(n, dim):
    generator = torch.Generator().manual_seed(n)
    view_a = torch.randn(n, dim, generator=generator)
    noise = torch.randn(n, dim, generator=generator)
    losses = [info_nce(view_a, (1 - t) * noise + t * view_a, 0.2).item() for t in torch.linspace(0, 1, 11)]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses


def test_gradient_descent_on_one_view_lowers_the_loss():
    generator = torch.Generator().manual_seed(0)
    fixed = torch.randn(16, 8, generator=generator)
    moving = torch.randn(16, 8, generator=generator, requires_grad=True)
    optimizer = torch.optim.SGD([moving], lr=0.5)
    start = info_nce(fixed, moving, 0.2).item()
    for _ in range(20):
        optimizer.zero_grad()
        info_nce(fixed, moving, 0.2).backward()
        optimizer.step()
    assert info_nce(fixed, moving, 0.2).item() < start - 0.5


@pytest.mark.parametrize("scale", [1.0, 1e6])
def test_small_temperature_and_large_norms_are_stable(scale):
    generator = torch.Generator().manual_seed(0)
    anchor = torch.randn(32, 16, generator=generator) * scale
    positive = torch.randn(32, 16, generator=generator) * scale
    anchor.requires_grad_(True)
    loss = info_nce(anchor, positive, temperature=0.01)
    reference = info_nce(anchor.detach().double(), positive.double(), temperature=0.01)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(reference.item(), rel=1e-4)
    loss.backward()
    assert torch.isfinite(anchor.grad).all()


def test_matching_orthogonal_views_at_low_temperature_is_near_zero():
    views = torch.eye(5)
    assert info_nce(views, 2 * views, temperature=0.01).item() < 1e-6


def test_cross_modal_loss_averages_the_requested_pairs():
    generator = torch.Generator().manual_seed(0)
    views = {name: torch.randn(10, 6, generator=generator) for name in ("id", "text", "image")}
    anchor_mean = (info_nce(views["id"], views["text"], 0.3) + info_nce(views["id"], views["image"], 0.3)) / 2
    all_mean = (anchor_mean * 2 + info_nce(views["text"], views["image"], 0.3)) / 3
    torch.testing.assert_close(cross_modal_contrastive_loss(views, "id", 0.3, pairs="anchor"), anchor_mean)
    torch.testing.assert_close(cross_modal_contrastive_loss(views, "id", 0.3, pairs="all"), all_mean)


def test_invalid_arguments_raise():
    views = {"id": torch.randn(3, 2), "text": torch.randn(3, 2)}
    with pytest.raises(ValueError, match="anchor"):
        cross_modal_contrastive_loss(views, anchor="image")
    with pytest.raises(ValueError, match="pairs"):
        cross_modal_contrastive_loss(views, pairs="some")
    with pytest.raises(ValueError, match="two views"):
        cross_modal_contrastive_loss({"id": views["id"]})
    with pytest.raises(ValueError, match="temperature"):
        info_nce(views["id"], views["text"], temperature=0.0)
    with pytest.raises(ValueError, match="shapes"):
        info_nce(views["id"], torch.randn(4, 2))


def test_info_nce_batched_equals_one_problem_at_a_time():
    generator = torch.Generator().manual_seed(0)
    anchor = torch.randn(3, 6, 4, generator=generator, dtype=torch.float64)
    positive = torch.randn(3, 6, 4, generator=generator, dtype=torch.float64)
    for symmetric in (True, False):
        batched = info_nce(anchor, positive, 0.3, symmetric)
        assert batched.shape == (3,)
        expected = torch.stack([info_nce(a, p, 0.3, symmetric) for a, p in zip(anchor, positive)])
        torch.testing.assert_close(batched, expected)
