"""Test metrics over seeds of LightGCN, RecGOAT's default and ``--preset reference``, through the CLI.

For every dataset and variant: ``recgoat train --seeds ...`` (early stopping on validation, nothing tuned), then
``recgoat evaluate --from <the seed runs> --k 10 20`` (the test split, read once per run). The embed and
build-graph artifacts are made by the CLI's own stages when absent. Prints a JSON line per (dataset, variant)
and, at the end, a markdown table (mean ± population std over the seeds, and the mean training epoch time of
the runs, measured while ``--jobs`` runs shared the machine).

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.studies.preset_seeds --datasets scientific tiktok \\
        --data-root ../shared/data --workdir runs/real [--seeds 1 2 3] [--jobs 2] [--variants lightgcn recgoat reference]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VARIANTS = {
    "lightgcn": ["--model", "lightgcn"],
    "recgoat": ["--model", "recgoat"],
    "reference": ["--model", "recgoat", "--preset", "reference"],
    "reference-plan-none": ["--model", "recgoat", "--preset", "reference", "--map-plan", "none"],
}
RECGOAT = [sys.executable, "-m", "recgoat_cli"]


def cli(*args: str) -> dict:
    done = subprocess.run([*RECGOAT, *args, "--json", "--quiet"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"recgoat {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def common_args(dataset: str, options) -> list[str]:
    return ["--dataset", dataset, "--workdir", str(options.workdir)] + (["--data-root", str(options.data_root)] if options.data_root else [])


def graph_ids(dataset: str, options) -> dict[str, str]:
    """The build-graph artifact of each variant, made (or found) before any training starts: runs of one dataset
    train at the same time, so none may rely on the stage's ``latest`` pointer."""
    cli("embed", *common_args(dataset, options))  # the defaults (MiniLM text offline, the dataset's feature files)
    default = cli("build-graph", *common_args(dataset, options))["artifact_id"]
    reference = cli("build-graph", *common_args(dataset, options), "--knn-k", "20")["artifact_id"]  # --preset reference's graph
    return {variant: reference if "--preset" in flags else default for variant, flags in VARIANTS.items()}


def one(dataset: str, variant: str, graph: str, options) -> dict:
    common = common_args(dataset, options)
    started = time.time()
    epochs = ["--epochs", str(options.epochs)] if options.epochs else []
    trained = cli("train", *common, *VARIANTS[variant], *epochs, "--from", graph, "--seeds", *map(str, options.seeds))
    ids = [run["artifact_id"] for run in trained["runs"]]
    evaluated = cli("evaluate", *common, "--from", *ids, "--k", "10", "20")
    epoch_seconds = [run["mean_epoch_seconds"] for run in trained["runs"] if run.get("mean_epoch_seconds")]
    return {
        "dataset": dataset, "variant": variant, "flags": " ".join(VARIANTS[variant]), "seeds": options.seeds, "graph": graph, "train_ids": ids,
        "metrics": evaluated["metrics"], "std": evaluated.get("std", {}),
        "best_epochs": [run["best_epoch"] for run in trained["runs"]],
        "mean_epoch_seconds": statistics.mean(epoch_seconds) if epoch_seconds else None,
        "wall_seconds": round(time.time() - started, 1), "date": time.strftime("%Y-%m-%d"),
    }


def table(records: list[dict]) -> str:
    lines = ["| dataset | variant | Recall@20 | NDCG@20 | Recall@10 | best epochs | s / epoch |", "|---|---|---|---|---|---|---|"]
    for r in records:
        cell = lambda k: f"{r['metrics'][k]:.4f} ± {r['std'].get(k, 0.0):.4f}"  # noqa: E731
        seconds = f"{r['mean_epoch_seconds']:.2f}" if r["mean_epoch_seconds"] else "-"
        lines.append(f"| {r['dataset']} | {r['variant']} | {cell('recall@20')} | {cell('ndcg@20')} | {cell('recall@10')} | "
                     f"{', '.join(map(str, r['best_epochs']))} | {seconds} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=["lightgcn", "recgoat", "reference"], choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None, help="cap on epochs (default: train's own, 300 with early stopping)")
    parser.add_argument("--graphs", nargs=2, metavar=("DEFAULT", "K20"), default=None,
                        help="build-graph artifact ids to train from (the default graph, the k=20 one) instead of running embed and build-graph")
    options = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if options.graphs:
        if len(options.datasets) != 1:
            parser.error("--graphs names one dataset's graphs; pass one dataset")
        default, k20 = options.graphs
        graphs = {options.datasets[0]: {v: k20 if "--preset" in flags else default for v, flags in VARIANTS.items()}}
    else:
        graphs = {dataset: graph_ids(dataset, options) for dataset in options.datasets}
    jobs = [(d, v, graphs[d][v]) for d in options.datasets for v in options.variants]
    records = []
    with ThreadPoolExecutor(options.jobs) as pool:
        for record in pool.map(lambda job: one(*job, options), jobs):
            print(json.dumps(record), flush=True)
            records.append(record)
    print(table(records))


if __name__ == "__main__":
    main()
