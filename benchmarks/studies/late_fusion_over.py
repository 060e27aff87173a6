"""Late fusion over any train artifact: what a validation-chosen content weight adds to a trained model.

For each train artifact id given: the artifact's own test metrics, then ``recgoat --model late-fusion``'s rule
applied to it (the artifact's per-user z-scores plus ``w`` times the z-scored content ranker of each modality of
the embed artifact the artifact was trained from, ``w`` chosen on validation from the late-fusion grid, train
items masked), and the fused test metrics (train and valid items masked, as ``recgoat evaluate``). Test is read
once per artifact and fused table. One JSON line per artifact.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.studies.late_fusion_over --dataset scientific \\
        --data-root ../shared/data --workdir runs/real ID [ID ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from recgoat_cli.config import TrainConfig
from recgoat_cli.eval.sharded import evaluate_ranking_sharded
from recgoat_cli.model.late_fusion import centred_unit_rows, choose_weights, content_user_rows, fused_tables
from recgoat_cli.stages.common import open_context, split_csr
from recgoat_cli.stages.embed import load_modalities
from recgoat_cli.stages.train import load_embeddings


def embed_of(ctx, artifact):
    """The embed artifact upstream of a train artifact: its own (content models) or its build-graph artifact's."""
    embed_id = artifact.manifest.upstream_id("embed")
    if embed_id is None:
        embed_id = ctx.store.get("build-graph", artifact.manifest.upstream_id("build-graph")).manifest.upstream_id("embed")
    return ctx.store.get("embed", embed_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("ids", nargs="+")
    options = parser.parse_args()
    torch.set_num_threads(1)
    ctx = open_context(options.dataset, options.workdir, options.data_root)
    train, valid, test = (split_csr(ctx.dataset, split) for split in ("train", "valid", "test"))
    test_mask = split_csr(ctx.dataset, "train", "valid")
    grid = TrainConfig.model_fields["late_fusion_grid"].default
    for artifact_id in options.ids:
        artifact = ctx.store.get("train", artifact_id)
        features, _ = load_modalities(embed_of(ctx, artifact))
        rankers = [tuple(torch.from_numpy(a) for a in load_embeddings(artifact))]
        for matrix in features.values():
            unit = centred_unit_rows(torch.from_numpy(np.asarray(matrix, dtype=np.float32)))
            rankers.append((content_user_rows(torch.from_numpy(train[0]), torch.from_numpy(train[1]), unit), unit))

        def valid_score(weights: list[float]) -> float:
            users, items = fused_tables(rankers, [1.0] + weights)
            return evaluate_ranking_sharded(users, items, valid, train, ks=[options.k], metrics=["recall"])[0][f"recall@{options.k}"]

        weights, best = choose_weights(valid_score, len(features), grid)
        metrics = ["recall", "ndcg"]
        own = evaluate_ranking_sharded(*rankers[0], test, test_mask, ks=[options.k], metrics=metrics)[0]
        fused = evaluate_ranking_sharded(*fused_tables(rankers, [1.0] + weights), test, test_mask, ks=[options.k], metrics=metrics)[0]
        config = artifact.manifest.config
        print(json.dumps({
            "artifact": artifact_id, "model": config["model"], "seed": config["seed"],
            "weights": dict(zip(features, weights)), "valid_fused": round(best, 4),
            "test": {k: round(v, 4) for k, v in own.items()}, "test_fused": {k: round(v, 4) for k, v in fused.items()},
        }), flush=True)


if __name__ == "__main__":
    main()
