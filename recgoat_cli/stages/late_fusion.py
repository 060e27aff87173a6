"""``recgoat train --model late-fusion``: a trained base model's scores plus weighted content scores.

The base model (``--base-model``, LightGCN by default) is an ordinary train artifact of the same options
(trained here, or found cached: ``recgoat train --model lightgcn`` with the same flags makes the same one).
Each item modality of the embed artifact gives a content ranker; the per-modality weights are chosen on the
valid split only (train items masked, ``--val-metric``), from ``--late-fusion-grid``. The artifact holds the
fused ``user_embeddings.npy`` / ``item_embeddings.npy`` (``model/late_fusion.py``: their inner products are
the fused scores), so ``evaluate``, ``export`` and the TorchScript scorer use the chosen weights with no
special case; the weights, the base artifact and the base's validation score are in the manifest's summary.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from recgoat_cli.artifacts.store import Artifact
from recgoat_cli.config import TrainConfig
from recgoat_cli.stages.common import StageContext, split_csr

STAGE = "train"
#: the fields that only late fusion reads; the base model's config resets them to their defaults
LATE_FUSION_FIELDS = ("base_model", "late_fusion_grid")


def base_config(config: TrainConfig) -> TrainConfig:
    """The config of the base model: the same options, ``model`` = ``base_model``, late fusion's own fields at
    their defaults (so the base is the artifact a plain ``recgoat train --model <base>`` makes)."""
    values = config.model_dump(exclude={"non_semantic", "model", *LATE_FUSION_FIELDS})
    return TrainConfig(**values, model=config.base_model)


def run_late_fusion(
    ctx: StageContext,
    config: TrainConfig,
    graph: Artifact,
    embed: Artifact,
    artifact_id: str,
    *,
    resume: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> Artifact:
    import torch

    from recgoat_cli.eval.sharded import evaluate_ranking_sharded
    from recgoat_cli.model.late_fusion import centred_unit_rows, choose_weights, content_user_rows, fused_tables
    from recgoat_cli.stages.embed import load_modalities
    from recgoat_cli.stages.train import load_embeddings, run_train

    base, cached = run_train(ctx, base_config(config), graph, resume=resume, on_epoch=on_epoch, log=log)
    log(f"late fusion: base {config.base_model} artifact {base.id}{' (cached)' if cached else ''}")
    dataset = ctx.dataset
    train_indptr, train_indices = split_csr(dataset, "train")
    valid = split_csr(dataset, "valid")
    base_users, base_items = (torch.from_numpy(a) for a in load_embeddings(base))
    rankers = [(base_users, base_items)]
    item_features, _ = load_modalities(embed)
    names = list(item_features)
    for name in names:
        unit = centred_unit_rows(torch.from_numpy(np.asarray(item_features[name], dtype=np.float32)))
        rankers.append((content_user_rows(torch.from_numpy(train_indptr), torch.from_numpy(train_indices), unit), unit))
    metric, _, k = config.val_metric.partition("@")

    def valid_score(weights: list[float]) -> float:
        users, items = fused_tables(rankers, [1.0] + weights)
        metrics, _ = evaluate_ranking_sharded(users, items, valid, (train_indptr, train_indices), ks=[int(k)], metrics=[metric])
        log(f"late fusion: weights {dict(zip(names, weights))}: valid {config.val_metric} {metrics[config.val_metric]:.4f}")
        return metrics[config.val_metric]

    weights, best = choose_weights(valid_score, len(names), config.late_fusion_grid)
    users, items = fused_tables(rankers, [1.0] + weights)
    base_summary = base.manifest.summary

    def write(out) -> None:
        np.save(out / "user_embeddings.npy", users.numpy())
        np.save(out / "item_embeddings.npy", items.numpy())
        ctx.write_manifest(
            out,
            STAGE,
            artifact_id,
            config,
            [graph, embed, base],
            shapes={"user_embeddings.npy": list(users.shape), "item_embeddings.npy": list(items.shape)},
            seed=config.seed,
            summary={
                "model": config.model,
                "base_model": config.base_model,
                "base_artifact": base.id,
                "late_fusion_weights": dict(zip(names, weights)),
                "base_valid": base_summary["best_valid"],
                "best_valid": {config.val_metric: best},
                "best_epoch": base_summary["best_epoch"],
                "epochs_run": base_summary["epochs_run"],
                "stopped_early": base_summary["stopped_early"],
                "mean_epoch_seconds": base_summary.get("mean_epoch_seconds"),
                "device": base_summary.get("device"),
                "world_size": base_summary.get("world_size", 1),
            },
        )

    return ctx.publish(STAGE, artifact_id, write)
