"""On a CUDA device, RecGOAT and LightGCN give the CPU's outputs and gradients (skipped without a GPU)."""

from __future__ import annotations

import copy

import pytest
import torch

from recgoat_cli.model.lightgcn import LightGCN
from recgoat_cli.model.recgoat import RecGOAT

from test_recgoat import toy_graph  # noqa: E402  (tests/model is on sys.path under pytest)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _to(graph: dict, device: str) -> dict:
    return {k: v.to(device) for k, v in graph.items()}


@cuda
@pytest.mark.parametrize("heads", [1, 2])
def test_recgoat_cuda_matches_cpu(heads):
    graph, modalities, user_dim = toy_graph(30, 25)
    torch.manual_seed(0)
    cpu_model = RecGOAT(30, 25, 16, 2, modalities, user_dim, gat_heads=heads, gat_dropout=0.0).eval()
    gpu_model = copy.deepcopy(cpu_model).to("cuda")
    users, items = torch.tensor([1, 4, 9]), torch.tensor([0, 3, 7, 20])
    outputs = []
    for model, device in ((cpu_model, "cpu"), (gpu_model, "cuda")):
        out = model(_to(graph, device), users.to(device), items.to(device))
        (out.users.sum() + out.items.pow(2).sum()).backward()
        outputs.append((out, {n: p.grad.detach().cpu() for n, p in model.named_parameters() if p.grad is not None}))
    (cpu_out, cpu_grads), (gpu_out, gpu_grads) = outputs
    assert torch.allclose(cpu_out.users, gpu_out.users.cpu(), atol=1e-4)
    assert torch.allclose(cpu_out.items, gpu_out.items.cpu(), atol=1e-4)
    assert cpu_grads.keys() == gpu_grads.keys()
    for name in cpu_grads:
        assert torch.allclose(cpu_grads[name], gpu_grads[name], atol=1e-4), name


@cuda
def test_recgoat_auxiliary_losses_on_cuda():
    graph, modalities, user_dim = toy_graph(30, 25)
    model = RecGOAT(30, 25, 16, 2, modalities, user_dim).to("cuda")
    out = model(_to(graph, "cuda"), torch.arange(30, device="cuda"), torch.arange(25, device="cuda"))
    terms = model.auxiliary_losses(out, torch.arange(30, device="cuda"), torch.arange(25, device="cuda"))
    assert set(terms) == {"cmcl", "oat"} and all(torch.isfinite(t) for t in terms.values())
    sum(terms.values()).backward()


@cuda
def test_lightgcn_cuda_matches_cpu():
    graph, _, _ = toy_graph(20, 15, modalities=())
    torch.manual_seed(0)
    model = LightGCN(20, 15, 8, 3)
    cpu = model({"adjacency": graph["adjacency"]})
    gpu = copy.deepcopy(model).to("cuda")({"adjacency": graph["adjacency"].to("cuda")})
    assert torch.allclose(cpu.users, gpu.users.cpu(), atol=1e-5) and torch.allclose(cpu.items, gpu.items.cpu(), atol=1e-5)
