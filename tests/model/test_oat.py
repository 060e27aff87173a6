"""Tests for recgoat_cli/model/oat.py: Sinkhorn plans, transport costs, the barycentric map and the module."""

import warnings

import numpy as np
import ot
import pytest
import torch

from recgoat_cli.model.oat import (
    OptimalAdaptiveTransport,
    SinkhornNotConverged,
    cost_matrix,
    sinkhorn_plan,
    transport_map,
    wasserstein_cost,
)

SIZES = [(6, 6), (8, 13), (21, 5)]


def points(n: int, dim: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=generator, dtype=torch.float64) + shift


def histogram(n: int, seed: int) -> torch.Tensor:
    weights = torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.2
    return weights / weights.sum()


@pytest.mark.parametrize("n,m", SIZES)
def test_cost_matrix_matches_cdist_and_cosine(n, m):
    x, y = points(n, 5, 0), points(m, 5, 1)
    torch.testing.assert_close(cost_matrix(x, y), torch.cdist(x, y) ** 2)
    cosine = 1 - (x / x.norm(dim=1, keepdim=True)) @ (y / y.norm(dim=1, keepdim=True)).T
    torch.testing.assert_close(cost_matrix(x, y, "cosine"), cosine)


def test_cost_matrix_is_never_negative_for_identical_rows():
    x = torch.randn(50, 32) * 100
    assert (cost_matrix(x, x) >= 0).all() and (cost_matrix(x, x, "cosine") >= 0).all()
    with pytest.raises(ValueError, match="metric"):
        cost_matrix(x, x, "manhattan")


@pytest.mark.parametrize("n,m", SIZES)
@pytest.mark.parametrize("log_domain", [True, False])
def test_plan_marginals_match_a_and_b(n, m, log_domain):
    a, b = histogram(n, 2), histogram(m, 3)
    M = cost_matrix(points(n, 4, 0), points(m, 4, 1, shift=0.5))
    plan, error = sinkhorn_plan(a, b, M / M.mean(), reg=0.1, n_iter_max=2000, tol=1e-9, log_domain=log_domain)
    assert (plan >= 0).all()
    torch.testing.assert_close(plan.sum(1), a, atol=1e-8, rtol=0)
    torch.testing.assert_close(plan.sum(0), b, atol=1e-8, rtol=0)
    assert error.item() <= 1e-9


@pytest.mark.parametrize("n,m", SIZES)
def test_plan_matches_pot_on_numpy(n, m):
    a, b = histogram(n, 4), histogram(m, 5)
    M = cost_matrix(points(n, 3, 6), points(m, 3, 7))
    M = M / M.mean()
    reference = ot.sinkhorn(a.numpy(), b.numpy(), M.numpy(), 0.2, numItermax=10_000, stopThr=1e-12)
    plan, _ = sinkhorn_plan(a, b, M, reg=0.2, n_iter_max=10_000, tol=1e-12)
    np.testing.assert_allclose(plan.numpy(), reference, atol=1e-10)


@pytest.mark.parametrize("grad", ["autodiff", "envelope"])
@pytest.mark.parametrize("n,m", SIZES)
def test_gradients_flow_to_both_point_sets(grad, n, m):
    x = points(n, 4, 0).requires_grad_(True)
    y = points(m, 4, 1, shift=1.0).requires_grad_(True)
    wasserstein_cost(x, y, n_iter_max=1000, grad=grad).backward()
    for tensor in (x, y):
        assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0


def test_autodiff_gradient_matches_finite_differences():
    # A fixed number of iterations (tol=0 is never met) makes the cost a smooth function of x and y.
    x = points(3, 2, 0).requires_grad_(True)
    y = points(4, 2, 1).requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SinkhornNotConverged)
        assert torch.autograd.gradcheck(
            lambda x, y: wasserstein_cost(x, y, reg=0.5, n_iter_max=30, tol=0.0, normalize_cost=False), (x, y)
        )


def test_cost_decreases_as_y_moves_towards_x():
    x, y = 0.3 * points(12, 8, 0), 0.3 * points(12, 8, 1, shift=1.0)
    with warnings.catch_warnings():
        # Near t = 1 the plan approaches a permutation and Sinkhorn slows down; the ordering holds anyway.
        warnings.simplefilter("ignore", SinkhornNotConverged)
        costs = [
            wasserstein_cost(x, (1 - t) * y + t * x, reg=0.05, n_iter_max=300, normalize_cost=False).item()
            for t in torch.linspace(0, 1, 11)
        ]
    assert all(later < earlier for earlier, later in zip(costs, costs[1:])), costs
    assert costs[-1] < 1e-3 * costs[0]


def test_normalised_cost_is_one_for_the_independent_coupling_and_near_zero_for_identical_sets():
    x, y = points(10, 6, 0), points(10, 6, 1)
    # A huge reg makes the plan the independent coupling a b^T, whose cost is mean(M) / mean(M) = 1.
    assert wasserstein_cost(x, y, reg=1e4).item() == pytest.approx(1.0, abs=1e-3)
    assert wasserstein_cost(x, x, reg=0.05, n_iter_max=3000).item() < 1e-2


def test_small_reg_stays_finite_in_log_domain():
    x, y = points(30, 16, 0), points(20, 16, 1, shift=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SinkhornNotConverged)
        cost = cost_matrix(x, y)
        plan, _ = sinkhorn_plan(None, None, cost / cost.mean(), reg=0.01, n_iter_max=300)
        value = wasserstein_cost(x.requires_grad_(True), y, reg=0.01, n_iter_max=300)
    value.backward()
    assert torch.isfinite(plan).all() and torch.isfinite(value) and torch.isfinite(x.grad).all()


def test_too_few_iterations_warn_sinkhorn_not_converged():
    x, y = points(15, 4, 0), points(15, 4, 1, shift=1.0)
    with pytest.warns(SinkhornNotConverged, match="n_iter_max=1"):
        _, error = sinkhorn_plan(None, None, cost_matrix(x, y), reg=0.01, n_iter_max=1)
    assert error.item() > 1e-6


def test_converged_plan_does_not_warn():
    x, y = points(15, 4, 0), points(15, 4, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SinkhornNotConverged)
        M = cost_matrix(x, y)
        sinkhorn_plan(None, None, M / M.mean(), reg=0.5, n_iter_max=1000)


def test_transport_map_hand_computed():
    target = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    swap = torch.tensor([[0.0, 0.5, 0.0], [0.5, 0.0, 0.0]])  # row 0 -> target 1, row 1 -> target 0
    torch.testing.assert_close(transport_map(swap, target), torch.tensor([[0.0, 2.0], [1.0, 0.0]]))
    split = torch.tensor([[0.25, 0.0, 0.25], [0.0, 0.5, 0.0]])  # row 0 -> midpoint of targets 0 and 2
    torch.testing.assert_close(transport_map(split, target), torch.tensor([[2.0, 1.5], [0.0, 2.0]]))
    # Rows normalised by their own mass: scaling the plan changes nothing.
    torch.testing.assert_close(transport_map(3 * split, target), transport_map(split, target))


@pytest.mark.parametrize("batch,dim", [(8, 4), (32, 16)])
def test_module_aligns_and_returns_mean_cost(batch, dim):
    torch.manual_seed(0)
    modal = {"text": points(batch, dim, 1).requires_grad_(True), "image": points(batch, dim, 2, shift=1.0)}
    ids = points(batch, dim, 3).requires_grad_(True)
    module = OptimalAdaptiveTransport(["text", "image"], n_iter_max=1000).double()
    aligned, loss = module(modal, ids)
    assert set(aligned) == {"text", "image"} and all(v.shape == (batch, dim) for v in aligned.values())
    expected = (
        wasserstein_cost(modal["text"], ids, n_iter_max=1000) + wasserstein_cost(modal["image"], ids, n_iter_max=1000)
    ) / 2
    torch.testing.assert_close(loss, expected)
    (loss + sum(v.sum() for v in aligned.values())).backward()
    for tensor in (modal["text"], ids, module.mix_logit):
        assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0
    torch.testing.assert_close(module.mix(), torch.full((2,), 0.5, dtype=torch.float64))
    assert set(module.last_marginal_error) == {"text", "image"}


def test_module_mix_zero_keeps_and_mix_one_replaces():
    modal, ids = {"text": points(10, 3, 0)}, points(10, 3, 1)
    kept, _ = OptimalAdaptiveTransport(["text"], mix_init=0.0, learn_mix=False, n_iter_max=1000)(modal, ids)
    torch.testing.assert_close(kept["text"], modal["text"])
    replaced, _ = OptimalAdaptiveTransport(["text"], mix_init=1.0, learn_mix=False, n_iter_max=1000)(modal, ids)
    cost = cost_matrix(modal["text"], ids)
    plan, _ = sinkhorn_plan(None, None, cost / cost.mean(), reg=0.1, n_iter_max=1000)
    torch.testing.assert_close(replaced["text"], transport_map(plan, ids))


def test_module_validation_reset_and_repr():
    module = OptimalAdaptiveTransport(["text"], mix_init=0.2)
    with torch.no_grad():
        module.mix_logit.fill_(3.0)
    module.reset_parameters()
    torch.testing.assert_close(module.mix(), torch.tensor([0.2]))
    assert repr(module).startswith("OptimalAdaptiveTransport(modalities=['text']")
    with pytest.raises(ValueError, match="missing"):
        module({"image": torch.randn(4, 2)}, torch.randn(4, 2))
    with pytest.raises(ValueError, match="mix_init"):
        OptimalAdaptiveTransport(["text"], mix_init=1.0)
    with pytest.raises(ValueError, match="grad"):
        OptimalAdaptiveTransport(["text"], grad="implicit")


def test_module_runs_transport_in_float32_for_half_inputs():
    modal = {"text": torch.randn(12, 8).to(torch.bfloat16)}
    aligned, loss = OptimalAdaptiveTransport(["text"], n_iter_max=1000)(modal, torch.randn(12, 8).to(torch.bfloat16))
    assert aligned["text"].dtype == torch.float32 and loss.dtype == torch.float32 and torch.isfinite(loss)


def test_pot_imports_no_other_backend_unless_the_user_asks():
    """recgoat switches POT's JAX/CuPy/TensorFlow backends off before `import ot` (JAX reserves most of a GPU
    per process), and keeps a value the user set."""
    import subprocess
    import sys

    code = "import os, recgoat_cli.model.oat; print(os.environ['POT_BACKEND_DISABLE_JAX'], os.environ['POT_BACKEND_DISABLE_CUPY'])"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("POT_BACKEND_")}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split() == ["1", "1"]
    env["POT_BACKEND_DISABLE_JAX"] = "0"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.split() == ["0", "1"]
