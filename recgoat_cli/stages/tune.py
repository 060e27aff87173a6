"""``recgoat tune``: hyper-parameter search that selects on validation and reads the test split once.

Each trial is an ordinary ``train`` artifact (cached like any other), scored by its best validation metric.
With ``jobs > 1`` the trials train in that many spawned processes (each gets its share of the CPU threads;
on one GPU they share it), and the selection below then finds each of them cached. Only when every trial
has finished and one configuration is chosen does ``evaluate`` run on the test split,
for that configuration alone. The ``tune`` artifact holds ``trials.csv`` / ``trials.parquet`` (one row per
trial: its parameters, validation score, epochs and artifact id), ``results.md`` and ``chosen.json``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import json
import multiprocessing
import os
import random

from recgoat_cli.artifacts.manifest import compute_artifact_id
from recgoat_cli.artifacts.store import Artifact, write_manifest
from recgoat_cli.config import EvalConfig, TrainConfig
from recgoat_cli.errors import UserError
from recgoat_cli.stages.common import StageContext

STAGE = "tune"
#: joins the graphs of one ``--grid graphs=`` value, e.g. ``graphs=item+user-item,item+user-item+user-user``
GRAPH_JOIN = "+"


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    """``["lr=0.001,0.01", "dim=32,64"]`` -> ``{"lr": ["0.001", "0.01"], "dim": ["32", "64"]}``."""
    grid: dict[str, list[str]] = {}
    fields = set(TrainConfig.model_fields) - {"non_semantic", "seed", "device"}
    for spec in specs:
        key, eq, values = spec.partition("=")
        name = key.strip().lstrip("-").replace("-", "_")
        if not eq or not values.strip():
            raise UserError(f"--grid {spec}: write KEY=V1,V2,... (e.g. lr=0.001,0.01).")
        if name not in fields:
            raise UserError(f"--grid {spec}: {key} is not a train option; use one of {', '.join(sorted(fields))}.")
        grid[name] = [v.strip() for v in values.split(",") if v.strip()]
    if not grid:
        raise UserError("--grid needs at least one KEY=V1,V2,... to search over.")
    return grid


def trial_configs(base: TrainConfig, grid: dict[str, list[str]], search: str, budget: int | None, seed: int) -> list[TrainConfig]:
    """Every grid point (``grid``) or ``budget`` distinct points drawn with ``seed`` (``random``)."""
    from pydantic import ValidationError

    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    points = [{k: tuple(v.split(GRAPH_JOIN)) if k == "graphs" else v for k, v in point.items()} for point in points]
    if search == "random":
        if not budget or budget < 1:
            raise UserError("--search random needs --budget N (the number of trials).")
        points = random.Random(seed).sample(points, min(budget, len(points)))
    configs = []
    for point in points:
        try:
            # only the options the base was given: a default that depends on the model (FREEDOM's layers and
            # L2) then follows the trial's model, not the base's
            configs.append(TrainConfig(**(base.model_dump(exclude={"non_semantic"}, exclude_unset=True) | point)))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UserError(f"--grid value {point} is not valid for {first['loc'][0]}: {first['msg']}.") from None
    return configs


def choose_trial(trials: list[dict], metric_column: str) -> dict:
    """The trial with the best validation score; on a tie, the earlier trial."""
    return max(trials, key=lambda t: (t[metric_column], -t["trial"]))


def grid_text(value) -> str:
    """A trial's parameter as the grid wrote it (``graphs`` joined with ``+``)."""
    return GRAPH_JOIN.join(value) if isinstance(value, (tuple, list)) else str(value)


def _train_trial(dataset_root: str, workdir: str, config: dict, graph_id: str, threads: int) -> bool:
    """One trial in a worker process; whether its artifact was already cached."""
    import torch

    from recgoat_cli.stages.common import open_context
    from recgoat_cli.stages.train import run_train

    torch.set_num_threads(threads)
    ctx = open_context(dataset_root, workdir)
    return run_train(ctx, TrainConfig(**config), ctx.store.get("build-graph", graph_id))[1]


def train_in_parallel(ctx: StageContext, configs: list[TrainConfig], graph: Artifact, jobs: int, log=lambda message: None) -> dict[int, bool]:
    """Train ``configs`` in ``jobs`` spawned processes; returns trial index -> whether it was cached.

    The first failure cancels the trials not yet started and is raised once the running ones end.
    """
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
    cached: dict[int, bool] = {}
    try:
        futures = {pool.submit(_train_trial, str(ctx.dataset.root), str(ctx.store.workdir), config.model_dump(exclude={"non_semantic"}), graph.id, threads): index
                   for index, config in enumerate(configs)}
        for future in concurrent.futures.as_completed(futures):
            cached[futures[future]] = future.result()
            log(f"trained {len(cached)}/{len(configs)} trials ({jobs} at a time)")
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return cached


def run_tune(
    ctx: StageContext,
    base: TrainConfig,
    grid: dict[str, list[str]],
    graph: Artifact,
    *,
    search: str = "grid",
    budget: int | None = None,
    search_seed: int = 0,
    ks: tuple[int, ...] = (10, 20),
    jobs: int = 1,
    log=lambda message: None,
) -> tuple[Artifact, dict]:
    import polars as pl

    from recgoat_cli.stages.evaluate import run_evaluate
    from recgoat_cli.stages.train import run_train

    configs = trial_configs(base, grid, search, budget, search_seed)
    parallel_cached: dict[int, bool] = {}
    if jobs > 1 and len(configs) > 1:
        parallel_cached = train_in_parallel(ctx, configs, graph, min(jobs, len(configs)), log)
        ctx = dataclasses.replace(ctx, force=False)  # the workers have (re)trained every trial
    trials = []
    for number, config in enumerate(configs, 1):
        trained, cached = run_train(ctx, config, graph)
        cached = parallel_cached.get(number - 1, cached)
        score = trained.manifest.summary["best_valid"][config.val_metric]
        params = {name: grid_text(getattr(config, name)) for name in grid}
        log(f"trial {number}/{len(configs)} {params}: valid {config.val_metric} {score:.4f}{' (cached)' if cached else ''}")
        trials.append({"trial": number, **params, f"valid_{config.val_metric}": score,
                       "best_epoch": trained.manifest.summary["best_epoch"], "train_artifact": trained.id, "_artifact": trained})
    metric_column = f"valid_{base.val_metric}"
    chosen = choose_trial(trials, metric_column)
    # the selection is final here; the test split is read now, once, for the chosen configuration only
    evaluated, _ = run_evaluate(ctx, EvalConfig(ks=ks, split="test", device=base.device), chosen["_artifact"])
    test_metrics = evaluated.manifest.summary["metrics"]
    rows = [{k: v for k, v in t.items() if k != "_artifact"} | {"chosen": t is chosen} for t in trials]
    upstream_ids = [t["train_artifact"] for t in trials] + [evaluated.id]
    artifact_id = compute_artifact_id(STAGE, {"grid": grid, "search": search, "budget": budget, "seed": search_seed, "base": base.semantic_dump()}, upstream_ids, ctx.dataset.input_hashes())
    chosen_row = next(r for r in rows if r["chosen"])

    def write(out) -> None:
        frame = pl.DataFrame(rows)
        frame.write_csv(out / "trials.csv")
        frame.write_parquet(out / "trials.parquet")
        (out / "chosen.json").write_text(json.dumps({"trial": chosen_row, "test": test_metrics, "evaluate_artifact": evaluated.id}, indent=2, default=str) + "\n")
        (out / "results.md").write_text(results_markdown(rows, metric_column, chosen_row, test_metrics), encoding="utf-8")
        write_manifest(
            out, stage=STAGE, artifact_id=artifact_id, dataset=ctx.key,
            config={"grid": grid, "search": search, "budget": budget, "search_seed": search_seed, "base": base.model_dump(mode="json")},
            upstream=[graph, evaluated], inputs=ctx.dataset.input_hashes(),
            summary={"trials": len(rows), "chosen": chosen_row, "test": test_metrics},
        )

    return ctx.publish(STAGE, artifact_id, write, force=True), {"trials": rows, "chosen": chosen_row, "test": test_metrics}


def results_markdown(rows: list[dict], metric_column: str, chosen: dict, test: dict) -> str:
    columns = [c for c in rows[0] if c != "chosen"]
    lines = ["# Tuning results", "", f"Selected on `{metric_column}` (validation); the test split was evaluated once, for the chosen trial.", ""]
    lines += ["| " + " | ".join(columns) + " | chosen |", "|" + "---|" * (len(columns) + 1)]
    for row in rows:
        cells = [f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + f" | {'yes' if row['chosen'] else ''} |")
    lines += ["", f"Chosen trial {chosen['trial']}; test: " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()), ""]
    return "\n".join(lines)
