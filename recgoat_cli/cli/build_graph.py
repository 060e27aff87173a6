"""``recgoat build-graph``: user-item, item-item (per modality) and user-user graphs from the train split."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import DEFAULT_WORKDIR, DataRootOpt, DatasetOpt, ForceOpt, JsonOpt, Output, QuietOpt, WorkdirOpt, context, handle_errors


MEMORY_UNITS = {"": 1, "m": 1, "mb": 1, "mib": 1, "g": 1024, "gb": 1024, "gib": 1024}
MIN_MEMORY_BUDGET_MIB = 16


def parse_memory_budget(text: str) -> int:
    """``--memory-budget`` in MiB: a plain number is MiB, or a size like ``512MB`` or ``2GB`` (binary units)."""
    import re

    from recgoat_cli.errors import UserError

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in MEMORY_UNITS:
        raise UserError(f"--memory-budget {text!r} is not a size; write MiB as a number or a size like 512MB or 2GB.")
    mib = int(float(match.group(1)) * MEMORY_UNITS[unit])
    if mib < MIN_MEMORY_BUDGET_MIB:
        raise UserError(f"--memory-budget {text} is below the {MIN_MEMORY_BUDGET_MIB} MiB the kNN tiles need; pass 16MB or more.")
    return mib


@handle_errors
def build_graph(
    dataset: DatasetOpt,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    data_root: DataRootOpt = None,
    knn_k: Annotated[int, typer.Option("--knn-k", help="neighbours per item in each item-item graph")] = 10,
    user_knn_k: Annotated[int, typer.Option("--user-knn-k", help="neighbours per user in the user-user graph")] = 10,
    user_graph: Annotated[str, typer.Option("--user-graph", help="embedding, co-interaction, both or none")] = "embedding",
    normalize: Annotated[str, typer.Option("--normalize", help="none, sym or rw (item-item and user-user graphs)")] = "sym",
    memory_budget: Annotated[str, typer.Option("--memory-budget", help="memory for the blockwise kNN similarity tiles: MiB, or a size like 512MB or 2GB")] = "512",
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
    config = GraphConfig(knn_k=knn_k, user_knn_k=user_knn_k, user_graph=user_graph, normalize=normalize, memory_budget_mb=parse_memory_budget(memory_budget))
    artifact, cached = run_build_graph(ctx, config, upstream_embed(ctx, from_id))
    output.info(f"{'cached' if cached else 'built'} build-graph artifact {artifact.id} at {artifact.path}")
    output.result({"artifact_id": artifact.id, "path": str(artifact.path), "cached": cached, **artifact.manifest.summary})
