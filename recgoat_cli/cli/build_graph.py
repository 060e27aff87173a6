"""``recgoat build-graph``: user-item, item-item (per modality) and user-user graphs from the train split."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import DEFAULT_WORKDIR, DataRootOpt, DatasetOpt, ForceOpt, JsonOpt, Output, QuietOpt, WorkdirOpt, context, handle_errors


@handle_errors
def build_graph(
    dataset: DatasetOpt,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    data_root: DataRootOpt = None,
    knn_k: Annotated[int, typer.Option("--knn-k", help="neighbours per item in each item-item graph")] = 10,
    user_knn_k: Annotated[int, typer.Option("--user-knn-k", help="neighbours per user in the user-user graph")] = 10,
    user_graph: Annotated[str, typer.Option("--user-graph", help="embedding, co-interaction, both or none")] = "embedding",
    normalize: Annotated[str, typer.Option("--normalize", help="none, sym or rw (item-item and user-user graphs)")] = "sym",
    memory_budget: Annotated[int, typer.Option("--memory-budget", help="MiB for blockwise kNN similarity blocks")] = 512,
    from_id: Annotated[Optional[str], typer.Option("--from", help="embed artifact id to build from (default: latest, if any)")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Build the graphs the models propagate over (never from valid/test interactions)."""
    from recgoat_cli.config import GraphConfig
    from recgoat_cli.stages.build_graph import run_build_graph, upstream_embed

    output = Output(as_json, quiet)
    ctx = context(dataset, workdir, data_root, force=force, out=output)
    config = GraphConfig(knn_k=knn_k, user_knn_k=user_knn_k, user_graph=user_graph, normalize=normalize, memory_budget_mb=memory_budget)
    artifact, cached = run_build_graph(ctx, config, upstream_embed(ctx, from_id))
    output.info(f"{'cached' if cached else 'built'} build-graph artifact {artifact.id} at {artifact.path}")
    output.result({"artifact_id": artifact.id, "path": str(artifact.path), "cached": cached, **artifact.manifest.summary})
