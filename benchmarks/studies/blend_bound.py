"""How much could another signal add to a trained model? Late fusion of its scores with a second ranker.

For every train artifact the user-item scores of the model are standardised per user (z-scores over all items)
and added to ``alpha`` times the standardised scores of a second ranker:

* ``content: <modality>``: the sum of cosine similarities of an item's centred features to the user's train
  items (as ``studies/content_signal.py`` and ``recgoat train --model late-fusion``), from the dataset's embed artifact;
* ``co-interaction``: item-based kNN on the train interactions (cosine between item columns, every item
  except the item itself), the classical ItemKNN.

``recgoat train --model late-fusion`` makes the content blend as a train artifact (the same z-scores; its
weight grid is ``--late-fusion-grid``). Here ``alpha`` is chosen on validation Recall@K (train items masked) and
the chosen blend is scored on test (train and valid items masked), as the train stage would. The best test score over the whole ``alpha`` grid is printed
too: it is an optimistic bound (selected on test), reported only to say how much a blend could give at best.

    python3 -m benchmarks.studies.blend_bound --dataset-dir DATA/ml-100k --workdir RUNS --runs ID1 ID2 ID3 [--k 20]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
from scipy import sparse

from benchmarks.common import centred_item_features, context_from_numpy, per_user_recall_of_scores, train_matrix
from recgoat_cli.stages.common import split_csr
from recgoat_cli.stages.train import load_embeddings

ALPHAS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)


def mean_recall(scores: np.ndarray, truth, exclude, k: int) -> float:
    """Mean Recall@k over users with at least one ``truth`` item; ``exclude`` items are never ranked."""
    return float(np.nanmean(per_user_recall_of_scores(torch.from_numpy(scores.copy()), truth, exclude, k)))


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per-user z-scores over all items."""
    return (scores - scores.mean(axis=1, keepdims=True)) / np.maximum(scores.std(axis=1, keepdims=True), 1e-12)


def second_rankers(ctx, train: sparse.csr_matrix) -> dict[str, np.ndarray]:
    """Standardised score matrices [U, I] of the content rankers (one per item modality) and ItemKNN."""
    rankers = {
        f"content: {name}": standardise(np.asarray(train @ (features @ features.T), dtype=np.float32))
        for name, features in centred_item_features(ctx.store.get("embed")).items()
    }
    columns = train.T.tocsr().astype(np.float32)
    norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=1))).ravel()
    similarity = (columns @ columns.T).toarray() / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(similarity, 0.0)
    rankers["co-interaction (ItemKNN)"] = standardise(np.asarray(train @ similarity, dtype=np.float32))
    return rankers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-dir", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--runs", nargs="+", required=True, metavar="TRAIN_ARTIFACT_ID")
    parser.add_argument("--k", type=int, default=20)
    options = parser.parse_args()
    ctx = context_from_numpy(options.dataset_dir, options.workdir)
    dataset = ctx.dataset
    train = train_matrix(dataset)
    valid, test = split_csr(dataset, "valid"), split_csr(dataset, "test")
    seen_train, seen_train_valid = split_csr(dataset, "train"), split_csr(dataset, "train", "valid")
    others = second_rankers(ctx, train)
    models = []  # each run's standardised scores, loaded once for every second ranker
    for artifact_id in options.runs:
        users, items = load_embeddings(ctx.store.get("train", artifact_id))
        models.append(standardise(users @ items.T))
    k = options.k
    print(f"| second ranker | alone: test R@{k} | model alone: test R@{k} | blend, alpha chosen on valid: test R@{k} "
          f"(alphas) | best alpha on test (optimistic) |")
    print("|---|---|---|---|---|")
    for name, other in others.items():
        alone = mean_recall(other, test, seen_train_valid, k)
        base, chosen, oracle, alphas = [], [], [], []
        for model in models:
            blends = {a: model + a * other for a in ALPHAS}
            on_valid = {a: mean_recall(s, valid, seen_train, k) for a, s in blends.items()}
            on_test = {a: mean_recall(s, test, seen_train_valid, k) for a, s in blends.items()}
            best = max(ALPHAS, key=lambda a: (on_valid[a], -a))
            base.append(on_test[0.0])
            chosen.append(on_test[best])
            oracle.append(max(on_test.values()))
            alphas.append(best)

        def cell(values):
            return f"{statistics.mean(values):.4f} ± {statistics.pstdev(values):.4f}"

        print(f"| {name} | {alone:.4f} | {cell(base)} | {cell(chosen)} ({', '.join(f'{a:g}' for a in alphas)}) | {cell(oracle)} |")


if __name__ == "__main__":
    main()
