"""Training epoch time of LightGCN and RecGOAT on Amazon-Baby-sized data, in one process.

The interactions are ``../shared/data/baby`` (19,445 users, 7,050 items, 119,674 train pairs) when it is
there, else random ones of the same shape. Baby ships no side information, so RecGOAT gets two synthetic
modalities of realistic widths (384-d "text", 128-d "image"; random unit rows) and a user representation,
with real 10-NN item-item and user-user graphs built from them: the cost being measured does not depend
on what the features mean. Every epoch is one pass over the train pairs, batch 2048, 64-d, 3 layers.

    .venv/bin/python -m benchmarks.speed.epoch_time [--epochs 2] [--threads N] [--models lightgcn recgoat]

Prints one JSON line per model (median epoch seconds over the measured epochs, excluding evaluation) and
the RecGOAT / LightGCN ratio (goal <= 2.0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import baby_interactions, synthetic_recgoat_graph
from recgoat_cli.data.sampling import NegativeSampler
from recgoat_cli.graphs.user_item import normalized_bipartite_adjacency, user_item_edges
from recgoat_cli.model.registry import build_model
from recgoat_cli.train.loop import TrainSettings, fit


def time_model(name: str, graph: dict, args: dict, sampler, epochs: int) -> list[float]:
    torch.manual_seed(0)
    model = build_model(name, args)
    settings = TrainSettings(epochs=epochs, batch_size=2048, lr=1e-3, reg=1e-4, patience=100, eval_every=10_000, val_metric="recall@20", seed=0)
    with tempfile.TemporaryDirectory() as work:
        result = fit(model, graph, sampler, lambda m: {"recall@20": 0.0}, settings, Path(work), {})
    return [r["train_seconds"] for r in result.history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--models", nargs="+", default=["lightgcn", "recgoat"])
    parser.add_argument("--gat-heads", type=int, default=1)
    parser.add_argument("--kernels", default="auto", help="edge-softmax kernels: auto, native or torch_scatter")
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    users, items, n_users, n_items, source = baby_interactions()
    users, items = user_item_edges(users, items, n_users, n_items)
    adjacency = normalized_bipartite_adjacency(users, items, n_users, n_items).to_sparse_csr()
    sampler = NegativeSampler(torch.from_numpy(users), torch.from_numpy(items), n_items)
    base = {"n_users": n_users, "n_items": n_items, "dim": 64, "n_layers": 3}
    results = {}
    for name in options.models:
        if name == "recgoat":
            graph, modalities, user_dim = synthetic_recgoat_graph(users, items, n_users, n_items, adjacency)
            args = {**base, "modalities": modalities, "user_feature_dim": user_dim, "gat_heads": options.gat_heads, "backend": options.kernels}
        else:
            graph, args = {"adjacency": adjacency}, dict(base)
        seconds = time_model(name, graph, args, sampler, options.epochs)
        results[name] = statistics.median(seconds)
        print(json.dumps({"model": name, "kernels": options.kernels if name == "recgoat" else "-", "data": source, "epoch_seconds": seconds, "median": results[name],
                          "threads": torch.get_num_threads(), "loadavg": os.getloadavg()[0], "machine": platform.node(),
                          "date": time.strftime("%Y-%m-%d")}))
    if {"lightgcn", "recgoat"} <= set(results):
        print(json.dumps({"ratio_recgoat_over_lightgcn": results["recgoat"] / results["lightgcn"]}))


if __name__ == "__main__":
    main()
