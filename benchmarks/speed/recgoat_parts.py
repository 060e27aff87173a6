"""What each part of RecGOAT costs per training batch, in LightGCN batches, on Amazon-Baby-sized data.

Same data and graphs as ``benchmarks/speed/epoch_time.py``. Each variant (LightGCN, the full model, the model
without CMCL / OAT / both, each graph branch alone, no attention) runs one forward + backward on a batch of
2048 BPR triples; the variants take turns for ``--rounds`` rounds and each reports its minimum process CPU
time, which other processes on the machine disturb less than wall time.

    .venv/bin/python -m benchmarks.speed.recgoat_parts [--rounds 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.common import baby_interactions, synthetic_recgoat_graph
from recgoat_cli.graphs.user_item import normalized_bipartite_adjacency, user_item_edges
from recgoat_cli.model.bpr import bpr_loss
from recgoat_cli.model.registry import build_model

VARIANTS = {
    "full": {},
    "no_cmcl": {"cmcl": False},
    "no_oat": {"oat": False},
    "no_cmcl_no_oat": {"cmcl": False, "oat": False},
    "item_graphs_only": {"graphs": ["item"], "user_feature_dim": 0, "cmcl": False, "oat": False},
    "user_item_only": {"graphs": ["user-item"], "user_feature_dim": 0, "cmcl": False, "oat": False},
    "user_user_only": {"graphs": ["user-user"], "modalities": [], "cmcl": False, "oat": False},
    "no_attention": {"graphs": [], "cmcl": False, "oat": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    users, items, n_users, n_items, source = baby_interactions()
    users, items = user_item_edges(users, items, n_users, n_items)
    adjacency = normalized_bipartite_adjacency(users, items, n_users, n_items).to_sparse_csr()
    graph, modalities, user_dim = synthetic_recgoat_graph(users, items, n_users, n_items, adjacency)
    base = {"n_users": n_users, "n_items": n_items, "dim": 64, "n_layers": 3}
    torch.manual_seed(0)
    models = {"lightgcn": build_model("lightgcn", dict(base))}
    for name, change in VARIANTS.items():
        models[name] = build_model("recgoat", {**base, "modalities": modalities, "user_feature_dim": user_dim, **change})
    generator = torch.Generator().manual_seed(0)
    user_ids, item_ids = torch.from_numpy(users), torch.from_numpy(items)

    def step(model) -> None:
        pick = torch.randint(0, len(user_ids), (2048,), generator=generator)
        u, i, j = user_ids[pick], item_ids[pick], torch.randint(0, n_items, (2048,), generator=generator)
        batch_users, user_rows = torch.unique(u, return_inverse=True)
        batch_items, item_rows = torch.unique(torch.cat([i, j]), return_inverse=True)
        out = model(graph, batch_users, batch_items)
        vectors = out.users[user_rows]
        loss = bpr_loss((vectors * out.items[item_rows[:2048]]).sum(-1), (vectors * out.items[item_rows[2048:]]).sum(-1))
        if hasattr(model, "auxiliary_losses"):
            loss = loss + sum(model.auxiliary_losses(out, torch.arange(len(batch_users)), torch.unique(item_rows[:2048])).values())
        loss.backward()
        model.zero_grad(set_to_none=True)

    seconds = {name: [] for name in models}
    for model in models.values():
        step(model)
    for _ in range(options.rounds):
        for name, model in models.items():
            start = time.process_time()
            step(model)
            seconds[name].append(time.process_time() - start)
    best = {name: min(values) for name, values in seconds.items()}
    for name, value in best.items():
        print(json.dumps({"variant": name, "ms": round(value * 1000, 1), "lightgcn_batches": round(value / best["lightgcn"], 2),
                          "data": source, "threads": options.threads, "date": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    main()
