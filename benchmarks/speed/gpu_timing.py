"""Epoch and evaluation times on a CUDA GPU: LightGCN vs RecGOAT (native kernels, and torch-scatter when it
imports), Baby-shaped data (random interactions of Baby's size when ``../shared/data`` is absent).

    python3 -m benchmarks.speed.gpu_timing [--epochs 3]

Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import baby_interactions, synthetic_recgoat_graph
from recgoat_cli.data.sampling import NegativeSampler
from recgoat_cli.eval.ranker import csr_from_pairs, evaluate_ranking
from recgoat_cli.graphs.user_item import normalized_bipartite_adjacency, user_item_edges
from recgoat_cli.model.registry import build_model
from recgoat_cli.model.scatter import available_backends
from recgoat_cli.train.loop import TrainSettings, fit


def timed_fit(name: str, args: dict, graph: dict, sampler, epochs: int, device: torch.device) -> list[float]:
    torch.manual_seed(0)
    model = build_model(name, args).to(device)
    settings = TrainSettings(epochs=epochs, batch_size=2048, lr=1e-3, reg=1e-4, patience=100, eval_every=10_000, val_metric="recall@20", seed=0)

    def validate(m):
        torch.cuda.synchronize()
        return {"recall@20": 0.0}

    with tempfile.TemporaryDirectory() as work:
        result = fit(model, graph, sampler, validate, settings, Path(work), {})
    return [r["train_seconds"] for r in result.history]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    options = parser.parse_args()
    device = torch.device("cuda")
    print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "backends": available_backends()}))
    users, items, n_users, n_items, source = baby_interactions()
    users, items = user_item_edges(users, items, n_users, n_items)
    adjacency = normalized_bipartite_adjacency(users, items, n_users, n_items).to_sparse_csr()
    sampler = NegativeSampler(torch.from_numpy(users), torch.from_numpy(items), n_items)
    base = {"n_users": n_users, "n_items": n_items, "dim": 64, "n_layers": 3}
    runs = [("lightgcn", dict(base), {"adjacency": adjacency})]
    graph, modalities, user_dim = synthetic_recgoat_graph(users, items, n_users, n_items, adjacency)
    for backend in available_backends():
        runs.append((f"recgoat[{backend}]", {**base, "modalities": modalities, "user_feature_dim": user_dim, "backend": backend}, graph))
    medians = {}
    for label, args, tensors in runs:
        seconds = timed_fit(label.split("[")[0], args, tensors, sampler, options.epochs, device)
        medians[label] = statistics.median(seconds[1:] or seconds)  # the first epoch includes CUDA warm-up
        print(json.dumps({"model": label, "data": source, "epoch_seconds": seconds, "median_after_first": medians[label]}))
    for label in medians:
        if label != "lightgcn":
            print(json.dumps({"ratio": f"{label} / lightgcn", "value": medians[label] / medians["lightgcn"]}))
    rng = np.random.default_rng(0)
    truth = csr_from_pairs(rng.integers(0, n_users, 20559), rng.integers(0, n_items, 20559), n_users, n_items)
    exclude = csr_from_pairs(users, items, n_users, n_items)
    user_emb = torch.randn(n_users, 64, device=device)
    item_emb = torch.randn(n_items, 64, device=device)
    evaluate_ranking(user_emb, item_emb, *truth, *exclude, ks=[10, 20])
    seconds = []
    for _ in range(5):
        torch.cuda.synchronize()
        start = time.perf_counter()
        evaluate_ranking(user_emb, item_emb, *truth, *exclude, ks=[10, 20])
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"benchmark": "evaluate_ranking on cuda", "users": n_users, "items": n_items, "median_seconds": statistics.median(seconds)}))


if __name__ == "__main__":
    main()
