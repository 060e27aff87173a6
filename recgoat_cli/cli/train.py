"""``recgoat train``: fit MF, LightGCN, FREEDOM or RecGOAT with BPR (early stopping on the validation split), or
fuse a trained model's scores with content scores (late fusion, weights chosen on the validation split)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import handle_errors, runs_distributed
from recgoat_cli.cli.options import DatasetOptions, DeviceOpt, ForceOpt, OutputOptions, TrainOptions, option_groups
from recgoat_cli.defaults import DEVICE, TrainDefaults


def graph_for_preset(ctx, preset_name: str | None, graph, log):
    """``graph``, or the same build-graph configuration with the preset's graph values on the same embed artifact.

    Built (or found cached) when ``graph`` differs from what the preset asks for, saying so in one line.
    """
    from recgoat_cli.config import GraphConfig
    from recgoat_cli.presets import preset
    from recgoat_cli.stages.build_graph import run_build_graph

    wanted = preset(preset_name, "graph")
    current = {k: v for k, v in graph.manifest.config.items() if k in GraphConfig.model_fields and k != "non_semantic"}
    if all(current.get(k) == v for k, v in wanted.items()):
        return graph
    embed_id = graph.manifest.upstream_id("embed")
    embed = ctx.store.get("embed", embed_id) if embed_id is not None else None
    config = GraphConfig(**(current | wanted))
    built, cached = run_build_graph(ctx, config, embed)
    changes = ", ".join(f"{k}={v}" for k, v in wanted.items() if current.get(k) != v)
    log(f"--preset {preset_name} uses build-graph {built.id} ({changes}{', cached' if cached else ', built now'}) instead of {graph.id}")
    return built


def summary_payload(artifact, cached: bool) -> dict:
    summary = artifact.manifest.summary
    return {
        "artifact_id": artifact.id,
        "path": str(artifact.path),
        "cached": cached,
        "model": summary.get("model"),
        "best_epoch": summary.get("best_epoch"),
        "best_valid": summary.get("best_valid"),
        "epochs_run": summary.get("epochs_run"),
        "mean_epoch_seconds": summary.get("mean_epoch_seconds"),
    }


@handle_errors
@runs_distributed
@option_groups
def train(
    *,
    data: DatasetOptions,
    training: TrainOptions,
    seeds: Annotated[Optional[list[int]], typer.Option("--seeds", help="train one model per seed, e.g. --seeds 1 2 3 (evaluate then reports mean +- std)")] = None,
    device: DeviceOpt = DEVICE,
    resume: Annotated[bool, typer.Option("--resume", help="continue the interrupted run of this configuration")] = False,
    from_id: Annotated[Optional[str], typer.Option("--from", help="build-graph artifact id (default: latest)")] = None,
    force: ForceOpt = False,
    reporting: OutputOptions,
) -> None:
    """Train one model; the best epoch on validation is kept (the test split is never read)."""
    from recgoat_cli.errors import UserError
    from recgoat_cli.stages.train import run_train

    if resume and force:
        raise UserError("--resume and --force contradict each other (--resume continues the interrupted run, --force starts it again); pass one of them.")
    output = reporting.output()
    ctx = data.context(output, force)
    config = training.config(default_model=TrainDefaults.pipeline_model, device=device)
    from recgoat_cli.stages.upstream import build_graph_for_train, has_side_information

    if config.model == "recgoat" and from_id is None and not has_side_information(ctx):
        raise UserError(
            f"dataset '{ctx.dataset.name}' has no item content (items.tsv, images/ or *_feat.npy), which RecGOAT, the default "
            "model, needs; pass --model lightgcn (or mf) to train on the interactions alone."
        )
    graph = build_graph_for_train(ctx, from_id, log=output.info)  # make-style: builds what is missing, with defaults
    if training.preset is not None and from_id is None:
        graph = graph_for_preset(ctx, training.preset, graph, output.info)
    if seeds:
        from recgoat_cli.stages.train import write_seed_group

        runs = []
        for value in dict.fromkeys(seeds):
            artifact, cached = run_train(ctx, config.model_copy(update={"seed": value}), graph, resume=resume, log=output.info)
            runs.append((artifact, cached))
            output.info(f"seed {value}: {'cached' if cached else 'trained'} {config.model} artifact {artifact.id}")
        write_seed_group(ctx, [a for a, _ in runs])
        output.result({"runs": [summary_payload(a, c) | {"seed": a.manifest.seed} for a, c in runs]})
        return
    artifact, cached = run_train(ctx, config, graph, resume=resume, log=output.info)
    payload = summary_payload(artifact, cached)
    output.info(f"{'cached' if cached else 'trained'} {config.model} artifact {artifact.id} (best epoch {payload['best_epoch']})")
    output.result(payload)
