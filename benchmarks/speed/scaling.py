"""Training epoch time on 1 process against N processes under torchrun (DDP): the table of docs/scaling.md.

    .venv/bin/python -m benchmarks.speed.scaling [--data sample|baby] [--models lightgcn recgoat] [--epochs 4]
        [--repeats 3] [--layouts 1x1 1x2 2x1] [--device cpu|cuda] [--batch-size 2048] [--scale-batch]

A layout ``PxT`` is P processes with T threads each: ``1xT`` runs one plain process (no process group, the
code path of every single-process run), ``PxT`` with P > 1 runs ``python -m torch.distributed.run
--nproc-per-node P -m benchmarks.speed.scaling --worker ...`` with ``OMP_NUM_THREADS=T``. Each run trains with the
shared loop (``train/loop.py``: global batch ``--batch-size``, 64-d, 3 layers) and reports rank 0's
``train_seconds`` per epoch (the ranks meet at every all-reduce, so rank 0's epoch is the job's epoch; evaluation is excluded).
The first epoch is a warm-up and not counted; each layout's number is the minimum over ``--repeats`` runs of
the median of its other epochs, because the machines this runs on are shared.

``--scale-batch`` makes the global batch ``--batch-size`` times the number of processes (the per-rank batch
stays ``--batch-size``; fewer, larger steps per epoch), the usual way to gain speed from data parallelism.
Without it the global batch, and so every step's triples, are the single-process ones.

Data: ``sample`` is the train split of the shipped ``sample_data/``; ``baby`` is ``../shared/data/baby`` when
present, else random interactions of Baby's shape (as ``benchmarks/speed/epoch_time.py``; ``benchmarks/common.py``
also supplies RecGOAT's synthetic modalities and kNN graphs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from benchmarks.common import REPO_ROOT, baby_interactions, module_command, module_env, synthetic_recgoat_graph


def load_sample():
    import polars as pl

    frame = pl.read_csv(REPO_ROOT / "sample_data" / "sample.inter", separator="\t")
    train = frame.filter(pl.col("x_label") == 0)
    return train["userID"].to_numpy(), train["itemID"].to_numpy(), int(frame["userID"].max()) + 1, int(frame["itemID"].max()) + 1, "sample_data"


def worker(options) -> None:
    import torch

    from recgoat_cli import distributed
    from recgoat_cli.data.sampling import NegativeSampler
    from recgoat_cli.graphs.user_item import normalized_bipartite_adjacency, user_item_edges
    from recgoat_cli.model.registry import build_model
    from recgoat_cli.train.loop import TrainSettings, fit

    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if options.device == "cuda" else torch.device("cpu")
    with distributed.process_group(device) if distributed.requested() else nullcontext():
        if options.threads:
            torch.set_num_threads(options.threads)
        users, items, n_users, n_items, source = load_sample() if options.data == "sample" else baby_interactions()
        users, items = user_item_edges(users, items, n_users, n_items)
        adjacency = normalized_bipartite_adjacency(users, items, n_users, n_items).to_sparse_csr()
        sampler = NegativeSampler(torch.from_numpy(users), torch.from_numpy(items), n_items)
        args = {"n_users": n_users, "n_items": n_items, "dim": 64, "n_layers": 3}
        if options.model == "recgoat":
            graph, modalities, user_dim = synthetic_recgoat_graph(users, items, n_users, n_items, adjacency)
            args.update(modalities=modalities, user_feature_dim=user_dim)
        else:
            graph = {"adjacency": adjacency}
        torch.manual_seed(0)
        model = build_model(options.model, args).to(device)
        settings = TrainSettings(epochs=options.epochs, batch_size=options.batch_size, lr=1e-3, reg=1e-4, patience=100, eval_every=10**6, val_metric="recall@20", seed=0)
        with tempfile.TemporaryDirectory() as work:
            result = fit(model, graph, sampler, lambda m: {"recall@20": 0.0}, settings, Path(work), {})
        if distributed.is_main():
            print(json.dumps({"epoch_seconds": [r["train_seconds"] for r in result.history], "data": source,
                              "n_train": int(len(users)), "world": distributed.world_size()}), flush=True)


def run_layout(options, model: str, procs: int, threads: int) -> dict:
    # keeps the caller's PYTHONPATH (the GPU machine's extra packages live there) and adds the repository
    env = module_env(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    env.pop("WORLD_SIZE", None)
    worker_args = ["--worker", "--model", model, "--data", options.data, "--epochs", str(options.epochs),
                   "--threads", str(threads), "--device", options.device,
                   "--batch-size", str(options.batch_size * (procs if options.scale_batch else 1))]
    if procs == 1:
        command = module_command("benchmarks.speed.scaling", *worker_args)
    else:
        command = module_command("torch.distributed.run", "--standalone", "--nproc-per-node", str(procs), "-m", "benchmarks.speed.scaling", *worker_args)
    process = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO_ROOT)
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{process.stderr[-3000:]}")
    return json.loads([line for line in process.stdout.splitlines() if line.startswith("{")][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="lightgcn", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", choices=["sample", "baby"], default="sample")
    parser.add_argument("--models", nargs="+", default=["lightgcn"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layouts", nargs="+", default=["1x1", "1x2", "2x1"], help="PROCESSESxTHREADS, e.g. 1x2 2x1")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch-size", type=int, default=2048, help="global batch (per rank with --scale-batch)")
    parser.add_argument("--scale-batch", action="store_true", help="global batch = --batch-size x processes")
    options = parser.parse_args()
    if options.worker:
        worker(options)
        return
    rows = []
    for model in options.models:
        for layout in options.layouts:
            procs, threads = (int(part) for part in layout.split("x"))
            medians, runs = [], []
            for _ in range(options.repeats):
                run = run_layout(options, model, procs, threads)
                runs.append(run["epoch_seconds"])
                counted = run["epoch_seconds"][1:] or run["epoch_seconds"]
                medians.append(statistics.median(counted))
            row = {"model": model, "data": run["data"], "n_train": run["n_train"], "device": options.device, "processes": procs,
                   "threads_per_process": threads, "global_batch": options.batch_size * (procs if options.scale_batch else 1), "epoch_seconds": min(medians), "runs": runs, "loadavg": round(os.getloadavg()[0], 2),
                   "machine": f"{platform.node()} ({os.cpu_count()} cores)", "date": time.strftime("%Y-%m-%d")}
            rows.append(row)
            print(json.dumps(row), flush=True)
    for model in options.models:
        base = next(r["epoch_seconds"] for r in rows if r["model"] == model)
        print(f"| {model} | layout | s / epoch | speed-up vs {options.layouts[0]} |")
        for row in (r for r in rows if r["model"] == model):
            print(f"| | {row['processes']} x {row['threads_per_process']} | {row['epoch_seconds']:.3f} | {base / row['epoch_seconds']:.2f} |")


if __name__ == "__main__":
    main()
