"""What the reference code's exp-domain Sinkhorn returns at its own settings, on real representations.

The reference fusion solves, per modality and every step, the plan between the ``d`` dimensions of the modality's
item representations ``Z_m`` and the collaborative ones ``Z_cf`` with cost ``C = mean_i (Z_m[i,a] - Z_cf[i,b])^2
* 100`` and 100 iterations of ``u = mu / (K v + 1e-8)``, ``v = nu / (K^T u + 1e-8)`` on ``K = exp(-C / 0.01)``
in float32, then ``T = diag(u) K diag(v)``. This script computes those iterations (the reference's arithmetic,
written here) on the representations of a ``--preset reference`` model -- freshly initialised, and trained when a
train artifact is given -- in training mode (dropout on, as in every step of the reference) over ``--steps``
forward passes, and reports how much of ``K`` underflows to 0, the mass and marginals of the returned ``T``, and
the log-domain plan recgoat solves on the same cost.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.studies.reference_sinkhorn --dataset tiktok --data-root ../shared/data \\
        --workdir runs/real [--train ID] [--steps 5] [--reference-init]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from recgoat_cli.cli.train import graph_for_preset
from recgoat_cli.config import TrainConfig
from recgoat_cli.model.oat import dimension_cost, dimension_plan
from recgoat_cli.model.registry import build_model
from recgoat_cli.presets import preset
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.train import graph_tensors, model_args, upstream_embed_of
from recgoat_cli.train.loop import BEST, load_checkpoint

SCALE, EPSILON, ITERATIONS, GUARD = 100.0, 0.01, 100, 1e-8


def reference_exp_sinkhorn(cost: torch.Tensor) -> torch.Tensor:
    """The reference's iterations, in float32: uniform marginals, a fixed count, no convergence check."""
    n, m = cost.shape
    kernel = torch.exp(-cost / EPSILON)
    mu, nu = torch.full((n,), 1.0 / n), torch.full((m,), 1.0 / m)
    u, v = mu.clone(), nu.clone()
    for _ in range(ITERATIONS):
        u = mu / (kernel @ v + GUARD)
        v = nu / (kernel.T @ u + GUARD)
    return torch.diag(u) @ kernel @ torch.diag(v)


def describe(model, tensors, label: str, steps: int) -> list[dict]:
    records = []
    model.train()
    fusion = model.item_fusion
    for step in range(steps):
        with torch.no_grad():
            ego = torch.cat([model.user_embedding.weight, model.item_embedding.weight])
            from recgoat_cli.model.lightgcn import propagate

            cf = propagate(tensors["adjacency"], ego, model.n_layers)[model.n_users :]
            for name, _ in model.modalities:
                rows = model.project[name](tensors[f"feat:{name}"])
                z = model.item_gat[name](rows, tensors[f"item_edges:{name}"]) if name in model.item_gat else rows
                cost = dimension_cost(z.float(), cf.float(), SCALE)
                kernel = torch.exp(-cost / EPSILON)
                plan = reference_exp_sinkhorn(cost)
                solved = dimension_plan(z, cf, SCALE, EPSILON, fusion.n_iter_max, fusion.tol)
                d = cost.shape[0]
                records.append({
                    "model": label, "step": step, "modality": name,
                    "cost_min": round(float(cost.min()), 4), "cost_median": round(float(cost.median()), 4), "cost_max": round(float(cost.max()), 4),
                    "exp_kernel_zero_fraction": round(float((kernel == 0).float().mean()), 6),
                    "exp_plan_mass": float(plan.sum()), "exp_plan_max": float(plan.max()),
                    "exp_plan_row_marginal_error": float((plan.sum(1) - 1.0 / d).abs().max()),
                    "log_plan_mass": round(float(solved.plan.sum()), 6), "log_plan_marginal_error": float(solved.marginal_error),
                    "log_plan_max_times_d": round(float(solved.plan.max() * d), 4),
                    "z_m_rms": round(float(z.pow(2).mean().sqrt()), 4), "z_cf_rms": round(float(cf.pow(2).mean().sqrt()), 4),
                })
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--train", default=None, help="a --preset reference train artifact id (its best epoch is used)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint file (best.pt / last.pt) of a --preset reference run, e.g. one still training")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--reference-init", action="store_true",
                        help="also describe a model whose ID embeddings are drawn from N(0, 0.1^2), the reference's init (recgoat: Xavier)")
    options = parser.parse_args()
    ctx = open_context(options.dataset, options.workdir, options.data_root)
    config = TrainConfig(**preset("reference", "train"))
    graph = graph_for_preset(ctx, "reference", ctx.store.get("build-graph"), print)
    embed = upstream_embed_of(ctx, config, graph)
    args = model_args(config, ctx.dataset.n_users, ctx.dataset.n_items, embed)
    tensors = graph_tensors(config, graph, embed)
    torch.manual_seed(0)
    runs = [("initialised", build_model("recgoat", args))]
    if options.reference_init:
        model = build_model("recgoat", args)
        torch.nn.init.normal_(model.user_embedding.weight, std=0.1)
        torch.nn.init.normal_(model.item_embedding.weight, std=0.1)
        runs.append(("initialised N(0, 0.1^2) as the reference", model))
    if options.train:
        trained = ctx.store.get("train", options.train)
        model = build_model("recgoat", trained.manifest.summary["model_args"])
        model.load_state_dict(load_checkpoint(trained.file(BEST))["state_dict"])
        runs.append((f"trained {trained.id}", model))
    if options.checkpoint:
        state = load_checkpoint(options.checkpoint)
        model = build_model("recgoat", state["model_args"])
        model.load_state_dict(state["state_dict"])
        runs.append((f"checkpoint {options.checkpoint.parent.name}/{options.checkpoint.name} (epoch {state['epoch']})", model))
    for label, model in runs:
        for record in describe(model, tensors, label, options.steps):
            print(json.dumps(record | {"dataset": options.dataset, "date": time.strftime("%Y-%m-%d")}), flush=True)


if __name__ == "__main__":
    main()
