"""How much does each modality predict by itself? Test Recall@K of content-only and popularity rankers.

A user's score for item i is the sum of cos(x_i, x_j) over the user's train items j, with the modality's
centred features x from an embed artifact (the rows `recgoat embed` made; the content ranker of
``--model late-fusion``); popularity ranks by train count. Same full ranking and masking as ``evaluate``. A modality that ranks no better than popularity
gives RecGOAT's content views little to add to the collaborative ones.

    python3 -m benchmarks.studies.content_signal --dataset-dir DATA/ml-100k --workdir RUNS [--k 20]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.common import centred_item_features, context_from_numpy, per_user_recall, train_matrix
from recgoat_cli.stages.common import split_csr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-dir", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--k", type=int, default=20)
    options = parser.parse_args()
    ctx = context_from_numpy(options.dataset_dir, options.workdir)
    dataset = ctx.dataset
    truth, exclude = split_csr(dataset, "test"), split_csr(dataset, "train", "valid")
    train = train_matrix(dataset)
    rankers = {"popularity": (np.ones((dataset.n_users, 1), np.float32), np.asarray(train.sum(axis=0)).T.astype(np.float32))}
    for name, features in centred_item_features(ctx.store.get("embed")).items():
        rankers[f"content: {name}"] = (np.asarray(train @ features, dtype=np.float32), features)
    print(f"| ranker | test Recall@{options.k} |\n|---|---|")
    for name, (users, items) in rankers.items():
        print(f"| {name} | {np.nanmean(per_user_recall(users, items, truth, exclude, options.k)):.4f} |")


if __name__ == "__main__":
    main()
