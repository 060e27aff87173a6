"""``recgoat report``: PNG training curves and test-metric bars, and a markdown summary linking them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import handle_errors
from recgoat_cli.cli.options import ArtifactOptions, OutputOptions, option_groups


@handle_errors
@option_groups
def report(
    *,
    artifacts: ArtifactOptions,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="folder for the PNGs and report.md (default: <workdir>/<dataset>/report)")] = None,
    reporting: OutputOptions,
) -> None:
    """Plot every training run's loss and validation curves and the test metrics per model and seed."""
    from recgoat_cli.artifacts.store import ArtifactStore
    from recgoat_cli.stages.report import run_report

    store = ArtifactStore(artifacts.workdir, artifacts.key())
    output = reporting.output()
    written = run_report(store, out_dir if out_dir is not None else store.root / "report")
    output.info(f"wrote {written['report']} and {len(written['figures'])} pictures")
    output.result(written, render=lambda payload: typer.echo(payload["report"]))
