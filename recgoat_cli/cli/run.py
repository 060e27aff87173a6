"""``recgoat run``: every stage in order with one config (embed when the dataset has side information)."""

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
from recgoat_cli.cli.embed import (
    FeatureOpt,
    ImageEncoderOpt,
    ImageModelOpt,
    ImageWeightsOpt,
    OfflineOpt,
    SkipUnreadableImagesOpt,
    TextModelOpt,
    TextTemplateOpt,
    UserModeOpt,
    embed_config,
)
from recgoat_cli.cli.evaluate import KOpt, render_metrics
from recgoat_cli.cli.train import (
    AmpOpt,
    CmclFormOpt,
    CmclViewWeightOpt,
    GatDropoutOpt,
    ItemBranchOpt,
    MapItersOpt,
    InitStdOpt,
    ContentScoreOpt,
    ContentControlOpt,
    MapPlanOpt,
    MapRegOpt,
    MapScaleOpt,
    PresetOpt,
    BaseModelOpt,
    FreedomDropoutOpt,
    FreedomImageWeightOpt,
    FreedomKnnOpt,
    FreedomMmLayersOpt,
    FreedomModalityWeightOpt,
    LateFusionGridOpt,
    LmDimOpt,
    BatchOpt,
    CmclOpt,
    DimOpt,
    EpochsOpt,
    EvalEveryOpt,
    FusionOpt,
    GatHeadsOpt,
    GatLayersOpt,
    GraphsOpt,
    KernelsOpt,
    LambdaCmclOpt,
    LambdaOatOpt,
    LayersOpt,
    LrOpt,
    ModelOpt,
    OatOpt,
    CmclRowsOpt,
    GatValuesOpt,
    OtBatchOpt,
    OtItersOpt,
    OtRegOpt,
    PatienceOpt,
    RegOpt,
    SeedOpt,
    TemperatureOpt,
    ValMetricOpt,
    summary_payload,
    train_config,
)


@handle_errors
def run(
    dataset: DatasetOpt,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    data_root: DataRootOpt = None,
    model: ModelOpt = None,
    preset: PresetOpt = None,
    dim: DimOpt = None,
    layers: LayersOpt = None,
    lr: LrOpt = None,
    reg: RegOpt = None,
    batch_size: BatchOpt = None,
    epochs: EpochsOpt = 300,
    patience: PatienceOpt = 20,
    eval_every: EvalEveryOpt = 1,
    val_metric: ValMetricOpt = "recall@20",
    seed: SeedOpt = 2024,
    graphs: GraphsOpt = None,
    cmcl: CmclOpt = None,
    oat: OatOpt = None,
    fusion: FusionOpt = None,
    lambda_cmcl: LambdaCmclOpt = None,
    lambda_oat: LambdaOatOpt = 0.1,
    temperature: TemperatureOpt = None,
    cmcl_rows: CmclRowsOpt = 256,
    ot_reg: OtRegOpt = 0.1,
    ot_iters: OtItersOpt = 100,
    ot_batch: OtBatchOpt = 128,
    gat_layers: GatLayersOpt = None,
    gat_heads: GatHeadsOpt = None,
    gat_dropout: GatDropoutOpt = None,
    gat_values: GatValuesOpt = None,
    item_branch: ItemBranchOpt = None,
    cmcl_form: CmclFormOpt = None,
    cmcl_view_weight: CmclViewWeightOpt = None,
    map_scale: MapScaleOpt = None,
    map_reg: MapRegOpt = None,
    map_iters: MapItersOpt = None,
    map_plan: MapPlanOpt = None,
    init_std: InitStdOpt = None,
    content_score: ContentScoreOpt = None,
    content_control: ContentControlOpt = None,
    kernels: KernelsOpt = "auto",
    amp: AmpOpt = False,
    lm_dim: LmDimOpt = None,
    freedom_dropout: FreedomDropoutOpt = 0.8,
    freedom_knn_k: FreedomKnnOpt = 10,
    freedom_image_weight: FreedomImageWeightOpt = 0.1,
    freedom_mm_layers: FreedomMmLayersOpt = 1,
    freedom_modality_weight: FreedomModalityWeightOpt = 1e-4,
    base_model: BaseModelOpt = "lightgcn",
    late_fusion_grid: LateFusionGridOpt = "0,0.1,0.2,0.5,1,2,5",
    text_model: TextModelOpt = "minilm",
    text_template: TextTemplateOpt = None,
    image_encoder: ImageEncoderOpt = "auto",
    image_model: ImageModelOpt = "ViT-B-32",
    image_weights: ImageWeightsOpt = None,
    feature: FeatureOpt = None,
    user_mode: UserModeOpt = "mean",
    skip_unreadable_images: SkipUnreadableImagesOpt = False,
    offline: OfflineOpt = False,
    knn_k: Annotated[Optional[int], typer.Option("--knn-k", help="neighbours per item in each item-item graph [default: 10; --preset reference: 20]")] = None,
    user_knn_k: Annotated[int, typer.Option("--user-knn-k", help="neighbours per user in the user-user graph")] = 10,
    k: KOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", help="recommendations per user in the export")] = 20,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """embed -> build-graph -> train -> evaluate (test) -> export, each stage cached by its config and inputs.

    The embed stage runs when the dataset has side information (items.tsv, images, *_feat.npy) or --feature
    is given; an ID-only dataset goes straight to build-graph (and needs --model mf or lightgcn).
    """
    from recgoat_cli.config import EvalConfig, ExportConfig, GraphConfig
    from recgoat_cli.limits import check_pipeline
    from recgoat_cli.presets import preset as preset_values
    from recgoat_cli.stages.build_graph import run_build_graph
    from recgoat_cli.stages.embed import run_embed
    from recgoat_cli.stages.evaluate import run_evaluate
    from recgoat_cli.stages.export import run_export
    from recgoat_cli.stages.train import run_train

    output = Output(as_json, quiet)
    ctx = context(dataset, workdir, data_root, force=force, out=output)
    embedded = None
    data = ctx.dataset
    embeds = data.item_table is not None or data.image_dir is not None or bool(data.feature_files or feature)
    config = train_config(locals(), default_model="recgoat")
    graph_values = preset_values(preset, "graph") | {"user_knn_k": user_knn_k} | ({"knn_k": knn_k} if knn_k is not None else {})
    gconfig = GraphConfig(**graph_values)
    check_pipeline(data, config, gconfig, ks=k or (10, 20), top_k=top_k, has_embed=embeds)  # before any stage writes
    if embeds:
        econfig = embed_config(text_model, text_template, image_encoder, image_model, image_weights, feature, True, user_mode, 20, 64, device, skip_unreadable_images, offline)
        embedded, cached = run_embed(ctx, econfig, log=output.info)
        output.info(f"embed {embedded.id}{' (cached)' if cached else ''}: " + ", ".join(embedded.manifest.summary["modalities"]))
    graph, cached = run_build_graph(ctx, gconfig, embedded)
    output.info(f"build-graph {graph.id}{' (cached)' if cached else ''}")
    trained, cached = run_train(ctx, config, graph, log=output.info)
    output.info(f"train {trained.id}{' (cached)' if cached else ''}: best epoch {trained.manifest.summary['best_epoch']}")
    evaluated, _ = run_evaluate(ctx, EvalConfig(ks=tuple(k or (10, 20)), split="test", device=device), trained)
    exported, _ = run_export(ctx, ExportConfig(top_k=top_k, device=device), trained)
    output.info(f"export {exported.id} at {exported.path}")
    payload = {
        "dataset": ctx.key,
        "embed": embedded.id if embedded is not None else None,
        "build-graph": graph.id,
        "train": summary_payload(trained, cached),
        "evaluate": {"artifact_id": evaluated.id, **evaluated.manifest.summary},
        "export": {"artifact_id": exported.id, "path": str(exported.path)},
    }
    output.result(payload, render=lambda p: render_metrics(p["evaluate"]))
