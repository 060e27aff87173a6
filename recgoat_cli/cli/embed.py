"""``recgoat embed``: LM representations of items (text, images, precomputed features) and of users."""

from __future__ import annotations

import os
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
    runs_distributed,
)

TextModelOpt = Annotated[str, typer.Option("--text-model", help="minilm (bundled default), bge-base, bge-small, e5-base, a hub name (downloaded on first use), a folder, or none")]
TextTemplateOpt = Annotated[Optional[str], typer.Option("--text-template", help="item text template over items.tsv columns, e.g. '{title}. {description}'")]
ImageEncoderOpt = Annotated[str, typer.Option("--image-encoder", help="auto (clip when --image-weights is given, else descriptor), clip, descriptor or none")]
ImageModelOpt = Annotated[str, typer.Option("--image-model", "--image-arch", help="open_clip architecture, e.g. ViT-B-32, or hf-hub:ORG/NAME")]
ImageWeightsOpt = Annotated[Optional[str], typer.Option("--image-weights", help="open_clip pretrained tag (downloaded on first use), or a weights file")]
FeatureOpt = Annotated[Optional[list[str]], typer.Option("--feature", help="NAME=path.npy precomputed item features (repeatable)")]
SkipUnreadableImagesOpt = Annotated[
    bool, typer.Option("--skip-unreadable-images", help="fill image files that do not decode with the mean image row instead of stopping")
]
UserModeOpt = Annotated[str, typer.Option("--user-mode", help="mean (of train item text rows) or profile (text of the last N train items)")]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="never download a model: use only local folders and the Hugging Face cache (like HF_HUB_OFFLINE=1)")]


def embed_config(text_model, text_template, image_encoder, image_model, image_weights, feature, dataset_features, user_mode, profile_last_n, batch_size, device, skip_unreadable_images=False, offline=False):
    from recgoat_cli.config import EmbedConfig
    from recgoat_cli.encoders.features import parse_feature_spec

    if offline:
        # Every library of this process (huggingface_hub, transformers, open_clip) then stays off the network too;
        # they read it at import, which happens later, in the stage.
        os.environ["HF_HUB_OFFLINE"] = "1"
    features = tuple((name, str(path.resolve())) for name, path in (parse_feature_spec(s) for s in feature or ()))
    return EmbedConfig(
        text_model=None if text_model.lower() == "none" else text_model,
        text_template=text_template,
        image_encoder=image_encoder,
        image_model=image_model,
        image_weights=image_weights,
        features=features,
        dataset_features=dataset_features,
        user_mode=user_mode,
        profile_last_n=profile_last_n,
        batch_size=batch_size,
        device=device,
        skip_unreadable_images=skip_unreadable_images,
        offline=offline,
    )


@handle_errors
@runs_distributed
def embed(
    dataset: DatasetOpt,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    data_root: DataRootOpt = None,
    text_model: TextModelOpt = "minilm",
    text_template: TextTemplateOpt = None,
    image_encoder: ImageEncoderOpt = "auto",
    image_model: ImageModelOpt = "ViT-B-32",
    image_weights: ImageWeightsOpt = None,
    feature: FeatureOpt = None,
    dataset_features: Annotated[bool, typer.Option("--dataset-features/--no-dataset-features", help="import the dataset's *_feat.npy files")] = True,
    user_mode: UserModeOpt = "mean",
    profile_last_n: Annotated[int, typer.Option("--profile-last-n", help="train items in a user's text profile")] = 20,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    skip_unreadable_images: SkipUnreadableImagesOpt = False,
    offline: OfflineOpt = False,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Encode item text and images with real pretrained models, import features, build user rows."""
    from recgoat_cli.stages.embed import run_embed

    output = Output(as_json, quiet)
    ctx = context(dataset, workdir, data_root, force=force, out=output)
    config = embed_config(text_model, text_template, image_encoder, image_model, image_weights, feature, dataset_features, user_mode, profile_last_n, batch_size, device, skip_unreadable_images, offline)
    artifact, cached = run_embed(ctx, config, log=output.info)
    summary = artifact.manifest.summary
    for name, reason in summary.get("skipped", {}).items():
        output.info(f"skipped the {name} modality: {reason}")
    output.info(f"{'cached' if cached else 'wrote'} embed artifact {artifact.id}: " + ", ".join(f"{n} {s[1]}-d" for n, s in summary["modalities"].items()))
    output.result({"artifact_id": artifact.id, "path": str(artifact.path), "cached": cached, **summary})
