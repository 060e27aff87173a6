"""Training epoch time of LightGCN, RecGOAT's default and ``--preset reference`` on one real dataset, in one process.

The dataset's embed and build-graph artifacts must exist in ``--workdir`` (``recgoat build-graph --dataset NAME``
for the default models; the reference preset's k = 20 graph is found or built the way ``recgoat train --preset
reference`` does). Every model trains ``--epochs`` epochs with the package's own loop (no validation), and the
script prints one JSON line per model (median seconds per training epoch) and each model's ratio to LightGCN.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.speed.reference_epoch_time --dataset scientific \\
        --data-root ../shared/data --workdir runs/bench [--epochs 3] [--threads 1] [--profile reference]

``--profile NAME`` prints the top of a cProfile of that model's epochs (cumulative time) to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from recgoat_cli.cli.train import graph_for_preset
from recgoat_cli.config import TrainConfig
from recgoat_cli.data.sampling import NegativeSampler
from recgoat_cli.model.registry import build_model
from recgoat_cli.presets import preset
from recgoat_cli.stages.build_graph import load_train_edges
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.train import graph_tensors, model_args, upstream_embed_of
from recgoat_cli.train.loop import TrainSettings, fit

CONFIGS = {
    "lightgcn": lambda: TrainConfig(model="lightgcn"),
    "recgoat": lambda: TrainConfig(model="recgoat"),
    "reference": lambda: TrainConfig(**preset("reference", "train")),
}


def epoch_seconds(ctx, name: str, epochs: int, profile: bool) -> tuple[list[float], dict]:
    config = CONFIGS[name]()
    graph = ctx.store.get("build-graph")
    if name == "reference":
        graph = graph_for_preset(ctx, "reference", graph, lambda line: print(line, file=sys.stderr))
    embed = upstream_embed_of(ctx, config, graph)
    torch.manual_seed(0)
    model = build_model(config.model, model_args(config, ctx.dataset.n_users, ctx.dataset.n_items, embed))
    tensors = graph_tensors(config, graph, embed)
    users, items = load_train_edges(graph)
    sampler = NegativeSampler(torch.from_numpy(users), torch.from_numpy(items), ctx.dataset.n_items)
    settings = TrainSettings(epochs=epochs, batch_size=config.batch_size, lr=config.lr, reg=config.reg, patience=10_000,
                             eval_every=10_000, val_metric="recall@20", seed=0)
    profiler = cProfile.Profile() if profile else None
    with tempfile.TemporaryDirectory() as work:
        if profiler:
            profiler.enable()
        result = fit(model, tensors, sampler, lambda m: {"recall@20": 0.0}, settings, Path(work), {})
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    errors = getattr(model.item_fusion, "last_marginal_error", {}) if hasattr(model, "item_fusion") else {}
    return [r["train_seconds"] for r in result.history], {"graph": graph.id, "last_marginal_error": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--profile", default=None, choices=list(CONFIGS))
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    ctx = open_context(options.dataset, options.workdir, options.data_root)
    medians = {}
    for name in options.models:
        seconds, info = epoch_seconds(ctx, name, options.epochs, options.profile == name)
        medians[name] = statistics.median(seconds)
        print(json.dumps({"model": name, "dataset": options.dataset, "epoch_seconds": seconds, "median": medians[name], **info,
                          "threads": torch.get_num_threads(), "loadavg": os.getloadavg()[0], "machine": platform.node(),
                          "date": time.strftime("%Y-%m-%d")}), flush=True)
    if "lightgcn" in medians:
        print(json.dumps({f"ratio_{name}_over_lightgcn": round(medians[name] / medians["lightgcn"], 3) for name in medians if name != "lightgcn"}))


if __name__ == "__main__":
    main()
