"""``recgoat train``: fit one model on the train split, select its epoch on the valid split only.

The artifact holds ``best.pt`` and ``last.pt`` (weights, optimizer, epoch, constructor args, config),
``log.jsonl`` (loss terms and validation metrics per epoch) and the best epoch's final
``user_embeddings.npy`` / ``item_embeddings.npy`` that ``evaluate`` and ``export`` rank with. Until the
run finishes, the checkpoints live in ``train/.work-<artifact-id>/``, which ``--resume`` continues.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from recgoat_cli.artifacts.manifest import compute_artifact_id
from recgoat_cli.artifacts.store import Artifact, write_manifest
from recgoat_cli.config import TrainConfig
from recgoat_cli.errors import UserError
from recgoat_cli.stages.build_graph import load_coo, load_train_edges
from recgoat_cli.stages.common import StageContext, resolve_device, split_csr

STAGE = "train"
log = logging.getLogger(__name__)


def model_args(config: TrainConfig, n_users: int, n_items: int) -> dict:
    args = {"n_users": n_users, "n_items": n_items, "dim": config.dim}
    if config.model == "lightgcn":
        args["n_layers"] = config.n_layers
    return args


def graph_tensors(config: TrainConfig, graph: Artifact) -> dict:
    if config.model == "mf":
        return {}
    return {"adjacency": load_coo(graph.file("user_item.npz"))}


def train_artifact_id(ctx: StageContext, config: TrainConfig, graph: Artifact, embed: Artifact | None) -> str:
    upstream = [graph.id] + ([embed.id] if embed is not None else [])
    return compute_artifact_id(STAGE, config.semantic_dump(), upstream, ctx.dataset.input_hashes())


@contextmanager
def exclusive(lock_path: Path):
    """Refuse a second concurrent run of the same training configuration."""
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another `recgoat train` holds {lock_path} for the same configuration; wait for it to finish."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_train(
    ctx: StageContext,
    config: TrainConfig,
    graph: Artifact,
    embed: Artifact | None = None,
    *,
    resume: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
) -> tuple[Artifact, bool]:
    import torch

    from recgoat_cli.data.sampling import NegativeSampler
    from recgoat_cli.eval.ranker import evaluate_ranking
    from recgoat_cli.model.registry import build_model
    from recgoat_cli.train.loop import BEST, TrainSettings, fit, load_checkpoint

    dataset = ctx.dataset
    artifact_id = train_artifact_id(ctx, config, graph, embed)
    folder = ctx.store.ensure_stage_dir(STAGE)
    work_dir = folder / f".work-{artifact_id}"
    resumable = resume and (work_dir / "last.pt").is_file()
    if not ctx.force and not resumable and (cached := ctx.store.find_cached(STAGE, artifact_id)) is not None:
        ctx.store.set_latest(STAGE, artifact_id)
        return cached, True
    metric, _, k = config.val_metric.partition("@")
    valid_indptr, valid_indices = split_csr(dataset, "valid")
    if len(valid_indices) == 0:
        raise UserError(
            f"{dataset.inter_file} has no valid interactions (x_label 1); early stopping selects on validation, "
            "so prepare the dataset with a validation split."
        )
    device = resolve_device(config.device)
    train_indptr, train_indices = split_csr(dataset, "train")

    with exclusive(folder / f".work-{artifact_id}.lock"):
        if work_dir.exists() and not resumable:
            shutil.rmtree(work_dir)
        work_dir.mkdir(exist_ok=True)
        torch.manual_seed(config.seed)
        args = model_args(config, dataset.n_users, dataset.n_items)
        model = build_model(config.model, args).to(device)
        tensors = graph_tensors(config, graph)
        users, items = load_train_edges(graph)
        sampler = NegativeSampler(torch.from_numpy(users), torch.from_numpy(items), dataset.n_items)

        def validate(m) -> dict[str, float]:
            out = m({k: v.to(device) for k, v in tensors.items()})
            result = evaluate_ranking(
                out.users.float(), out.items.float(), valid_indptr, valid_indices, train_indptr, train_indices,
                ks=[int(k)], metrics=[metric],
            )
            return result.metrics

        settings = TrainSettings(
            epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, reg=config.reg,
            patience=config.patience, eval_every=config.eval_every, val_metric=config.val_metric, seed=config.seed,
            amp=config.amp,
        )
        extra = {"model_name": config.model, "model_args": args, "config": config.model_dump(mode="json"), "artifact_id": artifact_id}
        result = fit(model, tensors, sampler, validate, settings, work_dir, extra, resume=resumable, progress=ctx.progress, on_epoch=on_epoch)
        if result.best_epoch == 0:
            raise UserError(f"training produced no validation score for {config.val_metric}; check the valid split.")

        best = load_checkpoint(work_dir / BEST)
        model.load_state_dict(best["state_dict"])
        model.eval()
        with torch.no_grad():
            out = model({k: v.to(device) for k, v in tensors.items()})
        np.save(work_dir / "user_embeddings.npy", out.users.float().cpu().numpy())
        np.save(work_dir / "item_embeddings.npy", out.items.float().cpu().numpy())
        epoch_seconds = [r["train_seconds"] for r in result.history if "train_seconds" in r]
        write_manifest(
            work_dir,
            stage=STAGE,
            artifact_id=artifact_id,
            dataset=ctx.key,
            config=config.model_dump(mode="json"),
            upstream=[graph] + ([embed] if embed is not None else []),
            inputs=dataset.input_hashes(),
            shapes={"user_embeddings.npy": list(out.users.shape), "item_embeddings.npy": list(out.items.shape)},
            seed=config.seed,
            summary={
                "model": config.model,
                "model_args": args,
                "best_epoch": result.best_epoch,
                "best_valid": result.best_metrics,
                "epochs_run": result.epochs_run,
                "stopped_early": result.stopped_early,
                "mean_epoch_seconds": float(np.mean(epoch_seconds)) if epoch_seconds else None,
                "device": str(device),
            },
        )
        ctx.store.commit(work_dir, STAGE, artifact_id, force=True)
    (folder / f".work-{artifact_id}.lock").unlink(missing_ok=True)
    return ctx.store.get(STAGE, artifact_id), False


def load_embeddings(artifact: Artifact) -> tuple[np.ndarray, np.ndarray]:
    users = np.load(artifact.file("user_embeddings.npy"), allow_pickle=False)
    items = np.load(artifact.file("item_embeddings.npy"), allow_pickle=False)
    return users, items
