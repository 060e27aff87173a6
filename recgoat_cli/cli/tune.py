"""``recgoat tune``: grid or random search over train options, selected on validation only."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import handle_errors
from recgoat_cli.cli.options import (
    DatasetOptions,
    DeviceOpt,
    EpochsOpt,
    KOpt,
    ModelOpt,
    OutputOptions,
    PatienceOpt,
    PresetOpt,
    SeedOpt,
    ValMetricOpt,
    cutoffs,
    option_groups,
)
from recgoat_cli.cli.train import graph_for_preset
from recgoat_cli.defaults import DEVICE, TrainDefaults


@handle_errors
@option_groups
def tune(
    *,
    data: DatasetOptions,
    grid: Annotated[list[str], typer.Option("--grid", help="KEY=V1,V2,... train options to search, e.g. --grid lr=0.001,0.01 reg=1e-4,1e-3 graphs=item+user-item,item+user-item+user-user")],
    model: ModelOpt = None,
    preset: PresetOpt = None,
    search: Annotated[str, typer.Option("--search", help="grid (every combination) or random (--budget of them)")] = "grid",
    budget: Annotated[Optional[int], typer.Option("--budget", help="trials for --search random")] = None,
    search_seed: Annotated[int, typer.Option("--search-seed", help="seed of the random search")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="trials trained at once, each in its own process (CPU threads are shared out; on one GPU the processes share it)")] = 1,
    epochs: EpochsOpt = TrainDefaults.epochs,
    patience: PatienceOpt = TrainDefaults.patience,
    val_metric: ValMetricOpt = TrainDefaults.val_metric,
    seed: SeedOpt = TrainDefaults.seed,
    k: KOpt = None,
    device: DeviceOpt = DEVICE,
    from_id: Annotated[Optional[str], typer.Option("--from", help="build-graph artifact id (default: latest)")] = None,
    reporting: OutputOptions,
) -> None:
    """Train every configuration, pick the best on validation, then evaluate only that one on test."""
    from recgoat_cli.cli.common import render_table
    from recgoat_cli.config import TrainConfig
    from recgoat_cli.errors import UserError
    from recgoat_cli.presets import with_preset
    from recgoat_cli.stages.tune import parse_grid, run_tune

    if search not in ("grid", "random"):
        raise UserError(f"--search {search}: use grid or random.")
    output = reporting.output()
    ctx = data.context(output)
    given = {"epochs": epochs, "patience": patience, "val_metric": val_metric, "seed": seed, "device": device} | ({"model": model} if model else {})
    base = TrainConfig(**({"model": TrainDefaults.pipeline_model} | with_preset(preset, "train", given)))
    graph = ctx.store.get("build-graph", from_id)
    if preset is not None and from_id is None:
        graph = graph_for_preset(ctx, preset, graph, output.info)
    artifact, result = run_tune(ctx, base, parse_grid(grid), graph, search=search, budget=budget, search_seed=search_seed, ks=cutoffs(k), jobs=jobs, log=output.info)

    def render(payload: dict) -> None:
        rows = payload["trials"]
        columns = [c for c in rows[0] if c not in ("chosen",)]
        render_table(f"tuning on {ctx.key} (chosen: trial {payload['chosen']['trial']})", columns + ["chosen"], [[r[c] for c in columns] + ["*" if r["chosen"] else ""] for r in rows])
        render_table("test metrics of the chosen configuration", ["metric", "value"], [[k, v] for k, v in payload["test"].items()])

    output.result({"artifact_id": artifact.id, "path": str(artifact.path), **result}, render=render)
