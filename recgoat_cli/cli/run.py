"""``recgoat run``: every stage in order with one config (embed when the dataset has side information)."""

from __future__ import annotations

from recgoat_cli.cli.common import handle_errors
from recgoat_cli.cli.evaluate import render_metrics
from recgoat_cli.cli.options import (
    DatasetOptions,
    DeviceOpt,
    EmbedOptions,
    ForceOpt,
    KOpt,
    OutputOptions,
    PresetGraphOptions,
    RunTopKOpt,
    TrainOptions,
    cutoffs,
    option_groups,
)
from recgoat_cli.cli.train import summary_payload
from recgoat_cli.defaults import DEVICE, ExportDefaults, TrainDefaults


@handle_errors
@option_groups
def run(
    *,
    data: DatasetOptions,
    training: TrainOptions,
    embedding: EmbedOptions,
    graph_options: PresetGraphOptions,
    k: KOpt = None,
    top_k: RunTopKOpt = ExportDefaults.top_k,
    device: DeviceOpt = DEVICE,
    force: ForceOpt = False,
    reporting: OutputOptions,
) -> None:
    """embed -> build-graph -> train -> evaluate (test) -> export, each stage cached by its config and inputs.

    The embed stage runs when the dataset has side information (items.tsv, images, *_feat.npy) or --feature
    is given; an ID-only dataset goes straight to build-graph (and needs --model mf or lightgcn).
    """
    from recgoat_cli.config import EvalConfig, ExportConfig
    from recgoat_cli.limits import check_pipeline
    from recgoat_cli.stages.build_graph import run_build_graph
    from recgoat_cli.stages.common import resolve_device
    from recgoat_cli.stages.embed import run_embed
    from recgoat_cli.stages.evaluate import run_evaluate
    from recgoat_cli.stages.export import run_export
    from recgoat_cli.stages.train import run_train

    output = reporting.output()
    ctx = data.context(output, force)
    embedded = None
    dataset = ctx.dataset
    embeds = dataset.item_table is not None or dataset.image_dir is not None or bool(dataset.feature_files or embedding.feature)
    config = training.config(default_model=TrainDefaults.pipeline_model, device=device)
    gconfig = graph_options.config(training.preset)
    ks = cutoffs(k)
    # before any stage writes
    check_pipeline(dataset, config, gconfig, ks=ks, top_k=top_k, has_embed=embeds, device=resolve_device(config.device))
    if embeds:
        embedded, cached = run_embed(ctx, embedding.config(device), log=output.info)
        output.info(f"embed {embedded.id}{' (cached)' if cached else ''}: " + ", ".join(embedded.manifest.summary["modalities"]))
    graph, cached = run_build_graph(ctx, gconfig, embedded)
    output.info(f"build-graph {graph.id}{' (cached)' if cached else ''}")
    trained, cached = run_train(ctx, config, graph, log=output.info)
    output.info(f"train {trained.id}{' (cached)' if cached else ''}: best epoch {trained.manifest.summary['best_epoch']}")
    evaluated, _ = run_evaluate(ctx, EvalConfig(ks=ks, split="test", device=device), trained)
    exported, _ = run_export(ctx, ExportConfig(top_k=top_k, device=device), trained)
    output.info(f"export {exported.id} at {exported.path}")
    payload = {
        "dataset": ctx.key,
        "embed": embedded.id if embedded is not None else None,
        "build-graph": graph.id,
        "train": summary_payload(trained, cached),
        "evaluate": {"artifact_id": evaluated.id, **evaluated.manifest.summary},
        "export": {"artifact_id": exported.id, "path": str(exported.path)},
    }
    output.result(payload, render=lambda p: render_metrics(p["evaluate"]))
