"""Wall time and peak memory of the item-item kNN graph build (blockwise top-k cosine + knn_graph).

Each size runs in a fresh subprocess of this script (``--single N``), which reports its own peak RSS
(``ru_maxrss``), so one size's allocations never inflate another's number. Features are random unit
vectors (float32, ``--dim`` wide), the worst case for tile-skipping tricks and the typical case for ties.

    python -m benchmarks.speed.knn_scale --sizes 10000 30000            # JSON line per size, then a table
    python -m benchmarks.speed.knn_scale --sizes 100000 --threads 2

Goal on the 2-core development CPU: N = 100k, d = 384, k = 20 in under 60 s and 2 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import time

from benchmarks.common import module_command, module_env


def peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_single(n: int, dim: int, k: int, memory_budget_mib: int | None, threads: int | None, seed: int) -> dict:
    import torch

    from recgoat_cli.graphs.item_knn import DEFAULT_MEMORY_BUDGET_BYTES, blockwise_topk_cosine, knn_graph
    from recgoat_cli.graphs.item_knn import tile_side_for_budget
    from recgoat_cli.graphs.stats import graph_stats

    if threads is not None:
        torch.set_num_threads(threads)
    budget = DEFAULT_MEMORY_BUDGET_BYTES if memory_budget_mib is None else memory_budget_mib * 2**20
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n, dim, generator=generator)
    features /= torch.linalg.vector_norm(features, dim=1, keepdim=True)
    features = features.numpy()
    rss_before_mib = peak_rss_mib()

    start = time.perf_counter()
    indices, values = blockwise_topk_cosine(features, k, memory_budget_bytes=budget)
    topk_s = time.perf_counter() - start
    start = time.perf_counter()
    rows, cols, weights = knn_graph(indices, values, n, symmetrize="max", normalize="sym")
    graph_s = time.perf_counter() - start
    stats = graph_stats(rows, cols, n)
    return {
        "n": n,
        "dim": dim,
        "k": k,
        "threads": torch.get_num_threads(),
        "memory_budget_mib": budget / 2**20,
        "tile_side": tile_side_for_budget(n, budget),
        "topk_s": round(topk_s, 2),
        "graph_s": round(graph_s, 2),
        "total_s": round(topk_s + graph_s, 2),
        "rss_before_knn_mib": round(rss_before_mib, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "edges": stats["edges"],
        "degree_max": stats["degree_max"],
        # Other processes on a shared machine slow every number above; the 1-minute load tells by how much.
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--single", type=int, help="run one size in this process (used by the parent run)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--memory-budget-mib", type=int, default=None, help="default: the library default")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch and OpenBLAS (numpy matmul) threads (default: each library's choice, usually all cores)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.single is not None:
        result = run_single(args.single, args.dim, args.k, args.memory_budget_mib, args.threads, args.seed)
        print(json.dumps(result), flush=True)
        return

    results = []
    for n in args.sizes:
        command = module_command("benchmarks.speed.knn_scale", "--single", str(n), "--dim", str(args.dim))
        command += ["--k", str(args.k), "--seed", str(args.seed)]
        if args.memory_budget_mib is not None:
            command += ["--memory-budget-mib", str(args.memory_budget_mib)]
        if args.threads is not None:
            command += ["--threads", str(args.threads)]
        env = module_env()
        if args.threads is not None:
            # numpy's OpenBLAS does the tile products on CPU; its pool is sized at import, from the environment.
            env["OPENBLAS_NUM_THREADS"] = str(args.threads)
        completed = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        results.append(result)
        print(json.dumps(result), flush=True)

    print()
    print("| N | d | k | threads | tile | top-k s | graph s | total s | RSS before kNN MiB | peak RSS MiB | edges | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['n']} | {r['dim']} | {r['k']} | {r['threads']} | {r['tile_side']} | {r['topk_s']} | "
            f"{r['graph_s']} | {r['total_s']} | {r['rss_before_knn_mib']} | {r['peak_rss_mib']} | {r['edges']} | {r['load_average_1min']} |"
        )


if __name__ == "__main__":
    main()
