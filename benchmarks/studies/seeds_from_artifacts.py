"""Train and test LightGCN and RecGOAT over several seeds from existing embed/build-graph artifacts.

Meant for a GPU machine that has torch but not the whole recgoat stack (no polars there): the dataset's
``.inter`` file is read with numpy, and the stage functions ``run_train`` / ``run_evaluate`` do the rest on the
artifacts found under ``--workdir`` (copy ``<workdir>/<dataset>/{embed,build-graph}`` and the dataset folder).

    python3 -m benchmarks.studies.seeds_from_artifacts --dataset-dir DATA/tiktok --workdir RUNS --seeds 1 2 3 --device cuda \
        [--set gat_values=id ...]   (train options for RecGOAT, as `recgoat tune --grid` names them)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks.common import context_from_numpy
from recgoat_cli.config import EvalConfig, TrainConfig
from recgoat_cli.stages.evaluate import run_evaluate
from recgoat_cli.stages.train import run_train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-dir", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--models", nargs="+", default=["lightgcn", "recgoat"])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="RecGOAT train options, e.g. gat_values=id")
    options = parser.parse_args()
    ctx = context_from_numpy(options.dataset_dir, options.workdir)
    dataset = ctx.dataset
    graph = ctx.store.get("build-graph")
    rows = []
    for model in options.models:
        for seed in options.seeds:
            start = time.perf_counter()
            extra = dict(item.split("=", 1) for item in options.set) if model == "recgoat" else {}
            config = TrainConfig(model=model, seed=seed, epochs=options.epochs, patience=options.patience, device=options.device, **extra)
            trained, _ = run_train(ctx, config, graph)
            evaluated, _ = run_evaluate(ctx, EvalConfig(ks=(10, 20), split="test", device=options.device), trained)
            summary = trained.manifest.summary
            rows.append({"model": model, "seed": seed, "best_epoch": summary["best_epoch"], "epochs_run": summary["epochs_run"],
                         "mean_epoch_seconds": summary["mean_epoch_seconds"], "wall_seconds": round(time.perf_counter() - start, 1),
                         "test": evaluated.manifest.summary["metrics"], "device": summary["device"]})
            print(json.dumps(rows[-1]), flush=True)
    for model in options.models:
        picked = [r for r in rows if r["model"] == model]
        stats = {k: (statistics.mean(r["test"][k] for r in picked), statistics.pstdev(r["test"][k] for r in picked))
                 for k in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")}
        print(json.dumps({"dataset": dataset.name, "model": model, "seeds": options.seeds,
                          "mean_std": {k: [round(m, 4), round(s, 4)] for k, (m, s) in stats.items()}}))


if __name__ == "__main__":
    main()
