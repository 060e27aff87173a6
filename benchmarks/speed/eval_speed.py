"""Time one full-ranking evaluation of a split at Amazon-Baby size; prints one JSON line.

Interactions come from ``../shared/data/baby/baby.inter`` when present (exclude = train items,
``x_label`` 0; truth = test items, ``x_label`` 2), otherwise from random pairs of the same shape
(19,445 users x 7,050 items, 119,674 train and 20,559 test pairs). Embeddings are random 64-d float32:
the cost of a full ranking does not depend on their values.

    .venv/bin/python -m benchmarks.speed.eval_speed [--threads N] [--batch-size B] [--runs 5]

``--threads`` sets both PyTorch's and the BLAS's thread count (the CPU score matmul runs through NumPy's
OpenBLAS); it must be applied before NumPy is imported, hence the argument parsing before the imports (``benchmarks.common``
imports only the standard library).
"""

import argparse
import os
import sys
from pathlib import Path

from benchmarks.common import BABY_INTER, BABY_ITEMS, BABY_TEST, BABY_TRAIN, BABY_USERS


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inter", type=Path, default=BABY_INTER, help="MMRec .inter file (random data if absent)")
    parser.add_argument("--threads", type=int, default=None, help="torch and BLAS threads (default: library defaults)")
    parser.add_argument("--batch-size", type=int, default=None, help="users per score block (default: automatic)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up; the median is reported")
    parser.add_argument("--dim", type=int, default=64, help="embedding size")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = str(args.threads)

    import json
    import statistics
    import time

    import numpy as np
    import torch

    from recgoat_cli.eval.ranker import csr_from_pairs, evaluate_ranking

    if args.threads is not None:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    if args.inter.is_file():
        with args.inter.open() as handle:
            header = handle.readline().split()
        if header[:3] != ["userID", "itemID", "x_label"]:
            sys.exit(f"{args.inter}: expected the header 'userID itemID x_label', got {header!r}")
        table = np.loadtxt(args.inter, delimiter="\t", skiprows=1, dtype=np.int64, ndmin=2)
        n_users, n_items = int(table[:, 0].max()) + 1, int(table[:, 1].max()) + 1
        train, test = table[table[:, 2] == 0], table[table[:, 2] == 2]
        train_users, train_items, test_users, test_items = train[:, 0], train[:, 1], test[:, 0], test[:, 1]
        source = str(args.inter.resolve())
    else:
        n_users, n_items = BABY_USERS, BABY_ITEMS
        train_users, train_items = rng.integers(0, n_users, BABY_TRAIN), rng.integers(0, n_items, BABY_TRAIN)
        test_users, test_items = rng.integers(0, n_users, BABY_TEST), rng.integers(0, n_items, BABY_TEST)
        source = "random"
    exclude = csr_from_pairs(train_users, train_items, n_users, n_items)
    truth = csr_from_pairs(test_users, test_items, n_users, n_items)

    generator = torch.Generator().manual_seed(0)
    user_emb = torch.randn(n_users, args.dim, generator=generator)
    item_emb = torch.randn(n_items, args.dim, generator=generator)

    def run_once() -> tuple[float, float, object]:
        start, start_cpu = time.perf_counter(), time.process_time()
        result = evaluate_ranking(user_emb, item_emb, *truth, *exclude, ks=[10, 20], batch_size=args.batch_size)
        return time.perf_counter() - start, time.process_time() - start_cpu, result

    run_once()  # warm-up: first-call allocations and library initialisation
    timings, cpu_timings, result = [], [], None
    for _ in range(args.runs):
        seconds, cpu_seconds, result = run_once()
        timings.append(seconds)
        cpu_timings.append(cpu_seconds)

    report = {
        "benchmark": "evaluate_ranking",
        "seconds": round(statistics.median(timings), 4),
        # The fastest run: the least disturbed by other processes on a shared, loaded machine.
        "min_seconds": round(min(timings), 4),
        "runs_seconds": [round(seconds, 4) for seconds in timings],
        # CPU time of this process (all threads): close to the wall time on an idle machine with one thread,
        # and less sensitive than wall time to other processes sharing the cores.
        "cpu_seconds": round(statistics.median(cpu_timings), 4),
        "users": n_users,
        "items": n_items,
        "users_evaluated": result.n_users,
        "excluded_pairs": int(exclude[1].size),
        "truth_pairs": int(truth[1].size),
        "dim": args.dim,
        "ks": [10, 20],
        "batch_size": args.batch_size or "auto",
        "torch_threads": torch.get_num_threads(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "cpu_count": os.cpu_count(),
        "loadavg": [round(load, 2) for load in os.getloadavg()],
        "data": source,
        "torch": torch.__version__,
        "recall@20": round(result.metrics["recall@20"], 6),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
