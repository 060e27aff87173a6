"""``recgoat build-graph``: user-item, item-item (per modality) and user-user graphs from the train split."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import handle_errors
from recgoat_cli.cli.options import DatasetOptions, ForceOpt, GraphOptions, OutputOptions, option_groups


@handle_errors
@option_groups
def build_graph(
    *,
    data: DatasetOptions,
    graph: GraphOptions,
    from_id: Annotated[Optional[str], typer.Option("--from", help="embed artifact id to build from (default: latest, if any)")] = None,
    force: ForceOpt = False,
    reporting: OutputOptions,
) -> None:
    """Build the graphs the models propagate over (never from valid/test interactions)."""
    from recgoat_cli.stages.build_graph import run_build_graph, upstream_embed

    output = reporting.output()
    ctx = data.context(output, force)
    artifact, cached = run_build_graph(ctx, graph.config(), upstream_embed(ctx, from_id))
    output.info(f"{'cached' if cached else 'built'} build-graph artifact {artifact.id} at {artifact.path}")
    output.result({"artifact_id": artifact.id, "path": str(artifact.path), "cached": cached, **artifact.manifest.summary})
