"""LightGCN, FREEDOM and late fusion at their defaults, scored on both masking protocols, next to MMRec's numbers.

From the dataset's embed and build-graph artifacts (``recgoat embed`` and ``recgoat build-graph`` first), trains
``--model lightgcn``, ``--model freedom`` and ``--model late-fusion`` (cached artifacts are reused) for each seed
and evaluates each on test twice: ``--mask train+valid`` (recgoat's default) and ``--mask train`` (the MMRec
toolbox's protocol, which its reported numbers use). Prints one markdown table.

    python3 -m benchmarks.studies.mmrec_protocol --dataset scientific --data-root ../shared/data --workdir RUNS [--seeds 2024] [--epochs 1000]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from recgoat_cli.config import EvalConfig, TrainConfig
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.evaluate import run_evaluate
from recgoat_cli.stages.train import run_train

#: the MMRec toolbox's test numbers on ``scientific`` (its protocol: train items masked), from issue 16
MMREC = {"scientific": {"lightgcn": (0.1758, None), "freedom": (0.2040, 0.1047)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2024])
    parser.add_argument("--epochs", type=int, default=1000, help="the cap (MMRec: 1000); early stopping decides")
    options = parser.parse_args()
    ctx = open_context(options.dataset, options.workdir, options.data_root)
    graph = ctx.store.get("build-graph")
    reference = MMREC.get(ctx.key, {})
    print("| model | mask | test Recall@20 | test NDCG@20 | mean epoch s | MMRec (mask train): Recall@20, NDCG@20 |")
    print("|---|---|---|---|---|---|")
    for model in ("lightgcn", "freedom", "late-fusion"):
        runs = [run_train(ctx, TrainConfig(model=model, epochs=options.epochs, seed=seed), graph)[0] for seed in options.seeds]
        seconds = statistics.mean(r.manifest.summary["mean_epoch_seconds"] or 0.0 for r in runs)
        for mask in ("train+valid", "train"):
            metrics = [run_evaluate(ctx, EvalConfig(ks=(20,), mask=mask), r)[0].manifest.summary["metrics"] for r in runs]

            def cell(key: str) -> str:
                values = [m[key] for m in metrics]
                return f"{statistics.mean(values):.4f}" + (f" ± {statistics.pstdev(values):.4f}" if len(values) > 1 else "")

            recall, ndcg = reference.get(model, (None, None))
            mmrec = ", ".join(f"{v:.4f}" if v is not None else "-" for v in (recall, ndcg)) if mask == "train" and model in reference else ""
            print(f"| {model} | {mask} | {cell('recall@20')} | {cell('ndcg@20')} | {seconds:.2f} | {mmrec} |")


if __name__ == "__main__":
    main()
