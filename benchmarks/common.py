"""What the benchmarks share: the repository's paths, Baby-shaped training data with synthetic modalities, a
dataset read with numpy (for machines without polars), per-user Recall@K, and how to start a benchmark module in
a fresh process.

Only the standard library is imported at module level (numpy, torch and recgoat load inside the functions), so
that a script can set its thread counts before those libraries start (``speed/eval_speed.py`` does).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
BABY_INTER = SHARED_DATA / "baby" / "baby.inter"
#: Amazon-Baby's shape: users, items, train pairs, test pairs
BABY_USERS, BABY_ITEMS, BABY_TRAIN, BABY_TEST = 19_445, 7_050, 119_674, 20_559


def module_command(module: str, *args: str) -> list[str]:
    """The command that runs ``module`` (e.g. ``benchmarks.speed.knn_scale``) in a fresh interpreter."""
    return [sys.executable, "-m", module, *args]


def module_env(env: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``env`` (default: this process's) with the repository first on ``PYTHONPATH``, so that a child process
    finds ``benchmarks`` and this checkout's ``recgoat_cli`` from any working directory."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env | extra


def baby_interactions(seed: int = 0):
    """Baby's train pairs ``(users, items, n_users, n_items, source)`` from ``../shared/data/baby`` when it is
    there, else random pairs of the same shape."""
    import numpy as np

    if BABY_INTER.is_file():
        import polars as pl

        frame = pl.read_csv(BABY_INTER, separator="\t").filter(pl.col("x_label") == 0)
        return frame["userID"].to_numpy(), frame["itemID"].to_numpy(), BABY_USERS, BABY_ITEMS, "baby"
    rng = np.random.default_rng(seed)
    users = rng.integers(0, BABY_USERS, BABY_TRAIN)
    items = rng.integers(0, BABY_ITEMS, BABY_TRAIN)
    keep = np.unique(users * BABY_ITEMS + items, return_index=True)[1]
    return users[keep], items[keep], BABY_USERS, BABY_ITEMS, "random (baby shape)"


def unit_rows(n: int, d: int, rng):
    """``n`` random unit rows of width ``d`` (float32)."""
    import numpy as np

    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def knn_edges(features, k: int = 10):
    """The symmetric-normalised k-NN graph of ``features`` as (edges [2, E], weights [E]) tensors."""
    import numpy as np
    import torch

    from recgoat_cli.graphs.item_knn import blockwise_topk_cosine, knn_graph

    indices, values = blockwise_topk_cosine(features, k)
    rows, cols, weights = knn_graph(indices, values, features.shape[0], normalize="sym")
    return torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(weights)


def synthetic_recgoat_graph(users, items, n_users, n_items, adjacency) -> tuple[dict, list, int]:
    """RecGOAT's graph tensors with two synthetic modalities of realistic widths (384-d "text", 128-d "image";
    random unit rows) and a 384-d user representation, each with its real 10-NN graph: the cost being measured
    does not depend on what the features mean. Returns (graph, modalities, user feature dim)."""
    import numpy as np
    import torch

    from recgoat_cli.stages.train import lm_features

    rng = np.random.default_rng(0)
    graph = {"adjacency": adjacency}
    modalities = [["text", 384], ["image", 128]]
    for name, dim in modalities:
        features = unit_rows(n_items, dim, rng)
        graph[f"feat:{name}"] = lm_features(features, 64)
        graph[f"item_edges:{name}"], graph[f"item_weights:{name}"] = knn_edges(features)
    user_features = unit_rows(n_users, 384, rng)
    graph["user_feat"] = lm_features(user_features, 64)
    graph["user_edges"], graph["user_weights"] = knn_edges(user_features)
    graph["ui_edges"] = torch.from_numpy(np.stack([items, users]))
    return graph, [[name, 64] for name, _ in modalities], 64


def dataset_from_numpy(root: Path):
    """A prepared dataset folder read with numpy instead of polars (the GPU machine has no polars)."""
    import numpy as np

    from recgoat_cli.data.dataset import SPLITS, Dataset, find_inter_file

    inter = find_inter_file(root)
    table = np.loadtxt(inter, dtype=np.int64, delimiter="\t", skiprows=1, usecols=(0, 1, 2))
    users, items, labels = table[:, 0], table[:, 1], table[:, 2]
    mapping = root / "i_id_mapping.csv"
    n_items = int(items.max()) + 1
    if mapping.is_file():
        n_items = max(n_items, sum(1 for _ in open(mapping)) - 1)
    return Dataset(
        name=root.name, root=root, inter_file=inter, n_users=int(users.max()) + 1, n_items=n_items,
        splits={s: (users[labels == i], items[labels == i]) for i, s in enumerate(SPLITS)},
        user_map=(root / "u_id_mapping.csv") if (root / "u_id_mapping.csv").is_file() else None,
        item_map=mapping if mapping.is_file() else None,
    )


def context_from_numpy(dataset_dir: Path, workdir: Path):
    """A stage context over ``dataset_dir`` (read with numpy) and the artifacts under ``workdir``."""
    from recgoat_cli.artifacts.store import ArtifactStore
    from recgoat_cli.stages.common import StageContext

    dataset = dataset_from_numpy(dataset_dir)
    return StageContext(dataset=dataset, store=ArtifactStore(workdir, dataset.name))


def train_matrix(dataset):
    """The train interactions as a binary [U, I] scipy CSR matrix."""
    import numpy as np
    from scipy import sparse

    from recgoat_cli.stages.common import split_csr

    indptr, indices = split_csr(dataset, "train")
    return sparse.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(dataset.n_users, dataset.n_items))


def centred_item_features(embed) -> dict:
    """Each item modality's rows of an embed artifact, centred and L2-normalised as ``--model late-fusion`` reads
    them (``recgoat_cli.model.late_fusion.centred_unit_rows``), so that dot products are centred cosines."""
    import numpy as np
    import torch

    from recgoat_cli.model.late_fusion import centred_unit_rows
    from recgoat_cli.stages.embed import load_modalities

    items, _ = load_modalities(embed)
    return {name: centred_unit_rows(torch.from_numpy(np.asarray(rows, dtype=np.float32))).numpy() for name, rows in items.items()}


def per_user_recall(users, items, truth, exclude, k: int):
    """Recall@k of every user (NaN for users without ``truth`` items) from user and item embeddings."""
    import torch

    return per_user_recall_of_scores(torch.from_numpy(users) @ torch.from_numpy(items).T, truth, exclude, k)


def per_user_recall_of_scores(scores, truth, exclude, k: int):
    """Recall@k of every user from a full score matrix [U, I] (changed in place: ``exclude`` items get -inf)."""
    import numpy as np
    import torch

    from recgoat_cli.eval.metrics import recall_at_k

    indptr, indices = exclude
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    scores[rows, indices] = -torch.inf
    top = torch.topk(scores, k, dim=1).indices.numpy()
    t_indptr, t_indices = truth
    relevant = np.zeros(scores.shape, dtype=bool)
    relevant[np.repeat(np.arange(len(t_indptr) - 1), np.diff(t_indptr)), t_indices] = True
    hits = torch.from_numpy(np.take_along_axis(relevant, top, axis=1))
    n_relevant = torch.from_numpy(np.diff(t_indptr))
    recall = recall_at_k(hits, n_relevant, k).numpy()
    recall[np.diff(t_indptr) == 0] = np.nan
    return recall
