"""``recgoat embed``: LM representations of items (text, images, precomputed features) and of users."""

from __future__ import annotations

from recgoat_cli.cli.common import handle_errors, runs_distributed
from recgoat_cli.cli.options import DatasetOptions, DeviceOpt, EmbedCommandOptions, ForceOpt, OutputOptions, option_groups
from recgoat_cli.defaults import DEVICE


@handle_errors
@runs_distributed
@option_groups
def embed(
    *,
    data: DatasetOptions,
    embedding: EmbedCommandOptions,
    device: DeviceOpt = DEVICE,
    force: ForceOpt = False,
    reporting: OutputOptions,
) -> None:
    """Encode item text and images with real pretrained models, import features, build user rows."""
    from recgoat_cli.stages.embed import run_embed

    output = reporting.output()
    ctx = data.context(output, force)
    artifact, cached = run_embed(ctx, embedding.config(device), log=output.info)
    summary = artifact.manifest.summary
    for name, reason in summary.get("skipped", {}).items():
        output.info(f"skipped the {name} modality: {reason}")
    output.info(f"{'cached' if cached else 'wrote'} embed artifact {artifact.id}: " + ", ".join(f"{n} {s[1]}-d" for n, s in summary["modalities"].items()))
    output.result({"artifact_id": artifact.id, "path": str(artifact.path), "cached": cached, **summary})
