"""``recgoat report``: PNG training curves and test-metric bars, and a markdown summary linking them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import DEFAULT_WORKDIR, DatasetOpt, JsonOpt, Output, QuietOpt, WorkdirOpt, handle_errors


@handle_errors
def report(
    dataset: DatasetOpt,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="folder for the PNGs and report.md (default: <workdir>/<dataset>/report)")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Plot every training run's loss and validation curves and the test metrics per model and seed."""
    from recgoat_cli.artifacts.store import ArtifactStore
    from recgoat_cli.data.dataset import dataset_key, resolve_dataset
    from recgoat_cli.errors import UserError
    from recgoat_cli.stages.report import run_report

    key = dataset
    try:
        key = dataset_key(resolve_dataset(dataset))
    except UserError:
        pass  # as in `recgoat show`: a dataset folder that moved away still has artifacts under its name
    store = ArtifactStore(workdir, key)
    output = Output(as_json, quiet)
    written = run_report(store, out_dir if out_dir is not None else store.root / "report")
    output.info(f"wrote {written['report']} and {len(written['figures'])} pictures")
    output.result(written, render=lambda payload: typer.echo(payload["report"]))
