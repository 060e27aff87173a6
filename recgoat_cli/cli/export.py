"""``recgoat export``: top-N lists per user (original ids) and the learned embeddings, or a TorchScript scorer."""

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


@handle_errors
def export(
    dataset: DatasetOpt,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    data_root: DataRootOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", help="recommendations per user")] = 20,
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv, or torchscript (scorer.pt: top-K for any known user with only torch installed)")] = "parquet",
    exclude: Annotated[str, typer.Option("--exclude", help="known items never recommended: train, train+valid or none")] = "train",
    device: DeviceOpt = "auto",
    from_id: Annotated[Optional[str], typer.Option("--from", help="train artifact id (default: latest)")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write recommendations and embeddings, with the ids of the artifacts they came from."""
    from recgoat_cli.config import ExportConfig
    from recgoat_cli.stages.export import run_export

    output = Output(as_json, quiet)
    ctx = context(dataset, workdir, data_root, force=force, out=output)
    config = ExportConfig(top_k=top_k, format=fmt, exclude=exclude, device=device)
    if from_id is None:
        from recgoat_cli.stages.upstream import ensure_trained

        ensure_trained(ctx, "export", log=output.info, device=device)  # make-style: trains first when nothing is trained
    trained = ctx.store.get("train", from_id)
    artifact, cached = run_export(ctx, config, trained)
    output.info(f"{'cached' if cached else 'exported'} {artifact.path}")
    output.result({"artifact_id": artifact.id, "path": str(artifact.path), "cached": cached, **artifact.manifest.summary})
