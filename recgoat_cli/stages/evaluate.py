"""``recgoat evaluate``: full-ranking metrics of a trained model on the valid or test split.

Every item is ranked for every user with at least one item in the split; the user's train items are
masked, and for the test split the valid items too (they are known interactions, not recommendations),
unless ``--mask train`` asks for train items only (the MMRec toolbox's protocol).
"""

from __future__ import annotations

import json

from recgoat_cli.artifacts.manifest import compute_artifact_id
from recgoat_cli.artifacts.store import Artifact
from recgoat_cli.config import EvalConfig
from recgoat_cli.limits import check_evaluation
from recgoat_cli.stages.common import StageContext, resolve_device, split_csr
from recgoat_cli.stages.train import load_embeddings

STAGE = "evaluate"


def masked_splits(split: str, mask: str = "train+valid") -> tuple[str, ...]:
    """The splits whose items are never ranked: ``mask``'s splits except the evaluated one.

    ``train+valid`` (the default) masks train and valid items on test, and train items on valid; ``train``
    masks train items only on both (MMRec's protocol for test).
    """
    return tuple(s for s in mask.split("+") if s != split)


def evaluate_trained(ctx: StageContext, config: EvalConfig, trained: Artifact) -> dict:
    """The split's metrics; under torchrun each rank ranks a share of the users (``eval/sharded.py``)."""
    import torch

    from recgoat_cli.eval.sharded import evaluate_ranking_sharded

    device = resolve_device(config.device)
    users, items = (torch.from_numpy(a).to(device) for a in load_embeddings(trained))
    truth = split_csr(ctx.dataset, config.split)
    exclude = split_csr(ctx.dataset, *masked_splits(config.split, config.mask))
    metrics, n_users = evaluate_ranking_sharded(users, items, truth, exclude, ks=list(config.ks), metrics=list(config.metrics), batch_size=config.batch_size)
    return {"metrics": metrics, "n_users": n_users}


def run_evaluate(ctx: StageContext, config: EvalConfig, trained: Artifact) -> tuple[Artifact, bool]:
    check_evaluation(config.ks, ctx.dataset.n_users, ctx.dataset.n_items)
    artifact_id = compute_artifact_id(STAGE, config.semantic_dump(), [trained.id], ctx.dataset.input_hashes())
    if (cached := ctx.cached(STAGE, artifact_id)) is not None:
        return cached, True
    result = evaluate_trained(ctx, config, trained)
    result.update({"split": config.split, "mask": "+".join(masked_splits(config.split, config.mask)), "model": trained.manifest.config.get("model"), "train_artifact": trained.id})

    def write(out) -> None:
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        ctx.write_manifest(out, STAGE, artifact_id, config, [trained], seed=trained.manifest.seed, summary=result)

    return ctx.publish(STAGE, artifact_id, write), False
