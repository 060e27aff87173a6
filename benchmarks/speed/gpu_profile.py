"""Where a training step's time goes, LightGCN against RecGOAT's default: torch.profiler over a few steps.

Baby-shaped data (as ``speed/epoch_time.py``). For each model: ``--warmup`` steps, then ``--steps`` profiled steps
of the package's own loop body (forward, BPR + L2 + the model's extra losses, backward, Adam). Prints one JSON
line per model with the kernel launches and host synchronisations per step (CUDA), the time per step, and the
top operators by self time, and writes a Chrome trace per model to ``--out`` when given.

    python3 -m benchmarks.speed.gpu_profile [--device cuda] [--steps 10] [--out /tmp/profile]

Runs on the CPU too (``--device cpu``): then only operator times are reported.

``--syncs`` adds, per model, where each operator that waits for the GPU on CUDA comes from (``.item()`` /
``bool()`` / ``int()`` / ``float()`` of a tensor, ``nonzero`` and boolean masks, ``unique``, a
``repeat_interleave`` without ``output_size``, ``bincount``, copies to the host): one unprofiled step runs
under a ``TorchDispatchMode`` that records the operator and the innermost calling line of recgoat (and of
the library, e.g. POT or torch.optim), with the device of the tensors involved. On a CPU run it shows the
calls that would synchronise on a GPU; Adam's ``step`` lives on the CPU and never does.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.common import baby_interactions, synthetic_recgoat_graph
from recgoat_cli.data.sampling import NegativeSampler
from recgoat_cli.graphs.user_item import normalized_bipartite_adjacency, user_item_edges
from recgoat_cli.model.registry import build_model
from recgoat_cli.train.loop import batch_loss_terms, epoch_generator, prepare_batch

SYNC_EVENTS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpy", "cudaMemcpyAsync", "aten::item", "aten::_local_scalar_dense", "aten::nonzero")


# operators that make the host wait for a CUDA device (their output size or value depends on the data)
SYNCING_OPS = {
    "aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten._unique2", "aten.unique_dim",
    "aten.unique_consecutive", "aten._unique", "aten.bincount", "aten.repeat_interleave", "aten.histc",
    "aten._to_sparse_csr", "aten.to_sparse_csr",
}


def _callers() -> tuple:
    """The innermost frame of recgoat (or of these benchmarks), and of any other library outside torch."""
    ours = library = None
    frame = sys._getframe(2)
    while frame is not None and ours is None:
        name = frame.f_code.co_filename
        if "recgoat_cli" in name or "benchmarks" in name:
            ours = frame
        elif library is None and ("/torch/" not in name or "/torch/optim/" in name):
            library = frame
        frame = frame.f_back
    return ours, library


class SyncRecorder(TorchDispatchMode):
    """Counts every operator by calling function, and the operators that synchronise with a CUDA device by line."""

    def __init__(self):
        super().__init__()
        self.calls: collections.Counter = collections.Counter()
        self.ops: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        overload = func._overloadname
        syncing = name in SYNCING_OPS
        if name == "aten.repeat_interleave":
            syncing = kwargs.get("output_size") is None and (len(args) < 4 or args[3] is None) and overload != "self_int"
        if name == "aten.index" and any(i is not None and i.dtype == torch.bool for i in args[1]):
            syncing, name = True, "aten.index[bool mask]"
        if name == "aten._to_copy":  # a copy to the host waits for the device
            target = kwargs.get("device")
            syncing = target is not None and torch.device(target).type == "cpu" and args[0].device.type == "cuda"
        if name == "aten.copy_":
            syncing = args[0].device.type == "cpu" and args[1].device.type == "cuda"
        ours, library = _callers()
        site = f"{Path(ours.f_code.co_filename).name} {ours.f_code.co_name}" if ours else "autograd engine"
        if library is not None and "/torch/optim/" in library.f_code.co_filename:
            site = "torch.optim"
        elif library is not None:
            site += f" via {Path(library.f_code.co_filename).parent.name}/{Path(library.f_code.co_filename).name}"
        self.ops[site] += 1
        if syncing:
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            device = tensors[0].device.type if tensors else "-"
            where = f"{Path(ours.f_code.co_filename).name}:{ours.f_lineno} {ours.f_code.co_name}" if ours else "?"
            via = f"{'/'.join(Path(library.f_code.co_filename).parts[-2:])}:{library.f_lineno}" if library is not None else ""
            self.calls[(name, device, where, via)] += 1
        return func(*args, **kwargs)


def attribute_syncs(model, graph, optimizer, batch) -> dict:
    """One training step's syncing operators by calling line, and its operators by calling function.

    The batch is prepared outside the recorder: ``prepare_batch`` runs on the host's copy of the triples by
    design (its ``unique`` calls never touch the GPU), which a CPU run could not tell apart. Every operator
    on a GPU tensor is at least one kernel launch, so ``ops`` bounds the launches from below. Operators
    that autograd's engine runs for a built-in operator's backward count under the function that called
    ``backward()`` (or "autograd engine" where the engine runs in its own thread, as on a GPU).
    """
    recorder = SyncRecorder()
    prepared = prepare_batch(*batch, next(model.parameters()).device)
    with recorder:
        train_on(model, graph, optimizer, prepared)
    return {
        "sync_sites": [
            {"op": op, "device": device, "at": where, **({"via": via} if via else {}), "count": count}
            for (op, device, where, via), count in recorder.calls.most_common()
        ],
        "ops_per_step": sum(recorder.ops.values()),
        "ops_by_site": dict(recorder.ops.most_common(15)),
    }


def step(model, graph, optimizer, u, i, j, reg=1e-4):
    """One training step, as ``train/loop.py`` runs it (the triples start on the host, as the sampler's do)."""
    train_on(model, graph, optimizer, prepare_batch(u, i, j, next(model.parameters()).device), reg)


def train_on(model, graph, optimizer, batch, reg=1e-4):
    """The device part of a step: forward, losses, backward, Adam."""
    loss = sum(batch_loss_terms(model, model, graph, batch, reg).values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--syncs", action="store_true", help="attribute the syncing operators of one step to their calling lines")
    options = parser.parse_args()
    device = torch.device(options.device)
    cuda = device.type == "cuda"
    users, items, n_users, n_items, source = baby_interactions()
    users, items = user_item_edges(users, items, n_users, n_items)
    adjacency = normalized_bipartite_adjacency(users, items, n_users, n_items).to_sparse_csr()
    sampler = NegativeSampler(torch.from_numpy(users), torch.from_numpy(items), n_items)
    u_all, i_all, j_all = sampler.epoch(epoch_generator(0, 1))
    base = {"n_users": n_users, "n_items": n_items, "dim": 64, "n_layers": 3}
    graph, modalities, user_dim = synthetic_recgoat_graph(users, items, n_users, n_items, adjacency)
    runs = [("lightgcn", dict(base), {"adjacency": adjacency}), ("recgoat", {**base, "modalities": modalities, "user_feature_dim": user_dim}, graph)]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    for name, args, tensors in runs:
        torch.manual_seed(0)
        model = build_model(name, args).to(device).train()
        tensors = {k: v.to(device) for k, v in tensors.items()}
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        batches = [(u_all[lo:lo + 2048], i_all[lo:lo + 2048], j_all[lo:lo + 2048])
                   for lo in range(0, 2048 * (options.warmup + options.steps + 1), 2048)]
        for batch in batches[: options.warmup]:
            step(model, tensors, optimizer, *batch)
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        with profile(activities=activities) as prof:
            for batch in batches[options.warmup : options.warmup + options.steps]:
                step(model, tensors, optimizer, *batch)
            if cuda:
                torch.cuda.synchronize()
        seconds = (time.perf_counter() - started) / options.steps
        events = prof.key_averages()
        counts = {e.key: e.count for e in events}
        record = {
            "model": name, "device": str(device), "data": source, "steps": options.steps, "seconds_per_step_profiled": round(seconds, 5),
            "syncs_per_step": {k: counts[k] / options.steps for k in SYNC_EVENTS if k in counts},
            "date": time.strftime("%Y-%m-%d"),
        }
        if cuda:
            record["kernel_launches_per_step"] = counts.get("cudaLaunchKernel", 0) / options.steps + counts.get("cuLaunchKernel", 0) / options.steps
        sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        record["top"] = [
            {"op": e.key, "count_per_step": e.count / options.steps,
             "self_ms_per_step": round((e.self_device_time_total if cuda else e.self_cpu_time_total) / 1000 / options.steps, 3)}
            for e in sorted(events, key=lambda e: getattr(e, "self_device_time_total" if cuda else "self_cpu_time_total"), reverse=True)[: options.top]
        ]
        if options.syncs:
            record.update(attribute_syncs(model, tensors, optimizer, batches[-1]))
        print(json.dumps(record), flush=True)
        if options.out:
            options.out.mkdir(parents=True, exist_ok=True)
            prof.export_chrome_trace(str(options.out / f"{name}.json"))


if __name__ == "__main__":
    main()
