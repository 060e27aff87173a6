"""The training loop every model shares: BPR epochs, validation-only early stopping, checkpoints, resume.

Determinism: the epoch's triples come from a ``torch.Generator`` seeded with ``(seed, epoch)``, and the global
RNG state (dropout) is saved in every checkpoint, so a run resumed from the checkpoint of epoch ``e``
continues exactly as an uninterrupted run would (on CPU).

Under torchrun (``recgoat_cli.distributed``) the model is wrapped in ``DistributedDataParallel``. Every rank
draws the same epoch of triples and takes its rows of each global batch of ``batch_size`` (``rank_rows``), so
``batch_size`` stays the global batch and one step sees the same triples as with one process. Each rank's
loss is weighted by its share of the batch, so the all-reduced gradient (DDP averages over ranks) is the
gradient of the global batch mean. Every rank propagates over the full graph and validates its share of
the users; rank 0 decides early stopping and broadcasts the decision, and only rank 0 writes checkpoints
and the log (each rank's RNG state is gathered into the checkpoint, so resuming restores every rank).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import torch

from recgoat_cli import distributed
from recgoat_cli.data.sampling import NegativeSampler
from recgoat_cli.errors import UserError
from recgoat_cli.model.bpr import bpr_loss, l2_penalty

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"
LOG = "log.jsonl"


@dataclass
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    reg: float
    patience: int
    eval_every: int
    val_metric: str
    seed: int
    amp: bool = False


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    best_metrics: dict
    epochs_run: int
    stopped_early: bool
    seconds: float
    history: list[dict] = field(default_factory=list)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class Batch(NamedTuple):
    """One batch's BPR triples and the rows the model computes for them, on the training device.

    Shapes:
        users, positives, negatives ``[B]`` (ids); batch_users ``[Bu]`` and batch_items ``[Bi]`` (the unique ids
        the model computes, sorted); user_rows, pos_rows, neg_rows ``[B]`` (each triple's rows of those);
        positive_rows ``[P]`` (the unique rows of the positive items)
    """

    users: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor
    batch_users: torch.Tensor
    user_rows: torch.Tensor
    batch_items: torch.Tensor
    pos_rows: torch.Tensor
    neg_rows: torch.Tensor
    positive_rows: torch.Tensor


def prepare_batch(u: torch.Tensor, i: torch.Tensor, j: torch.Tensor, device: torch.device) -> Batch:
    """The batch's unique users and items and every triple's rows of them, computed where the triples are.

    The sampler's triples live on the host; there ``torch.unique`` costs microseconds, whereas on a GPU its
    data-dependent output size makes the host wait for the device, and every ``.to(device)`` of a pageable
    tensor waits too. So the uniques are taken on the host and everything goes to a CUDA device in one
    non-blocking copy from pinned memory: no wait per batch. On the CPU nothing is copied.
    """
    batch_users, user_rows = torch.unique(u, return_inverse=True)
    batch_items, item_rows = torch.unique(torch.cat([i, j]), return_inverse=True)
    pos_rows, neg_rows = item_rows[: len(i)], item_rows[len(i) :]
    parts = [u, i, j, batch_users, user_rows, batch_items, pos_rows, neg_rows, torch.unique(pos_rows)]
    if all(part.device == device for part in parts):
        return Batch(*parts)
    flat = torch.cat([part.to(torch.int64) for part in parts])
    if device.type == "cuda":
        flat = flat.pin_memory().to(device, non_blocking=True)
    else:
        flat = flat.to(device)
    return Batch(*flat.split([part.numel() for part in parts]))


def batch_loss_terms(trained: torch.nn.Module, model: torch.nn.Module, graph: dict[str, torch.Tensor], batch: Batch, reg: float) -> dict[str, torch.Tensor]:
    """BPR, the L2 penalty and the model's auxiliary losses of one batch (``trained`` is ``model`` or its DDP wrapper)."""
    out = trained(graph, batch.batch_users, batch.batch_items)
    user_vectors = out.users[batch.user_rows]
    positive = (user_vectors * out.items[batch.pos_rows]).sum(-1)
    offset = model.positive_offset(graph, batch.users, batch.positives)
    if offset is not None:
        positive = positive - offset
    terms = {"bpr": bpr_loss(positive, (user_vectors * out.items[batch.neg_rows]).sum(-1))}
    user_ego, item_ego = model.ego_embeddings()
    terms["l2"] = reg * l2_penalty(user_ego[batch.users], item_ego[batch.positives], item_ego[batch.negatives])
    rows = torch.arange(len(batch.batch_users), device=batch.batch_users.device)
    terms.update(model.auxiliary_losses(out, rows, batch.positive_rows, triples=(batch.user_rows, batch.pos_rows, batch.neg_rows)))
    terms.update(model.pairwise_losses(out, batch.user_rows, batch.pos_rows, batch.neg_rows))
    return terms


class _RecordingWriter:
    """A file for ``torch.save`` that keeps the ``OSError`` of a failed write.

    torch's zip writer turns a failed write (a full disk) into a ``RuntimeError`` that names no file and no
    cause; keeping the original error lets the caller report ENOSPC as what it is.
    """

    def __init__(self, handle):
        self.handle, self.error = handle, None

    def write(self, data) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.handle.flush()


def structure_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator a model's ``start_epoch`` draws from: (seed, epoch) again, in a stream apart from the triples'."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) ^ 0x5DEECE66D)


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write then rename, so a kill mid-write leaves the previous checkpoint intact.

    A write that fails (a full disk) raises its ``OSError`` and leaves neither the temporary file nor a
    damaged checkpoint behind.
    """
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            writer = _RecordingWriter(handle)
            try:
                torch.save(payload, writer)
            except RuntimeError:
                if writer.error is not None:
                    raise writer.error from None
                raise
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict:
    """Tensors and plain values only (``weights_only=True``): a checkpoint that holds anything else is refused."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        reason = "it holds objects other than tensors" if isinstance(exc, pickle.UnpicklingError) else "truncated or corrupted"
        raise UserError(
            f"checkpoint {path} cannot be loaded ({reason}; it was not unpickled); delete {path.parent} and rerun without --resume."
        ) from None


def fit(
    model: torch.nn.Module,
    graph: dict[str, torch.Tensor],
    sampler: NegativeSampler,
    validate: Callable[[torch.nn.Module], dict[str, float]],
    settings: TrainSettings,
    work_dir: Path,
    checkpoint_extra: dict,
    *,
    resume: bool = False,
    progress: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train ``model`` until ``settings.epochs`` or early stopping; checkpoints go to ``work_dir``.

    ``validate(model)`` returns validation metrics (never test); under torchrun every rank calls it and
    gets the same metrics. ``checkpoint_extra`` (model args, config) is stored in every checkpoint so later
    stages rebuild the model from the checkpoint alone.
    """
    device = next(model.parameters()).device
    rank, world, main = distributed.rank(), distributed.world_size(), distributed.is_main()
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    graph = {k: v.to(device) for k, v in graph.items()}
    start_epoch, best_score, best_epoch, bad_evals = 1, float("-inf"), 0, 0
    best_metrics: dict = {}
    history: list[dict] = []
    last_path = work_dir / LAST
    if resume and last_path.is_file():
        state = load_checkpoint(last_path)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        rank_states = state.get("rank_rng_states", [])
        torch.set_rng_state(rank_states[rank] if len(rank_states) == world else state["rng_state"])
        start_epoch = state["epoch"] + 1
        best_score, best_epoch, bad_evals = state["best_score"], state["best_epoch"], state["bad_evals"]
        best_metrics = state.get("best_metrics", {})
        # a kill between an epoch's log line and its checkpoint leaves lines the resumed run will write again
        history = [record for record in read_log(work_dir / LOG) if record["epoch"] <= state["epoch"]]
        write_log(work_dir / LOG, history)
        log.info("resuming from epoch %d (best %s %.4f at epoch %d)", state["epoch"], settings.val_metric, best_score, best_epoch)
    elif main:
        (work_dir / LOG).unlink(missing_ok=True)
    scaler_enabled = settings.amp and device.type == "cuda"
    # gradients are all-reduced by DDP's hooks; every parameter takes part in every step of every model here
    trained = model if world == 1 else torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    def checkpoint(epoch: int, rank_rng_states: list[torch.Tensor]) -> dict:
        return {
            **checkpoint_extra,
            "state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "best_score": best_score,
            "best_epoch": best_epoch,
            "best_metrics": best_metrics,
            "bad_evals": bad_evals,
            "rng_state": rank_rng_states[0],
            **({"rank_rng_states": rank_rng_states} if world > 1 else {}),
        }

    if start_epoch == 1:
        rng_states = distributed.all_gather_objects(torch.get_rng_state())
        if main:
            save_checkpoint(last_path, checkpoint(0, rng_states))
    started = time.perf_counter()
    stopped_early = False
    epoch = start_epoch - 1
    bar = _progress_bar(progress and main, start_epoch, settings.epochs)
    for epoch in range(start_epoch, settings.epochs + 1):
        t0 = time.perf_counter()
        trained.train()
        model.start_epoch(graph, structure_generator(settings.seed, epoch))
        users, positives, negatives = sampler.epoch(epoch_generator(settings.seed, epoch))
        # the epoch's loss sums stay on the device (float64, the same sums as Python floats): reading them every
        # batch would make the host wait for a GPU every batch
        running: dict[str, torch.Tensor] = {}
        zero = torch.zeros((), dtype=torch.float64, device=device)
        n_batches = 0
        for lo, hi in distributed.epoch_batches(len(users), settings.batch_size, world):
            rows = distributed.rank_rows(lo, hi, rank, world)
            # the model computes only the batch's unique users and items; local indices address its rows
            batch = prepare_batch(users[rows], positives[rows], negatives[rows], device)
            # this rank's share of the global batch: its mean losses weighted so the ranks' average is the batch mean
            share = len(batch.users) / (hi - lo)
            with torch.autocast(device.type, enabled=scaler_enabled, dtype=torch.bfloat16):
                terms = batch_loss_terms(trained, model, graph, batch, settings.reg)
                loss = sum(terms.values())
            optimizer.zero_grad(set_to_none=True)
            (loss * (share * world) if world > 1 else loss).backward()
            optimizer.step()
            for name, value in terms.items():
                running[name] = running.get(name, zero) + value.detach().to(torch.float64) * share
            n_batches += 1
        totals = dict(zip(running, torch.stack(list(running.values())).tolist())) if running else {}
        if world > 1:
            summed = distributed.sum_across_ranks(torch.tensor(list(totals.values()), dtype=torch.float64))
            totals = dict(zip(totals, summed.tolist()))
        record = {"epoch": epoch, "loss": sum(totals.values()) / max(n_batches, 1)}
        record.update({f"loss_{k}": v / max(n_batches, 1) for k, v in totals.items()})
        record["train_seconds"] = round(time.perf_counter() - t0, 4)
        improved = False
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            t1 = time.perf_counter()
            model.eval()
            with torch.no_grad():
                metrics = validate(model)
            record.update({f"valid_{k}": v for k, v in metrics.items()})
            record["eval_seconds"] = round(time.perf_counter() - t1, 4)
            score = metrics[settings.val_metric]
            if score > best_score:
                best_score, best_epoch, bad_evals, best_metrics, improved = score, epoch, 0, metrics, True
            else:
                bad_evals += 1
            # rank 0's decision binds every rank, so all stop at the same epoch even if their floats differed
            best_score, best_epoch, bad_evals, best_metrics, improved = distributed.broadcast_object(
                (best_score, best_epoch, bad_evals, best_metrics, improved)
            )
        history.append(record)
        rng_states = distributed.all_gather_objects(torch.get_rng_state())
        if main:
            with open(work_dir / LOG, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            if improved:
                save_checkpoint(work_dir / BEST, checkpoint(epoch, rng_states))
            save_checkpoint(last_path, checkpoint(epoch, rng_states))
        if on_epoch is not None:
            on_epoch(record)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.4f}", best=f"{best_score:.4f}")
        if bad_evals >= settings.patience:
            stopped_early = True
            break
    if bar is not None:
        bar.close()
    return FitResult(
        best_epoch=best_epoch,
        best_score=best_score,
        best_metrics=best_metrics,
        epochs_run=epoch,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - started,
        history=history,
    )


def read_log(path: Path) -> list[dict]:
    """The records of a training log, up to a last line that a kill cut short."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def write_log(path: Path, records: list[dict]) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    os.replace(tmp, path)


def _progress_bar(enabled: bool, start: int, total: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=start - 1, desc="train", unit="epoch", leave=False)
