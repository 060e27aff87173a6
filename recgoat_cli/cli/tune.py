"""``recgoat tune``: grid or random search over train options, selected on validation only."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import DEFAULT_WORKDIR, DataRootOpt, DatasetOpt, DeviceOpt, JsonOpt, Output, QuietOpt, WorkdirOpt, context, handle_errors
from recgoat_cli.cli.evaluate import KOpt
from recgoat_cli.cli.train import EpochsOpt, ModelOpt, PatienceOpt, PresetOpt, SeedOpt, ValMetricOpt, graph_for_preset


@handle_errors
def tune(
    dataset: DatasetOpt,
    grid: Annotated[list[str], typer.Option("--grid", help="KEY=V1,V2,... train options to search, e.g. --grid lr=0.001,0.01 reg=1e-4,1e-3 graphs=item+user-item,item+user-item+user-user")],
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    data_root: DataRootOpt = None,
    model: ModelOpt = None,
    preset: PresetOpt = None,
    search: Annotated[str, typer.Option("--search", help="grid (every combination) or random (--budget of them)")] = "grid",
    budget: Annotated[Optional[int], typer.Option("--budget", help="trials for --search random")] = None,
    search_seed: Annotated[int, typer.Option("--search-seed", help="seed of the random search")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="trials trained at once, each in its own process (CPU threads are shared out; on one GPU the processes share it)")] = 1,
    epochs: EpochsOpt = 300,
    patience: PatienceOpt = 20,
    val_metric: ValMetricOpt = "recall@20",
    seed: SeedOpt = 2024,
    k: KOpt = None,
    device: DeviceOpt = "auto",
    from_id: Annotated[Optional[str], typer.Option("--from", help="build-graph artifact id (default: latest)")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train every configuration, pick the best on validation, then evaluate only that one on test."""
    from recgoat_cli.cli.common import render_table
    from recgoat_cli.config import TrainConfig
    from recgoat_cli.errors import UserError
    from recgoat_cli.presets import with_preset
    from recgoat_cli.stages.tune import parse_grid, run_tune

    if search not in ("grid", "random"):
        raise UserError(f"--search {search}: use grid or random.")
    output = Output(as_json, quiet)
    ctx = context(dataset, workdir, data_root, out=output)
    given = {"epochs": epochs, "patience": patience, "val_metric": val_metric, "seed": seed, "device": device} | ({"model": model} if model else {})
    base = TrainConfig(**({"model": "recgoat"} | with_preset(preset, "train", given)))
    graph = ctx.store.get("build-graph", from_id)
    if preset is not None and from_id is None:
        graph = graph_for_preset(ctx, preset, graph, output.info)
    artifact, result = run_tune(ctx, base, parse_grid(grid), graph, search=search, budget=budget, search_seed=search_seed, ks=tuple(k or (10, 20)), jobs=jobs, log=output.info)

    def render(payload: dict) -> None:
        rows = payload["trials"]
        columns = [c for c in rows[0] if c not in ("chosen",)]
        render_table(f"tuning on {ctx.key} (chosen: trial {payload['chosen']['trial']})", columns + ["chosen"], [[r[c] for c in columns] + ["*" if r["chosen"] else ""] for r in rows])
        render_table("test metrics of the chosen configuration", ["metric", "value"], [[k, v] for k, v in payload["test"].items()])

    output.result({"artifact_id": artifact.id, "path": str(artifact.path), **result}, render=render)
