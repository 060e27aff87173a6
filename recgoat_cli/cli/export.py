"""``recgoat export``: top-N lists per user (original ids) and the learned embeddings, or a TorchScript scorer."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import handle_errors
from recgoat_cli.cli.options import DatasetOptions, DeviceOpt, ForceOpt, OutputOptions, TopKOpt, option_groups
from recgoat_cli.defaults import DEVICE, ExportDefaults


@handle_errors
@option_groups
def export(
    *,
    data: DatasetOptions,
    top_k: TopKOpt = ExportDefaults.top_k,
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv, or torchscript (scorer.pt: top-K for any known user with only torch installed)")] = ExportDefaults.format,
    exclude: Annotated[str, typer.Option("--exclude", help="known items never recommended: train, train+valid or none")] = ExportDefaults.exclude,
    device: DeviceOpt = DEVICE,
    from_id: Annotated[Optional[str], typer.Option("--from", help="train artifact id (default: latest)")] = None,
    force: ForceOpt = False,
    reporting: OutputOptions,
) -> None:
    """Write recommendations and embeddings, with the ids of the artifacts they came from."""
    from recgoat_cli.config import ExportConfig
    from recgoat_cli.stages.export import run_export

    output = reporting.output()
    ctx = data.context(output, force)
    config = ExportConfig(top_k=top_k, format=fmt, exclude=exclude, device=device)
    if from_id is None:
        from recgoat_cli.stages.upstream import ensure_trained

        ensure_trained(ctx, "export", log=output.info, device=device)  # make-style: trains first when nothing is trained
    trained = ctx.store.get("train", from_id)
    artifact, cached = run_export(ctx, config, trained)
    output.info(f"{'cached' if cached else 'exported'} {artifact.path}")
    output.result({"artifact_id": artifact.id, "path": str(artifact.path), "cached": cached, **artifact.manifest.summary})
