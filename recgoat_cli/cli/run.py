"""``recgoat run``: every stage in order with one config (embed when the dataset has side information)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import (
    DEFAULT_WORKDIR,
    DataRootOpt,
    DatasetOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    Output,
    QuietOpt,
    WorkdirOpt,
    context,
    handle_errors,
)
from recgoat_cli.cli.evaluate import KOpt, render_metrics
from recgoat_cli.cli.train import (
    BatchOpt,
    DimOpt,
    EpochsOpt,
    EvalEveryOpt,
    LayersOpt,
    LrOpt,
    ModelOpt,
    PatienceOpt,
    RegOpt,
    SeedOpt,
    ValMetricOpt,
    summary_payload,
    train_config,
)


@handle_errors
def run(
    dataset: DatasetOpt,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    data_root: DataRootOpt = None,
    model: ModelOpt = "lightgcn",
    dim: DimOpt = 64,
    layers: LayersOpt = 3,
    lr: LrOpt = 1e-3,
    reg: RegOpt = 1e-4,
    batch_size: BatchOpt = 2048,
    epochs: EpochsOpt = 300,
    patience: PatienceOpt = 20,
    eval_every: EvalEveryOpt = 1,
    val_metric: ValMetricOpt = "recall@20",
    seed: SeedOpt = 2024,
    k: KOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", help="recommendations per user in the export")] = 20,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """build-graph -> train -> evaluate (test) -> export, each stage cached by its config and inputs."""
    from recgoat_cli.config import EvalConfig, ExportConfig, GraphConfig
    from recgoat_cli.stages.build_graph import run_build_graph
    from recgoat_cli.stages.evaluate import run_evaluate
    from recgoat_cli.stages.export import run_export
    from recgoat_cli.stages.train import run_train

    output = Output(as_json, quiet)
    ctx = context(dataset, workdir, data_root, force=force, out=output)
    graph, cached = run_build_graph(ctx, GraphConfig())
    output.info(f"build-graph {graph.id}{' (cached)' if cached else ''}")
    config = train_config(
        model=model, dim=dim, n_layers=layers, lr=lr, reg=reg, batch_size=batch_size, epochs=epochs,
        patience=patience, eval_every=eval_every, val_metric=val_metric, seed=seed, device=device,
    )
    trained, cached = run_train(ctx, config, graph)
    output.info(f"train {trained.id}{' (cached)' if cached else ''}: best epoch {trained.manifest.summary['best_epoch']}")
    evaluated, _ = run_evaluate(ctx, EvalConfig(ks=tuple(k or (10, 20)), split="test", device=device), trained)
    exported, _ = run_export(ctx, ExportConfig(top_k=top_k, device=device), trained)
    output.info(f"export {exported.id} at {exported.path}")
    payload = {
        "dataset": ctx.key,
        "train": summary_payload(trained, cached),
        "evaluate": {"artifact_id": evaluated.id, **evaluated.manifest.summary},
        "export": {"artifact_id": exported.id, "path": str(exported.path)},
    }
    output.result(payload, render=lambda p: render_metrics(p["evaluate"]))
