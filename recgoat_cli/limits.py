"""Sizes that come from input, checked before any memory is taken for them.

Every large allocation recgoat makes has a size that a file or a flag decides: the id range of an interaction
file, the shape an ``.npy`` header declares, ``--dim``, ``--k``, ``--top-k``, ``--knn-k``, ``--batch-size``,
``--cmcl-rows``, ``--ot-batch``, ``--memory-budget``, the pixels of an image. Each is compared here with what the
input can justify (an array cannot hold more bytes than its file; a cut-off cannot exceed the catalogue) and with
the memory this machine has free, and refused with a ``UserError`` naming the file or flag and the size, so a
hostile or mistyped value ends in one sentence and exit 2 instead of a ``MemoryError``, an OOM kill or a swap
storm. The estimates are deliberately rough (within a small factor of the real peak); they exist to catch sizes
that are off by orders of magnitude, not to squeeze the last gigabyte.
"""

from __future__ import annotations

import os
import tokenize
from pathlib import Path

import numpy as np

from recgoat_cli.errors import UserError

FLOAT32 = 4
#: weights, their gradient and Adam's two moments
OPTIMIZER_COPIES = 4
#: bytes per (user, list position) of a ranked list: item id (8), score (4), hit flag (1), metric temporaries (8)
RANKED_ENTRY_BYTES = 21
#: bytes per exported recommendation: the ranked entry plus the table's original-id strings, rank and score
EXPORTED_ENTRY_BYTES = 64
#: bytes per kNN graph entry: neighbour ids and weights, their symmetrised copy and the sort keys
KNN_ENTRY_BYTES = 60
#: the most pixels an image may declare (Pillow's own ``MAX_IMAGE_PIXELS``, which only warns below twice that)
MAX_IMAGE_PIXELS = 89_478_485


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``; binary units up to EiB, then a plain count of EiB."""
    units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    value = float(n)
    for unit in units[:-1]:
        if value < 1024:
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} {units[-1]}"


def available_memory_bytes(device=None) -> int | None:
    """Memory free for new allocations on ``device`` (a torch device; host memory when None or CPU).

    Host memory is ``MemAvailable`` of ``/proc/meminfo`` (what the kernel can hand out without swapping),
    else free physical pages from ``os.sysconf``; None when neither is known, and then nothing is refused.
    """
    if device is not None and getattr(device, "type", "cpu") == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def require_memory(parts: dict[str, int], purpose: str, device=None, fix: str | None = None) -> None:
    """Refuse when the bytes of ``parts`` (``"--flag value"`` -> bytes it costs) exceed the free memory.

    The message names the part that costs most, so the user knows which flag to lower (``fix`` replaces the
    default advice, "pass a smaller --flag").
    """
    total = sum(parts.values())
    available = available_memory_bytes(device)
    if available is None or total <= available or not parts:
        return
    flag = max(parts, key=parts.get)
    where = "GPU memory" if device is not None and getattr(device, "type", "cpu") == "cuda" else "memory"
    raise UserError(
        f"{flag} needs about {human_bytes(total)} {purpose}, but only {human_bytes(available)} of {where} is free; "
        f"{fix or 'pass a smaller ' + flag.split()[0]}."
    )


# ---- cut-offs ---------------------------------------------------------------------------------------------------


def check_cutoff(flag: str, k: int, n_items: int) -> None:
    """A ranked list cannot be longer than the catalogue: refuse ``k > n_items`` (never clamped, since a metric
    at K means K list positions; precision@K with fewer items than K would silently change meaning)."""
    if k > n_items:
        raise UserError(f"{flag} {k} is larger than the catalogue ({n_items} items); pass at most {n_items}.")


def ranking_memory(flag: str, k: int, n_users: int, per_entry: int = RANKED_ENTRY_BYTES) -> dict[str, int]:
    """The ``[n_users, k]`` lists of a full ranking (ids, scores, hits), as a ``require_memory`` part."""
    return {f"{flag} {k}": n_users * k * per_entry}


def check_evaluation(ks, n_users: int, n_items: int, device=None) -> None:
    """``--k``: every cut-off at most the catalogue, and the ``[users, max K]`` lists within free memory."""
    k = max(ks)
    check_cutoff("--k", k, n_items)
    require_memory(ranking_memory("--k", k, n_users), f"to rank {n_items} items for {n_users} users", device)


def check_export(top_k: int, n_users: int, n_items: int, device=None) -> None:
    """``--top-k``: at most the catalogue, and the lists and their table within free memory."""
    check_cutoff("--top-k", top_k, n_items)
    require_memory(ranking_memory("--top-k", top_k, n_users, EXPORTED_ENTRY_BYTES), f"to export lists for {n_users} users", device)


# ---- encoders ---------------------------------------------------------------------------------------------------

#: rough peak bytes per row of an encoder batch: a CLIP image tensor (3 x 224 x 224 float32, 0.6 MiB) and a
#: base-size transformer's activations over it, or over a few hundred text tokens
ENCODER_ROW_BYTES = 4 * 2**20


def check_encoder_batch(batch_size: int, n_rows: int) -> None:
    """``recgoat embed --batch-size``: a batch holds at most ``n_rows`` rows, and they must fit in free memory."""
    rows = min(batch_size, n_rows)
    require_memory({f"--batch-size {batch_size}": rows * ENCODER_ROW_BYTES}, f"to encode {rows} rows per batch")


# ---- training ---------------------------------------------------------------------------------------------------


def train_memory(config, n_users: int, n_items: int, n_train: int, modality_widths: list[int] | None = None) -> dict[str, int]:
    """Rough peak bytes of training ``config`` (a ``TrainConfig``), split by the flag that drives each part.

    - ``--dim``: the ID embeddings with gradient and Adam state (``dim x (users + items) x 4 bytes x 4``), the
      propagated layers kept for backward (LightGCN, RecGOAT) and RecGOAT's projected views and projections;
    - ``--batch-size``: the batch's vectors; a batch is never larger than the train split;
    - ``--cmcl-rows``: the InfoNCE logits, ``rows x rows`` per view pair; rows never exceed the batch's
      distinct users or items;
    - ``--ot-batch``: the transport problems, ``n x n`` cost and plan matrices per modality, ``n`` likewise
      bounded by the batch;
    - ``--gat-heads``: RecGOAT's attention projections and per-head outputs, for each of ``--gat-layers``.

    ``modality_widths`` are RecGOAT's LM feature widths (None when not known yet: one modality is assumed).
    """
    dim, nodes = config.dim, n_users + n_items
    widths = list(modality_widths) if modality_widths else [0]
    recgoat = config.model == "recgoat"
    model = nodes * dim * FLOAT32 * OPTIMIZER_COPIES
    if config.model in ("lightgcn", "recgoat"):
        model += nodes * dim * FLOAT32 * (config.n_layers + 1) * 2
    if recgoat:
        model += len(widths) * n_items * dim * FLOAT32 * 3 + sum(widths) * dim * FLOAT32 * OPTIMIZER_COPIES
    batch = min(config.batch_size, max(n_train, 1))
    parts = {f"--dim {dim}": model, f"--batch-size {config.batch_size}": batch * (dim * FLOAT32 * 12 + 8 * 6)}
    if recgoat and config.gat_layers > 0:
        # each head projects every modality to dim and keeps a [nodes, heads, dim] output per layer for backward
        heads = config.gat_heads * dim * FLOAT32
        parts[f"--gat-heads {config.gat_heads}"] = heads * (sum(widths) * OPTIMIZER_COPIES + nodes * 3 * config.gat_layers)
    if recgoat and config.cmcl:
        item_rows = min(config.cmcl_rows, 2 * batch, n_items)
        user_rows = min(config.cmcl_rows, batch, n_users)
        parts[f"--cmcl-rows {config.cmcl_rows}"] = (item_rows**2 * len(widths) + user_rows**2) * FLOAT32 * 3
    if recgoat and config.oat:
        sample = min(config.ot_batch, batch, n_items)
        parts[f"--ot-batch {config.ot_batch}"] = sample**2 * FLOAT32 * 8 * len(widths)
    return parts


#: the training flags whose size ``train_memory`` estimates, with the option that sets each
TRAIN_SIZE_FLAGS = {
    "dim": "--dim", "batch_size": "--batch-size", "cmcl_rows": "--cmcl-rows", "ot_batch": "--ot-batch",
    "n_layers": "--layers", "gat_layers": "--gat-layers", "gat_heads": "--gat-heads",
}


def check_training(config, n_users: int, n_items: int, n_train: int, modality_widths: list[int] | None = None, device=None) -> None:
    """Refuse a training run whose flags cannot fit: the validation cut-off and the memory of ``train_memory``.

    The parts multiply (the batch's vectors are ``--batch-size x --dim``), so the flag named is the one whose
    default value would shrink the estimate most.
    """
    _, _, k = config.val_metric.partition("@")
    check_cutoff(f"--val-metric {config.val_metric}: K", int(k), n_items)
    ranking = sum(ranking_memory("--val-metric", int(k), n_users).values())

    def total(cfg) -> int:
        return sum(train_memory(cfg, n_users, n_items, n_train, modality_widths).values()) + ranking

    needed = total(config)
    available = available_memory_bytes(device)
    if available is None or needed <= available:
        return
    defaults = {name: type(config).model_fields[name].default for name in TRAIN_SIZE_FLAGS}
    blamed = min(defaults, key=lambda name: total(config.model_copy(update={name: min(defaults[name], getattr(config, name))})))
    flag = f"{TRAIN_SIZE_FLAGS[blamed]} {getattr(config, blamed)}"
    require_memory({flag: needed}, f"to train {config.model} on {n_users} users and {n_items} items", device)


def check_pipeline(dataset, train, graph, ks, top_k: int, has_embed: bool, device) -> None:
    """Every size ``recgoat run`` will allocate, checked before its first stage writes anything.

    ``train`` and ``graph`` are the run's ``TrainConfig`` and ``GraphConfig``, ``device`` the resolved training
    device; the embed widths are not known yet, so RecGOAT's estimate assumes one modality (the train stage
    checks again with the real widths).
    """
    n_users, n_items = dataset.n_users, dataset.n_items
    check_graphs(graph, n_users, n_items, has_embed)
    check_training(train, n_users, n_items, len(dataset.split("train")[0]), None, device)
    check_evaluation(ks, n_users, n_items)
    check_export(top_k, n_users, n_items)


# ---- graphs -----------------------------------------------------------------------------------------------------


def check_knn(flag: str, k: int, n: int, entity: str, memory_budget_mb: int) -> None:
    """Refuse a kNN graph whose neighbour lists (``n x k``) and similarity tiles cannot fit in free memory.

    The tiles take what ``--memory-budget`` allows, but never more than ``n x n`` entries.
    """
    from recgoat_cli.graphs.item_knn import _BYTES_PER_TILE_ENTRY, tile_side_for_budget

    if k >= n:
        raise UserError(f"{flag} {k} must be smaller than the number of {entity} ({n}).")
    tiles = tile_side_for_budget(n, memory_budget_mb * 2**20) ** 2 * _BYTES_PER_TILE_ENTRY
    parts = {f"{flag} {k}": n * k * KNN_ENTRY_BYTES, f"--memory-budget {memory_budget_mb}MB": tiles}
    require_memory(parts, f"to build the kNN graph of {n} {entity}")


def check_graphs(config, n_users: int, n_items: int, has_embed: bool) -> None:
    """The kNN graphs ``recgoat build-graph`` will build with ``config`` (a ``GraphConfig``), checked up front."""
    if has_embed:
        check_knn("--knn-k", config.knn_k, n_items, "items", config.memory_budget_mb)
    if config.user_graph in ("co-interaction", "both") or (config.user_graph == "embedding" and has_embed):
        check_knn("--user-knn-k", config.user_knn_k, n_users, "users", config.memory_budget_mb)


# ---- .npy files -------------------------------------------------------------------------------------------------


def read_npy_header(path: Path, label: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, data_offset)`` of an ``.npy`` file, read from its header alone.

    Raises:
        UserError: the header is not a valid ``.npy`` header (naming ``label``).
    """
    from numpy.lib import format as npy_format

    try:
        with open(path, "rb") as handle:
            version = npy_format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(handle)
            else:  # 2.0 and 3.0 share the 4-byte header length; 3.0 only allows UTF-8 field names
                shape, fortran, dtype = npy_format.read_array_header_2_0(handle)
            return tuple(int(s) for s in shape), bool(fortran), dtype, handle.tell()
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, tokenize.TokenError) as err:  # numpy parses old headers with tokenize
        reason = " ".join(str(err).split())[:160].rstrip(".")
        raise UserError(f"{label} is not a readable .npy array ({reason}); save it with numpy.save.") from None


def check_npy_size(path: Path, label: str, shape: tuple[int, ...], dtype: np.dtype, offset: int) -> int:
    """Refuse an array whose header declares more bytes than the file holds; return the declared bytes."""
    count = 1
    for side in shape:
        count *= side
    declared = count * dtype.itemsize
    held = Path(path).stat().st_size - offset
    if declared > held:
        raise UserError(
            f"{label} is not a readable .npy array: its header declares shape {shape} of {dtype} ({human_bytes(declared)}) "
            f"but the file holds only {human_bytes(max(held, 0))} of data (truncated, or a wrong header); save the array "
            f"again with numpy.save."
        )
    return declared


# ---- interaction ids --------------------------------------------------------------------------------------------


def check_id_range(path: Path, column: str, ids: np.ndarray, n_rows: int, mapping: Path | None, n_mapped: int) -> None:
    """Ids contiguous from 0 cannot exceed the number of rows that hold them (or of the id map's rows).

    Checked before any array is sized by the largest id, so an id of 10^12 is this one sentence, not an
    allocation of 10^12 entries; the first skipped id is found among the distinct ids (at most ``n_rows``).
    """
    largest = int(ids.max())
    if mapping is not None:
        if largest >= n_mapped:
            raise UserError(
                f"{path} column {column} has id {largest}, beyond the {n_mapped} ids of {mapping}; "
                "regenerate both with `recgoat prepare`."
            )
        return
    if largest >= n_rows:
        distinct = np.unique(ids)
        gaps = np.flatnonzero(distinct != np.arange(len(distinct)))
        gap = int(gaps[0]) if len(gaps) else len(distinct)
        raise UserError(
            f"{path} column {column} skips id {gap} and has id {largest}, more than its {n_rows} interactions can hold "
            "(ids must be contiguous from 0); remap the ids with `recgoat prepare`."
        )


# ---- images -----------------------------------------------------------------------------------------------------


def image_too_large(size: tuple[int, int]) -> str | None:
    """Why an image of ``(width, height)`` pixels is refused before it is decoded, or None."""
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        return (
            f"it declares {width} x {height} pixels ({human_bytes(width * height * 3)} as RGB), more than the "
            f"{MAX_IMAGE_PIXELS} pixels an image may have"
        )
    return None
