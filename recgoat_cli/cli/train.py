"""``recgoat train``: fit MF, LightGCN, FREEDOM or RecGOAT with BPR (early stopping on the validation split), or
fuse a trained model's scores with content scores (late fusion, weights chosen on the validation split)."""

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
    runs_distributed,
)

ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="mf, lightgcn, recgoat, freedom (FREEDOM's frozen item graphs) or late-fusion (a base model's scores plus content scores) [default: lightgcn for train, recgoat for run and tune]")]
DimOpt = Annotated[Optional[int], typer.Option("--dim", help="embedding dimension [default: 64]")]
LayersOpt = Annotated[Optional[int], typer.Option("--layers", "--n-layers", help="propagation layers [default: 3; 2 for freedom]")]
LrOpt = Annotated[Optional[float], typer.Option("--lr", help="Adam learning rate [default: 0.001]")]
RegOpt = Annotated[Optional[float], typer.Option("--reg", help="L2 weight on the batch's embeddings [default: 1e-4; 0 for freedom]")]
BatchOpt = Annotated[Optional[int], typer.Option("--batch-size", help="BPR triples per step (the global batch: under torchrun it is split across the processes) [default: 2048]")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="maximum epochs")]
PatienceOpt = Annotated[int, typer.Option("--patience", help="evaluations without improvement before stopping")]
EvalEveryOpt = Annotated[int, typer.Option("--eval-every", help="validate every N epochs")]
ValMetricOpt = Annotated[str, typer.Option("--val-metric", help="validation metric for early stopping, e.g. recall@20")]
SeedOpt = Annotated[int, typer.Option("--seed")]
GraphsOpt = Annotated[Optional[str], typer.Option("--graphs", help="RecGOAT graphs, comma separated: item,user-item,user-user [default: item,user-item,user-user]")]
CmclOpt = Annotated[Optional[bool], typer.Option("--cmcl/--no-cmcl", help="RecGOAT: instance-level cross-modal contrastive loss [default: --cmcl]")]
OatOpt = Annotated[Optional[bool], typer.Option("--oat/--no-oat", help="RecGOAT: distribution-level optimal transport loss [default: --oat]")]
FusionOpt = Annotated[Optional[str], typer.Option("--fusion", help="RecGOAT view fusion: oat (adaptive softmax weights), residual (ID view plus learned coefficients of the others), concat, sum or oat-map (each modality mapped onto the ID dimensions by a transport plan, as the reference code does) [default: oat]")]
LambdaCmclOpt = Annotated[Optional[float], typer.Option("--lambda-cmcl", help="weight of the CMCL loss [default: 0.1]")]
LambdaOatOpt = Annotated[float, typer.Option("--lambda-oat", help="weight of the OAT loss")]
TemperatureOpt = Annotated[Optional[float], typer.Option("--temperature", help="InfoNCE temperature [default: 0.2]")]
OtRegOpt = Annotated[float, typer.Option("--ot-reg", help="Sinkhorn entropic regularisation (on the mean-normalised cost)")]
OtItersOpt = Annotated[int, typer.Option("--ot-iters", help="Sinkhorn iteration limit")]
OtBatchOpt = Annotated[int, typer.Option("--ot-batch", help="items per transport problem")]
GatValuesOpt = Annotated[Optional[str], typer.Option("--gat-values", help="what the attention passes along the edges: id (collaborative embeddings, attention from LM rows) or lm (projected LM rows) [default: lm]")]
CmclRowsOpt = Annotated[int, typer.Option("--cmcl-rows", help="rows per contrastive problem (each row has the others as negatives)")]
GatLayersOpt = Annotated[Optional[int], typer.Option("--gat-layers", help="graph attention layers (0: no attention) [default: 1]")]
GatHeadsOpt = Annotated[Optional[int], typer.Option("--gat-heads", help="attention heads [default: 1]")]
KernelsOpt = Annotated[str, typer.Option("--kernels", help="edge softmax kernels: auto, native or torch_scatter")]
AmpOpt = Annotated[bool, typer.Option("--amp", help="bfloat16 autocast on CUDA")]
LmDimOpt = Annotated[Optional[int], typer.Option("--lm-dim", help="principal components kept of each frozen LM representation (0: all) [default: 64]")]
PresetOpt = Annotated[Optional[str], typer.Option("--preset", help="a named configuration (reference: the authors' RecGOAT with its defects fixed; see docs/method.md); options given explicitly win")]
GatDropoutOpt = Annotated[Optional[float], typer.Option("--gat-dropout", help="attention (and, in the reference branch, feature) dropout [default: 0.1]")]
ItemBranchOpt = Annotated[Optional[str], typer.Option("--item-branch", help="RecGOAT item-item branch: attention (batch-restricted) or reference (projection + GAT stack, self-loops) [default: attention]")]
CmclFormOpt = Annotated[Optional[str], typer.Option("--cmcl-form", help="CMCL terms: views (ID-anchored view pairs) or reference (user-item + view-pair InfoNCE) [default: views]")]
CmclViewWeightOpt = Annotated[Optional[float], typer.Option("--cmcl-view-weight", help="reference CMCL: share of the view-pair terms [default: 0.5]")]
MapScaleOpt = Annotated[Optional[float], typer.Option("--map-scale", help="oat-map fusion: factor on the dimension cost [default: 100]")]
MapRegOpt = Annotated[Optional[float], typer.Option("--map-reg", help="oat-map fusion: Sinkhorn regularisation of the dimension plan [default: 0.01]")]
MapItersOpt = Annotated[Optional[int], typer.Option("--map-iters", help="oat-map fusion: Sinkhorn iteration limit [default: 1000]")]
InitStdOpt = Annotated[Optional[float], typer.Option("--init-std", help="RecGOAT ID embedding init: 0 for Xavier uniform, > 0 for a normal with this std (the reference: 0.1) [default: 0]")]
ContentScoreOpt = Annotated[Optional[bool], typer.Option("--content-score/--no-content-score", help="RecGOAT: add each modality's z-scored content ranker (late fusion's) to the score with a learned weight, trained jointly [default: off]")]
ContentControlOpt = Annotated[Optional[str], typer.Option("--content-control", help="RecGOAT ablation: none, or shuffle (the LM rows permuted across items and across users, with the kNN graphs built from them relabelled: a content-free control) [default: none]")]
MapPlanOpt = Annotated[Optional[str], typer.Option("--map-plan", help="oat-map fusion: sinkhorn (the solved plan) or none (T = 0, what the reference code's underflowing Sinkhorn returns) [default: sinkhorn]")]
# FREEDOM
FreedomDropoutOpt = Annotated[float, typer.Option("--freedom-dropout", help="FREEDOM: share of user-item edges dropped each epoch (degree-sensitive sampling)")]
FreedomKnnOpt = Annotated[int, typer.Option("--freedom-knn-k", help="FREEDOM: neighbours per item (itself included) in each modality's frozen item graph")]
FreedomImageWeightOpt = Annotated[float, typer.Option("--freedom-image-weight", help="FREEDOM: share of the image modalities in the item graph mixture")]
FreedomMmLayersOpt = Annotated[int, typer.Option("--freedom-mm-layers", help="FREEDOM: propagation steps over the frozen item graph")]
FreedomModalityWeightOpt = Annotated[float, typer.Option("--freedom-modality-weight", help="FREEDOM: weight of the modality BPR losses (MMRec's reg_weight)")]
# late fusion
BaseModelOpt = Annotated[str, typer.Option("--base-model", help="late fusion: the model whose scores are fused (mf, lightgcn or freedom)")]
LateFusionGridOpt = Annotated[str, typer.Option("--late-fusion-grid", help="late fusion: weights tried per modality on validation, comma separated")]


def parse_graphs(text: str) -> tuple[str, ...]:
    from recgoat_cli.errors import UserError

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in ("item", "user-item", "user-user")]
    if unknown:
        raise UserError(f"--graphs {text}: unknown graph {unknown[0]}; use item, user-item and/or user-user, comma separated.")
    return names


def train_config(options: dict, default_model: str = "lightgcn"):
    """The TrainConfig of a command's parsed options (``locals()``): same names, except --layers and --graphs.

    Options left unset (None) take the ``--preset``'s value when it has one, else TrainConfig's default; the
    model defaults to ``default_model`` (the command's).
    """
    from recgoat_cli.config import TrainConfig
    from recgoat_cli.presets import with_preset

    skip = ("graphs", "late_fusion_grid")
    given = {k: v for k, v in options.items() if k in TrainConfig.model_fields and k not in skip and v is not None}
    if options.get("layers") is not None:
        given["n_layers"] = options["layers"]
    if options.get("graphs") is not None:
        given["graphs"] = parse_graphs(options["graphs"])
    if options.get("late_fusion_grid") is not None:
        given["late_fusion_grid"] = parse_weights(options["late_fusion_grid"])
    values = with_preset(options.get("preset"), "train", given)
    return TrainConfig(**({"model": default_model} | values))


def parse_weights(text: str) -> tuple[float, ...]:
    from recgoat_cli.errors import UserError

    try:
        weights = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"--late-fusion-grid {text}: write non-negative numbers, comma separated (e.g. 0,0.5,1,2).") from None
    if not weights or any(w < 0 for w in weights):
        raise UserError(f"--late-fusion-grid {text}: write non-negative numbers, comma separated (e.g. 0,0.5,1,2).")
    return weights


def graph_for_preset(ctx, preset_name: str | None, graph, log):
    """``graph``, or the same build-graph configuration with the preset's graph values on the same embed artifact.

    Built (or found cached) when ``graph`` differs from what the preset asks for, saying so in one line.
    """
    from recgoat_cli.config import GraphConfig
    from recgoat_cli.presets import preset
    from recgoat_cli.stages.build_graph import run_build_graph

    wanted = preset(preset_name, "graph")
    current = {k: v for k, v in graph.manifest.config.items() if k in GraphConfig.model_fields and k != "non_semantic"}
    if all(current.get(k) == v for k, v in wanted.items()):
        return graph
    embed_id = graph.manifest.upstream_id("embed")
    embed = ctx.store.get("embed", embed_id) if embed_id is not None else None
    config = GraphConfig(**(current | wanted))
    built, cached = run_build_graph(ctx, config, embed)
    changes = ", ".join(f"{k}={v}" for k, v in wanted.items() if current.get(k) != v)
    log(f"--preset {preset_name} uses build-graph {built.id} ({changes}{', cached' if cached else ', built now'}) instead of {graph.id}")
    return built


def summary_payload(artifact, cached: bool) -> dict:
    summary = artifact.manifest.summary
    return {
        "artifact_id": artifact.id,
        "path": str(artifact.path),
        "cached": cached,
        "model": summary.get("model"),
        "best_epoch": summary.get("best_epoch"),
        "best_valid": summary.get("best_valid"),
        "epochs_run": summary.get("epochs_run"),
        "mean_epoch_seconds": summary.get("mean_epoch_seconds"),
    }


@handle_errors
@runs_distributed
def train(
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
    seeds: Annotated[Optional[list[int]], typer.Option("--seeds", help="train one model per seed, e.g. --seeds 1 2 3 (evaluate then reports mean +- std)")] = None,
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
    device: DeviceOpt = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="continue the interrupted run of this configuration")] = False,
    from_id: Annotated[Optional[str], typer.Option("--from", help="build-graph artifact id (default: latest)")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train one model; the best epoch on validation is kept (the test split is never read)."""
    from recgoat_cli.errors import UserError
    from recgoat_cli.stages.train import run_train

    if resume and force:
        raise UserError("--resume and --force contradict each other (--resume continues the interrupted run, --force starts it again); pass one of them.")
    output = Output(as_json, quiet)
    ctx = context(dataset, workdir, data_root, force=force, out=output)
    config = train_config(locals())
    from recgoat_cli.stages.upstream import build_graph_for_train

    graph = build_graph_for_train(ctx, from_id, log=output.info)  # make-style: builds what is missing, with defaults
    if preset is not None and from_id is None:
        graph = graph_for_preset(ctx, preset, graph, output.info)
    if seeds:
        from recgoat_cli.stages.train import write_seed_group

        runs = []
        for value in dict.fromkeys(seeds):
            artifact, cached = run_train(ctx, config.model_copy(update={"seed": value}), graph, resume=resume, log=output.info)
            runs.append((artifact, cached))
            output.info(f"seed {value}: {'cached' if cached else 'trained'} {config.model} artifact {artifact.id}")
        write_seed_group(ctx, [a for a, _ in runs])
        output.result({"runs": [summary_payload(a, c) | {"seed": a.manifest.seed} for a, c in runs]})
        return
    artifact, cached = run_train(ctx, config, graph, resume=resume, log=output.info)
    payload = summary_payload(artifact, cached)
    output.info(f"{'cached' if cached else 'trained'} {config.model} artifact {artifact.id} (best epoch {payload['best_epoch']})")
    output.result(payload)
