"""Test Recall@K of train artifacts, per group of users by how many train items they have.

Where does a model gain: on users with little history (where content and the semantic graphs should help)
or on heavy users? Users are split into ``--groups`` groups of (nearly) equal size by train-item count;
every artifact is scored on the same groups (full ranking, train and valid items masked, as ``evaluate``).

    python3 -m benchmarks.studies.by_user_activity --dataset-dir DATA/ml-100k --workdir RUNS \\
        --runs LightGCN=ID1,ID2,ID3 RecGOAT=ID4,ID5,ID6 [--groups 4] [--k 20]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from benchmarks.common import context_from_numpy, per_user_recall
from recgoat_cli.stages.common import split_csr
from recgoat_cli.stages.train import load_embeddings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset-dir", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--runs", nargs="+", required=True, metavar="NAME=ID,ID,...")
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--k", type=int, default=20)
    options = parser.parse_args()
    ctx = context_from_numpy(options.dataset_dir, options.workdir)
    dataset = ctx.dataset
    truth, exclude = split_csr(dataset, "test"), split_csr(dataset, "train", "valid")
    train_items = np.diff(split_csr(dataset, "train")[0])
    with_test = np.flatnonzero(np.diff(truth[0]) > 0)
    order = with_test[np.argsort(train_items[with_test], kind="stable")]
    groups = np.array_split(order, options.groups)
    header = [f"{train_items[g].min()}-{train_items[g].max()} train items ({len(g)} users)" for g in groups]
    print(f"| model | all | " + " | ".join(header) + " |")
    print("|---|---|" + "---|" * len(groups))
    for spec in options.runs:
        name, _, ids = spec.partition("=")
        recalls = [per_user_recall(*load_embeddings(ctx.store.get("train", i)), truth, exclude, options.k) for i in ids.split(",")]
        cells = []
        for members in [with_test, *groups]:
            values = [float(np.mean(r[members])) for r in recalls]
            cells.append(f"{statistics.mean(values):.4f}" + (f" ± {statistics.pstdev(values):.4f}" if len(values) > 1 else ""))
        print(f"| {name} Recall@{options.k} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
