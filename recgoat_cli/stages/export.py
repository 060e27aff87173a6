"""``recgoat export``: per-user top-N recommendations with original ids, and the learned embeddings.

Files: ``recommendations.parquet`` (or ``.csv``) with columns ``user_id, item_id, rank, score`` (original
ids from the dataset's id maps, rank from 1), ``user_embeddings.npy`` / ``item_embeddings.npy`` with
``user_ids.txt`` / ``item_ids.txt`` naming their rows, and ``lineage.json`` naming the artifacts they came from.
``--format torchscript`` writes ``scorer.pt`` instead of the lists: a TorchScript module that a process with
only ``torch`` loads and asks for the top K of any known user (``recgoat_cli.export.scorer``).
"""

from __future__ import annotations

import json
import shutil

import numpy as np

from recgoat_cli.artifacts.manifest import compute_artifact_id
from recgoat_cli.artifacts.store import Artifact
from recgoat_cli.config import ExportConfig
from recgoat_cli.data.dataset import read_id_map
from recgoat_cli.limits import check_export
from recgoat_cli.stages.common import StageContext, resolve_device, split_csr
from recgoat_cli.stages.train import load_embeddings

STAGE = "export"
EXCLUDED_SPLITS = {"train": ("train",), "train+valid": ("train", "valid"), "none": ()}


def lineage(trained: Artifact) -> dict:
    chain = {"train": trained.id}
    # a late-fusion artifact's upstream holds its base train artifact: the chain names the one exported
    chain.update({u.stage: u.artifact_id for u in trained.manifest.upstream if u.stage not in chain})
    return chain


def recommend(ctx: StageContext, config: ExportConfig, trained: Artifact) -> tuple[np.ndarray, np.ndarray]:
    """Top-N item ids and scores for every user, ``[n_users, top_k]`` each (ids -1 pad short lists)."""
    import torch

    from recgoat_cli.eval.ranker import rank_users

    device = resolve_device(config.device)
    users, items = (torch.from_numpy(a).to(device) for a in load_embeddings(trained))
    splits = EXCLUDED_SPLITS[config.exclude]
    exclude = split_csr(ctx.dataset, *splits) if splits else (None, None)
    all_users = torch.arange(ctx.dataset.n_users, device=device)
    ids, scores = rank_users(users, items, all_users, *exclude, config.top_k, batch_size=config.batch_size)
    return ids.cpu().numpy(), scores.float().cpu().numpy()


def write_scorer(ctx: StageContext, config: ExportConfig, trained: Artifact, path, user_ids, item_ids, chain: dict) -> None:
    """``scorer.pt``: the embeddings, original ids, the ``--exclude`` splits' CSR and the lineage, scripted."""
    from recgoat_cli.export.scorer import build_scorer, save_scorer

    users, items = load_embeddings(trained)
    splits = EXCLUDED_SPLITS[config.exclude]
    indptr, indices = split_csr(ctx.dataset, *splits) if splits else (np.zeros(ctx.dataset.n_users + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    scorer = build_scorer(users, items, indptr, indices, user_ids.tolist(), item_ids.tolist(), chain)
    save_scorer(scorer, path, {"dataset": ctx.key, "exclude": config.exclude, "lineage": chain})


def run_export(ctx: StageContext, config: ExportConfig, trained: Artifact) -> tuple[Artifact, bool]:
    import polars as pl

    dataset = ctx.dataset
    check_export(config.top_k, dataset.n_users, dataset.n_items)
    artifact_id = compute_artifact_id(STAGE, config.semantic_dump(), [trained.id], dataset.input_hashes())
    if (cached := ctx.cached(STAGE, artifact_id)) is not None:
        return cached, True
    user_ids = read_id_map(dataset.user_map, dataset.n_users)
    item_ids = read_id_map(dataset.item_map, dataset.n_items)
    chain = lineage(trained)

    def write(out) -> None:
        if config.format == "torchscript":
            name = "scorer.pt"
            write_scorer(ctx, config, trained, out / name, user_ids, item_ids, chain)
            shapes = {}
            summary = {"format": "torchscript", "scorer": name, "users": dataset.n_users, "items": dataset.n_items, "exclude": config.exclude}
        else:
            top, scores = recommend(ctx, config, trained)
            n_users, k = top.shape
            keep = top.reshape(-1) >= 0
            frame = pl.DataFrame(
                {
                    "user_id": np.repeat(user_ids, k)[keep],
                    "item_id": item_ids[np.clip(top.reshape(-1), 0, None)][keep],
                    "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), n_users)[keep],
                    "score": scores.reshape(-1)[keep],
                }
            )
            name = f"recommendations.{config.format}"
            if config.format == "parquet":
                frame.write_parquet(out / name)
            else:
                frame.write_csv(out / name)
            shapes = {name: [frame.height, 4]}
            summary = {"rows": frame.height, "users": n_users, "top_k": k}
        for source in ("user_embeddings.npy", "item_embeddings.npy"):
            shutil.copyfile(trained.file(source), out / source)
        (out / "user_ids.txt").write_text("\n".join(user_ids) + "\n", encoding="utf-8")
        (out / "item_ids.txt").write_text("\n".join(item_ids) + "\n", encoding="utf-8")
        (out / "lineage.json").write_text(json.dumps({"dataset": ctx.key, "artifacts": chain}, indent=2) + "\n")
        ctx.write_manifest(out, STAGE, artifact_id, config, [trained], shapes=shapes, seed=trained.manifest.seed, summary={**summary, "lineage": chain})

    return ctx.publish(STAGE, artifact_id, write), False
