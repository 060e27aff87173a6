"""RecGOAT vs LightGCN with the same budget on one dataset, several seeds: test metrics, mean +- std.

Runs the real pipeline (``recgoat run``) once per (model, seed), with the same epochs, patience, learning rate
and validation-only early stopping for both models, then prints one JSON line per run and a summary.

    .venv/bin/python -m benchmarks.studies.compare_models --dataset tiktok --data-root ../shared/data \
        --workdir /tmp/bench --seeds 1 2 3 [--models lightgcn recgoat] [-- extra recgoat run flags]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run(model: str, seed: int, options, extra: list[str]) -> dict:
    recgoat = str(Path(sys.executable).with_name("recgoat"))
    command = [recgoat, "run", "--dataset", options.dataset, "--workdir", options.workdir, "--model", model,
               "--seed", str(seed), "--epochs", str(options.epochs), "--patience", str(options.patience),
               "--lr", str(options.lr), "--k", "10", "20", "--json", *extra]
    if options.data_root:
        command += ["--data-root", options.data_root]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    payload = json.loads(proc.stdout)
    return {"model": model, "seed": seed, "wall_seconds": round(time.perf_counter() - start, 1),
            "best_epoch": payload["train"]["best_epoch"], "epochs_run": payload["train"]["epochs_run"],
            "mean_epoch_seconds": payload["train"]["mean_epoch_seconds"], "test": payload["evaluate"]["metrics"],
            "train_artifact": payload["train"]["artifact_id"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--workdir", default="runs/bench")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--models", nargs="+", default=["lightgcn", "recgoat"])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    options, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    results = []
    for model in options.models:
        for seed in options.seeds:
            results.append(run(model, seed, options, extra if model == "recgoat" else []))
            print(json.dumps(results[-1]), flush=True)
    summary = {}
    for model in options.models:
        rows = [r for r in results if r["model"] == model]
        summary[model] = {
            key: {"mean": statistics.mean(r["test"][key] for r in rows), "std": statistics.pstdev(r["test"][key] for r in rows)}
            for key in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
        }
        summary[model]["mean_epoch_seconds"] = statistics.mean(r["mean_epoch_seconds"] for r in rows)
    print(json.dumps({"dataset": options.dataset, "seeds": options.seeds, "summary": summary}))


if __name__ == "__main__":
    main()
