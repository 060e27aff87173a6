"""Process-group plumbing for runs launched by ``torchrun``: who this rank is, and how ranks share results.

``torchrun --nproc-per-node N -m recgoat_cli train ...`` starts N processes with ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in their environment. ``process_group`` joins them (``env://``
rendezvous) with ``nccl`` when the rank trains on a GPU (one GPU per local rank) and ``gloo`` on CPU. Without
``torchrun`` (or with ``WORLD_SIZE=1``) no group is created and every helper here is the identity: rank 0 of a
world of 1, so the single-process code path is the same code.

How work is split:

- training: every rank draws the same seeded epoch of BPR triples; global batch ``s`` is the triples
  ``[s * B, (s + 1) * B)`` and rank ``r`` takes every ``world``-th of them starting at ``r``
  (``rank_rows``), so the ranks' batches of one step are disjoint and together are exactly the single-process
  batch. ``epoch_batches`` gives every rank the same step count.
- ranking and encoding: contiguous chunks of users or items (``shard_range``), put back in order by
  ``gather_rows`` or summed by ``sum_across_ranks``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist

from recgoat_cli.errors import UserError


def requested() -> bool:
    """Whether torchrun launched this process as one of several (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    """This process's index on its node (the GPU it uses); 0 without a process group."""
    return int(os.environ.get("LOCAL_RANK", "0")) if active() else 0


def is_main() -> bool:
    """Rank 0: the only rank that writes checkpoints, logs and artifacts, and prints."""
    return rank() == 0


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


@contextmanager
def process_group(device: torch.device) -> Iterator[None]:
    """Join the torchrun process group for the body (``nccl`` for a CUDA device, else ``gloo``), then leave it."""
    backend = backend_for(device)
    available = dist.is_available() and (dist.is_nccl_available() if backend == "nccl" else dist.is_gloo_available())
    if not available:
        raise UserError(f"this torch build has no {backend} backend for torch.distributed; run without torchrun.")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    """Where tensors must live for a collective: the rank's GPU under nccl, the CPU under gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` on every rank (picklable objects: decisions, small states)."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    if world_size() == 1:
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def sum_across_ranks(values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``values`` over ranks, on every rank, on ``values``' device."""
    if world_size() == 1:
        return values
    reduced = values.to(_collective_device(), copy=True)
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced.to(values.device)


def shard_range(n: int, rank_: int | None = None, world: int | None = None) -> range:
    """This rank's contiguous chunk of ``range(n)``; chunks differ in size by at most one and cover ``range(n)`` in order."""
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    base, extra = divmod(n, world)
    start = rank_ * base + min(rank_, extra)
    return range(start, start + base + (1 if rank_ < extra else 0))


def gather_rows(rows: np.ndarray) -> np.ndarray:
    """The ranks' row blocks (each rank's ``shard_range`` chunk) stacked in rank order: the whole matrix."""
    if world_size() == 1:
        return rows
    return np.concatenate(all_gather_objects(rows), axis=0)


def epoch_batches(n: int, batch_size: int, world: int) -> list[tuple[int, int]]:
    """The global batches ``[lo, hi)`` of an epoch of ``n`` triples, the same list on every rank.

    A final batch smaller than ``world`` would leave a rank without triples, so it is dropped (at most
    ``world - 1`` triples an epoch; never with one process). ``batch_size`` must be at least ``world``.
    """
    if batch_size < world:
        raise ValueError(f"a global batch of {batch_size} cannot give each of {world} ranks a triple")
    bounds = [(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]
    if bounds and bounds[-1][1] - bounds[-1][0] < world:
        bounds.pop()
    return bounds


def rank_rows(lo: int, hi: int, rank_: int, world: int) -> slice:
    """Rank ``rank_``'s share of global batch ``[lo, hi)``: every ``world``-th triple from ``lo + rank_``."""
    return slice(lo + rank_, hi, world)
