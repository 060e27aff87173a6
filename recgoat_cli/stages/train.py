"""``recgoat train``: fit one model on the train split, select its epoch on the valid split only.

The artifact holds ``best.pt`` and ``last.pt`` (weights, optimizer, epoch, constructor args, config),
``log.jsonl`` (loss terms and validation metrics per epoch) and the best epoch's final
``user_embeddings.npy`` / ``item_embeddings.npy`` that ``evaluate`` and ``export`` rank with. Until the
run finishes, the checkpoints live in ``train/.work-<artifact-id>/``, which ``--resume`` continues.

Under torchrun (``recgoat_cli.distributed``) every rank trains (see ``train/loop.py``) but only rank 0 touches
the stage folder: the lock, the work folder, checkpoints, log and the artifact. A run on ``W`` > 1 processes
is a different computation (each rank's batch share sees its own in-batch negatives for CMCL/OAT, and float
sums run in another order), so ``W`` enters its artifact id; single-process ids are unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from recgoat_cli.artifacts.manifest import compute_artifact_id
from recgoat_cli.artifacts.store import Artifact, ArtifactWriteError, write_failure
from recgoat_cli.config import TrainConfig
from recgoat_cli.errors import UserError
from recgoat_cli.limits import check_training
from recgoat_cli.stages.build_graph import load_sparse, load_train_edges, neighbour_count_from
from recgoat_cli.stages.common import StageContext, resolve_device, split_csr

STAGE = "train"
LAST_CHECKPOINT = "last.pt"  # train/loop.py's LAST: the checkpoint --resume continues from
log = logging.getLogger(__name__)


def model_args(config: TrainConfig, n_users: int, n_items: int, embed: Artifact | None = None) -> dict:
    args = {"n_users": n_users, "n_items": n_items, "dim": config.dim}
    if config.model in ("lightgcn", "recgoat", "freedom"):
        args["n_layers"] = config.n_layers
    if config.model == "freedom":
        # FREEDOM projects the raw feature rows (no principal components), as MMRec does
        args.update(
            modalities=[[name, int(shape[1])] for name, shape in embed.manifest.summary["modalities"].items()],
            mm_layers=config.freedom_mm_layers, dropout=config.freedom_dropout, modality_weight=config.freedom_modality_weight,
        )
    if config.model == "recgoat":
        # the widths come from the embed manifest's shapes; the matrices are read once, by graph_tensors
        shapes = embed.manifest.summary
        width = lambda shape: min(int(shape[1]), config.lm_dim) if config.lm_dim else int(shape[1])  # noqa: E731
        args.update(
            modalities=[[name, width(shape)] for name, shape in shapes["modalities"].items()],
            user_feature_dim=width(shapes["users"]) if "user-user" in config.graphs else 0,
            graphs=list(config.graphs),
            gat_layers=config.gat_layers, gat_heads=config.gat_heads, gat_dropout=config.gat_dropout, gat_values=config.gat_values,
            cmcl=config.cmcl, lambda_cmcl=config.lambda_cmcl, temperature=config.temperature, cmcl_rows=config.cmcl_rows,
            oat=config.oat, lambda_oat=config.lambda_oat, ot_reg=config.ot_reg, ot_iters=config.ot_iters,
            ot_batch=config.ot_batch, fusion=config.fusion, backend=config.kernels,
            item_branch=config.item_branch, cmcl_form=config.cmcl_form, cmcl_view_weight=config.cmcl_view_weight,
            map_scale=config.map_scale, map_reg=config.map_reg, map_iters=config.map_iters, map_plan=config.map_plan,
            init_std=config.init_std, content_score=config.content_score,
        )
    return args


def principal_components(matrix: np.ndarray, n_components: int) -> np.ndarray:
    """The rows of ``matrix`` (centred) in the basis of its top ``n_components`` right singular vectors.

    Deterministic (a full SVD, with each component's sign fixed so its largest loading is positive); a
    matrix with no more columns than asked for is returned unchanged.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if n_components == 0 or matrix.shape[1] <= n_components:
        return matrix.astype(np.float32)
    centred = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    basis = vt[:n_components]
    signs = np.sign(basis[np.arange(len(basis)), np.abs(basis).argmax(axis=1)])
    reduced = centred @ (basis * signs[:, None]).T
    # Fewer rows than components (a small catalogue with wide features): the missing components have zero
    # variance, so they are zero columns, and the width stays the n_components the model was built for.
    return np.pad(reduced, ((0, 0), (0, n_components - reduced.shape[1]))).astype(np.float32)


def lm_features(matrix: np.ndarray, n_components: int):
    """Frozen LM rows as the model reads them: reduced to ``n_components`` principal components, unit rows."""
    import torch

    reduced = torch.from_numpy(np.ascontiguousarray(principal_components(matrix, n_components)))
    return torch.nn.functional.normalize(reduced, dim=1)


def _edges(path: Path):
    import torch

    with np.load(path, allow_pickle=False) as data:
        return torch.from_numpy(np.stack([data["rows"], data["cols"]])), torch.from_numpy(data["values"])


def graph_tensors(config: TrainConfig, graph: Artifact, embed: Artifact | None = None) -> dict:
    """The tensors a model's forward reads.

    LM features are reduced to ``lm_dim`` principal components (the model works in ``dim`` dimensions, and a
    384-wide projection of every neighbour's row per batch would cost more than the whole LightGCN pass)
    and L2-normalised, so every modality enters on the same scale.
    """
    import torch

    if config.model == "mf":
        return {}
    tensors = {"adjacency": load_sparse(graph.file("user_item.npz"))}
    if config.model == "freedom":
        return tensors | freedom_tensors(config, graph, embed)
    if config.model != "recgoat":
        return tensors
    from recgoat_cli.stages.embed import load_modalities

    items, users = load_modalities(embed)
    item_order = user_order = None
    if config.content_control == "shuffle":
        items, users, item_order, user_order = shuffled_content(items, users, config.seed)
    if config.content_score:
        n_items = next(iter(items.values())).shape[0]
        tensors |= content_score_tensors(items, graph, tensors["adjacency"].shape[0] - n_items, n_items)
    for name, matrix in items.items():
        tensors[f"feat:{name}"] = lm_features(matrix, config.lm_dim)
        if "item" in config.graphs and config.gat_layers > 0:
            tensors[f"item_edges:{name}"], tensors[f"item_weights:{name}"] = _edges(graph.file(f"item_knn_{name}.npz"))
            if item_order is not None:
                tensors[f"item_edges:{name}"] = relabelled_edges(tensors[f"item_edges:{name}"], item_order)
    if "user-item" in config.graphs:
        train_users, train_items = load_train_edges(graph)
        tensors["ui_edges"] = torch.from_numpy(np.stack([train_items, train_users]))
    if "user-user" in config.graphs:
        tensors["user_feat"] = lm_features(users, config.lm_dim)
        if config.gat_layers > 0:
            if not graph.file("user_user.npz").is_file():
                raise UserError(
                    f"build-graph artifact {graph.id} has no user-user graph; rebuild it with `recgoat build-graph --user-graph embedding` "
                    "or train with --graphs item,user-item."
                )
            tensors["user_edges"], tensors["user_weights"] = _edges(graph.file("user_user.npz"))
            if user_order is not None:
                if graph.manifest.config.get("user_graph", "embedding") != "embedding":
                    raise UserError("--content-control shuffle relabels a user-user graph built from user LM rows only; use --graphs item,user-item with this build-graph artifact.")
                tensors["user_edges"] = relabelled_edges(tensors["user_edges"], user_order)
    return tensors


@contextmanager
def linked_into(source: Path, target: Path) -> Iterator[None]:
    """Give the entries of ``source`` a second name in ``target`` for the body (the artifact being written).

    Hard links, so ``source`` keeps its checkpoint for ``--resume`` until the artifact is committed, whatever
    fails before; on a filesystem without hard links an entry is moved instead, and moved back if the body fails.
    """
    moved = []
    try:
        for entry in sorted(source.iterdir()):
            try:
                os.link(entry, target / entry.name)
            except OSError:
                os.replace(entry, target / entry.name)
                moved.append(entry.name)
        yield
    except BaseException:
        for name in moved:
            os.replace(target / name, source / name)
        raise


@contextmanager
def write_failures_keep_checkpoint(work_dir: Path) -> Iterator[None]:
    """A failed write (a full disk) while training becomes a ``UserError``; the resumable state stays.

    ``save_checkpoint`` already removed its temporary file; a work folder that holds a checkpoint is kept for
    ``--resume`` (as after Ctrl-C), one without a checkpoint has nothing to resume and is removed. The
    artifact and ``train/latest`` are untouched: they change only in the final commit.
    """
    try:
        yield
    except BaseException as exc:
        # the store's writer has already removed its folder and words its own sentence: keep only its reason
        reason = exc.reason if isinstance(exc, ArtifactWriteError) else write_failure(exc, work_dir.parent)
        if reason is None:
            raise
        for partial in work_dir.glob("*.tmp-*"):
            partial.unlink(missing_ok=True)
        resumable = (work_dir / LAST_CHECKPOINT).is_file()
        if not resumable:
            shutil.rmtree(work_dir, ignore_errors=True)
        raise UserError(
            f"training could not write under {work_dir.parent} ({reason}); train/latest was not changed and "
            + (f"the checkpoint in {work_dir.name} was kept, so free space and rerun with --resume." if resumable else "nothing was kept, so free space and rerun.")
        ) from None


def shuffled_content(items: dict, users, seed: int):
    """The content-free control: every LM matrix with its rows permuted (item rows by one permutation, user rows by
    another, drawn from ``seed``), and the permutations, ``(items, users, item_order, user_order)``.

    Row ``i`` of a shuffled matrix is the original row ``order[i]``. A kNN graph built from the shuffled rows is
    the original graph relabelled (:func:`relabelled_edges`), so nothing is recomputed.
    """
    rng = np.random.default_rng(seed)
    n_items = next(iter(items.values())).shape[0] if items else 0
    item_order = rng.permutation(n_items)
    user_order = rng.permutation(users.shape[0]) if users is not None else None
    shuffled = {name: np.ascontiguousarray(matrix[item_order]) for name, matrix in items.items()}
    return shuffled, (np.ascontiguousarray(users[user_order]) if users is not None else None), item_order, user_order


def relabelled_edges(edges, order: np.ndarray):
    """Edges of the graph over original rows, renumbered for rows permuted by ``order`` (row ``i`` <- ``order[i]``):
    original node ``order[i]`` becomes node ``i``."""
    import torch

    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    return torch.from_numpy(inverse)[edges]


#: what the learned content weights are multiplied by, each tried on validation after training
CONTENT_SCALES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def rescale_content_on_validation(content, valid_score: Callable[[], float]) -> tuple[dict[str, float], float]:
    """Multiply each modality's learned content weight by the factor from ``CONTENT_SCALES`` that scores best on
    validation, one modality at a time from the learned weights (factor 1; a tie keeps the current factor).

    BPR on train pairs learns the weight against ID embeddings that fit those very pairs, so it comes out lower
    than what ranks held-out items best (docs/method.md). The factors are folded into the weights, so the
    model, its embeddings and its manifest's ``fusion_weights`` agree; the chosen factors and their validation
    score are returned.
    """
    import torch

    from recgoat_cli.model.late_fusion import choose_weights

    learned = content.weight.detach().clone()

    def score(candidate: list[float]) -> float:
        content.weight.copy_(learned * torch.tensor(candidate, dtype=learned.dtype, device=learned.device))
        return valid_score()

    n = learned.numel()
    factors, best = choose_weights(score, n, CONTENT_SCALES, rounds=1, start=[1.0] * n, ties_to_smaller=False)
    score(factors)
    return dict(zip(content.modalities, factors)), best


def content_score_tensors(items: dict, graph: Artifact, n_users: int, n_items: int) -> dict:
    """The content score's frozen tables per modality (``model/content.py``), from the raw rows and the train pairs."""
    import torch

    from recgoat_cli.eval.ranker import csr_from_pairs
    from recgoat_cli.model.content import content_tensors

    indptr, indices = (torch.from_numpy(a) for a in csr_from_pairs(*load_train_edges(graph), n_users, n_items))
    tensors = {}
    for name, matrix in items.items():
        tensors |= content_tensors(name, torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32)), indptr, indices)
    return tensors


def freedom_tensors(config: TrainConfig, graph: Artifact, embed: Artifact) -> dict:
    """FREEDOM's inputs: each modality's raw rows, the frozen item graph mixed from them, the train pairs."""
    import torch

    from recgoat_cli.model.freedom import frozen_item_graph, modality_mix_weights
    from recgoat_cli.stages.embed import load_modalities

    items, _ = load_modalities(embed)
    features = {name: torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32)) for name, matrix in items.items()}
    weights = modality_mix_weights(list(features), config.freedom_image_weight)
    train_users, train_items = load_train_edges(graph)
    with neighbour_count_from("--freedom-knn-k"):
        item_item = frozen_item_graph(list(features.values()), weights, config.freedom_knn_k)
    return {
        **{f"feat:{name}": matrix for name, matrix in features.items()},
        "item_item": item_item,
        "ui_pairs": torch.from_numpy(np.stack([train_users, train_items]).astype(np.int64)),
    }


#: the models that read the embed artifact (the others are ID-only)
CONTENT_MODELS = ("recgoat", "freedom", "late-fusion")


def upstream_embed_of(ctx: StageContext, config: TrainConfig, graph: Artifact) -> Artifact | None:
    """The embed artifact the graph was built from; the content models need one, the ID-only models ignore it."""
    embed_id = graph.manifest.upstream_id("embed")
    if config.model not in CONTENT_MODELS:
        return None
    if embed_id is None:
        raise UserError(
            f"--model {config.model} needs LM representations, but build-graph artifact {graph.id} was built without an embed "
            f"artifact; run `recgoat embed --dataset {ctx.key}` and then `recgoat build-graph --dataset {ctx.key}`."
        )
    return ctx.store.get("embed", embed_id)


def result_revision(config: TrainConfig) -> int:
    """The revision of the code path that ``config`` trains with; part of the artifact id when above 1.

    Bumped for the configurations whose results a code change alters, so that an artifact trained before the
    change is never found cached for the new code; the other configurations keep their ids (and caches).
    History: 2 -- with ``--gat-values lm`` the ID view became CMCL's and OAT's stop-gradient target (deviation 13
    of docs/method.md); ``id``, LightGCN and MF results did not change. 3 -- ``--content-score`` runs rescale their
    content weights on validation after training.
    """
    if config.model == "recgoat" and config.content_score:
        return 3  # the content weights are rescaled on validation after training (issue 16)
    return 2 if config.model == "recgoat" and config.gat_values == "lm" else 1


def train_artifact_id(ctx: StageContext, config: TrainConfig, graph: Artifact, embed: Artifact | None, world_size: int = 1) -> str:
    upstream = [graph.id] + ([embed.id] if embed is not None else [])
    revision = result_revision(config)
    semantic = config.semantic_dump() | ({"revision": revision} if revision > 1 else {}) | ({"world_size": world_size} if world_size > 1 else {})
    return compute_artifact_id(STAGE, semantic, upstream, ctx.dataset.input_hashes())


def run_train(
    ctx: StageContext,
    config: TrainConfig,
    graph: Artifact,
    embed: Artifact | None = None,
    *,
    resume: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[Artifact, bool]:
    """Train (or find cached) the artifact of ``config``; returns it and whether it came from the cache.

    One process at a time trains a configuration: a second run of the same one waits for the first and then
    finds its artifact cached (or, with ``--resume`` after the first was killed, continues its checkpoint).
    """
    import torch

    from recgoat_cli import distributed
    from recgoat_cli.data.sampling import NegativeSampler
    from recgoat_cli.eval.sharded import evaluate_ranking_sharded
    from recgoat_cli.model.registry import build_model
    from recgoat_cli.train.loop import BEST, TrainSettings, fit, load_checkpoint

    dataset = ctx.dataset
    main, world = distributed.is_main(), distributed.world_size()
    if embed is None:
        embed = upstream_embed_of(ctx, config, graph)
    if config.batch_size < world:
        raise UserError(f"--batch-size {config.batch_size} is the global batch, split across {world} processes; pass at least {world}.")
    artifact_id = train_artifact_id(ctx, config, graph, embed, world)
    widths = [width for _, width in model_args(config, dataset.n_users, dataset.n_items, embed).get("modalities", [])]
    # before the stage folder is made: --dim 2000000000 or --val-metric recall@10^12 allocate nothing, write nothing
    check_training(config, dataset.n_users, dataset.n_items, len(dataset.split("train")[0]), widths, resolve_device(config.device))
    folder = ctx.store.ensure_stage_dir(STAGE) if main else ctx.store.stage_dir(STAGE)
    work_dir = folder / f".work-{artifact_id}"
    if not resume and (cached := ctx.cached(STAGE, artifact_id)) is not None:
        return cached, True
    if config.model == "late-fusion":
        from recgoat_cli.stages.late_fusion import run_late_fusion

        return run_late_fusion(ctx, config, graph, embed, artifact_id, resume=resume, on_epoch=on_epoch, log=log), False
    metric, _, k = config.val_metric.partition("@")
    valid_indptr, valid_indices = split_csr(dataset, "valid")
    if len(valid_indices) == 0:
        raise UserError(
            f"{dataset.inter_file} has no valid interactions (x_label 1); early stopping selects on validation, "
            "so prepare the dataset with a validation split."
        )
    device = resolve_device(config.device)
    train_indptr, train_indices = split_csr(dataset, "train")

    # rank 0 alone takes the lock and touches the work folder; the others follow its decisions
    with ctx.store.lock(STAGE, f"train-{artifact_id}", on_wait=log) if main else nullcontext(), write_failures_keep_checkpoint(work_dir):
        resumable = distributed.broadcast_object(main and resume and (work_dir / "last.pt").is_file())
        # ctx.cached is collective (rank 0 decides for all): a run of the same configuration may have finished while this one waited
        if not resumable and (cached := ctx.cached(STAGE, artifact_id)) is not None:
            return cached, True
        if main:
            if work_dir.exists() and not resumable:
                shutil.rmtree(work_dir)
            work_dir.mkdir(exist_ok=True)
        torch.manual_seed(config.seed)
        args = model_args(config, dataset.n_users, dataset.n_items, embed)
        model = build_model(config.model, args).to(device)
        tensors = graph_tensors(config, graph, embed)
        users, items = load_train_edges(graph)
        sampler = NegativeSampler(torch.from_numpy(users), torch.from_numpy(items), dataset.n_items)

        def validate(m) -> dict[str, float]:
            out = m({k: v.to(device) for k, v in tensors.items()})
            metrics, _ = evaluate_ranking_sharded(
                out.users.detach().float(), out.items.detach().float(), (valid_indptr, valid_indices), (train_indptr, train_indices),
                ks=[int(k)], metrics=[metric],
            )
            return metrics

        settings = TrainSettings(
            epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, reg=config.reg,
            patience=config.patience, eval_every=config.eval_every, val_metric=config.val_metric, seed=config.seed,
            amp=config.amp,
        )
        extra = {"model_name": config.model, "model_args": args, "config": config.model_dump(mode="json"), "artifact_id": artifact_id}
        result = fit(model, tensors, sampler, validate, settings, work_dir, extra, resume=resumable, progress=ctx.progress, on_epoch=on_epoch)
        if result.best_epoch == 0:
            raise UserError(f"training produced no validation score for {config.val_metric}; check the valid split.")
        content_rescale = None
        if main:
            best = load_checkpoint(work_dir / BEST)
            model.load_state_dict(best["state_dict"])
            model.eval()
            with torch.no_grad():
                if getattr(model, "content", None) is not None:
                    scales, rescaled = rescale_content_on_validation(model.content, lambda: validate(model)[config.val_metric])
                    content_rescale = {"factors": scales, "valid": {config.val_metric: rescaled}}
                    log("content score: weights rescaled on validation by " + ", ".join(f"{n} x{v:g}" for n, v in scales.items()))
                out = model({k: v.to(device) for k, v in tensors.items()})
        epoch_seconds = [r["train_seconds"] for r in result.history if "train_seconds" in r]

        def write(folder: Path) -> None:
            # the checkpoints and the log are part of the artifact; a failed write leaves them for --resume
            with linked_into(work_dir, folder):
                np.save(folder / "user_embeddings.npy", out.users.detach().float().cpu().numpy())
                np.save(folder / "item_embeddings.npy", out.items.detach().float().cpu().numpy())
                ctx.write_manifest(
                    folder,
                    STAGE,
                    artifact_id,
                    config,
                    [graph] + ([embed] if embed is not None else []),
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
                        "world_size": world,
                        **({"fusion_weights": model.fusion_weights()} if hasattr(model, "fusion_weights") else {}),
                        **({"content_rescale": content_rescale} if content_rescale else {}),
                    },
                )

        # force: a --resume run replaces an artifact of the same id that another run finished meanwhile
        artifact = ctx.publish(STAGE, artifact_id, write, force=True)
        if main:
            shutil.rmtree(work_dir, ignore_errors=True)  # its files live on in the artifact
    return artifact, False


SEED_GROUP = "latest-seeds"


def write_seed_group(ctx: StageContext, artifacts: list[Artifact]) -> None:
    """Remember the runs of one ``--seeds`` call, so ``evaluate`` reports their mean and spread (rank 0 writes)."""
    from recgoat_cli import distributed

    if not distributed.is_main():
        return
    folder = ctx.store.stage_dir(STAGE)
    tmp = folder / f".tmp-{SEED_GROUP}"
    tmp.write_text(json.dumps([a.id for a in artifacts]) + "\n", encoding="utf-8")
    tmp.replace(folder / SEED_GROUP)


def latest_seed_group(ctx: StageContext) -> list[str] | None:
    """The ids of the latest ``--seeds`` call, when the latest train artifact is one of them."""
    path = ctx.store.stage_dir(STAGE) / SEED_GROUP
    latest = ctx.store.latest_id(STAGE)
    if not path.is_file() or latest is None:
        return None
    ids = json.loads(path.read_text(encoding="utf-8"))
    return ids if latest in ids else None


def load_embeddings(artifact: Artifact) -> tuple[np.ndarray, np.ndarray]:
    users = np.load(artifact.file("user_embeddings.npy"), allow_pickle=False)
    items = np.load(artifact.file("item_embeddings.npy"), allow_pickle=False)
    return users, items
