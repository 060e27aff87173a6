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

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="mf, lightgcn, recgoat, freedom (FREEDOM's frozen item graphs) or late-fusion (a base model's scores plus content scores)")]
DimOpt = Annotated[int, typer.Option("--dim", help="embedding dimension")]
LayersOpt = Annotated[Optional[int], typer.Option("--layers", "--n-layers", help="propagation layers [default: 3; 2 for freedom]")]
LrOpt = Annotated[float, typer.Option("--lr", help="Adam learning rate")]
RegOpt = Annotated[Optional[float], typer.Option("--reg", help="L2 weight on the batch's embeddings [default: 1e-4; 0 for freedom]")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="BPR triples per step (the global batch: under torchrun it is split across the processes)")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="maximum epochs")]
PatienceOpt = Annotated[int, typer.Option("--patience", help="evaluations without improvement before stopping")]
EvalEveryOpt = Annotated[int, typer.Option("--eval-every", help="validate every N epochs")]
ValMetricOpt = Annotated[str, typer.Option("--val-metric", help="validation metric for early stopping, e.g. recall@20")]
SeedOpt = Annotated[int, typer.Option("--seed")]
GraphsOpt = Annotated[str, typer.Option("--graphs", help="RecGOAT graphs, comma separated: item,user-item,user-user")]
CmclOpt = Annotated[bool, typer.Option("--cmcl/--no-cmcl", help="RecGOAT: instance-level cross-modal contrastive loss")]
OatOpt = Annotated[bool, typer.Option("--oat/--no-oat", help="RecGOAT: distribution-level optimal transport loss")]
FusionOpt = Annotated[str, typer.Option("--fusion", help="RecGOAT view fusion: oat (adaptive softmax weights), residual (ID view plus learned coefficients of the others), concat or sum")]
LambdaCmclOpt = Annotated[float, typer.Option("--lambda-cmcl", help="weight of the CMCL loss")]
LambdaOatOpt = Annotated[float, typer.Option("--lambda-oat", help="weight of the OAT loss")]
TemperatureOpt = Annotated[float, typer.Option("--temperature", help="InfoNCE temperature")]
OtRegOpt = Annotated[float, typer.Option("--ot-reg", help="Sinkhorn entropic regularisation (on the mean-normalised cost)")]
OtItersOpt = Annotated[int, typer.Option("--ot-iters", help="Sinkhorn iteration limit")]
OtBatchOpt = Annotated[int, typer.Option("--ot-batch", help="items per transport problem")]
GatValuesOpt = Annotated[str, typer.Option("--gat-values", help="what the attention passes along the edges: id (collaborative embeddings, attention from LM rows) or lm (projected LM rows)")]
CmclRowsOpt = Annotated[int, typer.Option("--cmcl-rows", help="rows per contrastive problem (each row has the others as negatives)")]
GatLayersOpt = Annotated[int, typer.Option("--gat-layers", help="graph attention layers (0: no attention)")]
GatHeadsOpt = Annotated[int, typer.Option("--gat-heads", help="attention heads")]
KernelsOpt = Annotated[str, typer.Option("--kernels", help="edge softmax kernels: auto, native or torch_scatter")]
AmpOpt = Annotated[bool, typer.Option("--amp", help="bfloat16 autocast on CUDA")]
LmDimOpt = Annotated[int, typer.Option("--lm-dim", help="principal components kept of each frozen LM representation (0: all)")]
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


def train_config(options: dict):
    """The TrainConfig of a command's parsed options (``locals()``): same names, except --layers and --graphs."""
    from recgoat_cli.config import TrainConfig

    values = {k: v for k, v in options.items() if k in TrainConfig.model_fields and k not in ("graphs", "late_fusion_grid") and v is not None}
    if options.get("layers") is not None:
        values["n_layers"] = options["layers"]
    if options.get("late_fusion_grid") is not None:
        values["late_fusion_grid"] = parse_weights(options["late_fusion_grid"])
    return TrainConfig(**values, graphs=parse_graphs(options["graphs"]))


def parse_weights(text: str) -> tuple[float, ...]:
    from recgoat_cli.errors import UserError

    try:
        weights = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"--late-fusion-grid {text}: write non-negative numbers, comma separated (e.g. 0,0.5,1,2).") from None
    if not weights or any(w < 0 for w in weights):
        raise UserError(f"--late-fusion-grid {text}: write non-negative numbers, comma separated (e.g. 0,0.5,1,2).")
    return weights


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
    model: ModelOpt = "lightgcn",
    dim: DimOpt = 64,
    layers: LayersOpt = None,
    lr: LrOpt = 1e-3,
    reg: RegOpt = None,
    batch_size: BatchOpt = 2048,
    epochs: EpochsOpt = 300,
    patience: PatienceOpt = 20,
    eval_every: EvalEveryOpt = 1,
    val_metric: ValMetricOpt = "recall@20",
    seed: SeedOpt = 2024,
    seeds: Annotated[Optional[list[int]], typer.Option("--seeds", help="train one model per seed, e.g. --seeds 1 2 3 (evaluate then reports mean +- std)")] = None,
    graphs: GraphsOpt = "item,user-item,user-user",
    cmcl: CmclOpt = True,
    oat: OatOpt = True,
    fusion: FusionOpt = "oat",
    lambda_cmcl: LambdaCmclOpt = 0.1,
    lambda_oat: LambdaOatOpt = 0.1,
    temperature: TemperatureOpt = 0.2,
    cmcl_rows: CmclRowsOpt = 256,
    ot_reg: OtRegOpt = 0.1,
    ot_iters: OtItersOpt = 100,
    ot_batch: OtBatchOpt = 128,
    gat_layers: GatLayersOpt = 1,
    gat_heads: GatHeadsOpt = 1,
    gat_values: GatValuesOpt = "lm",
    kernels: KernelsOpt = "auto",
    amp: AmpOpt = False,
    lm_dim: LmDimOpt = 64,
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
    graph = ctx.store.get("build-graph", from_id)
    if seeds:
        from recgoat_cli.stages.train import write_seed_group

        runs = []
        for value in dict.fromkeys(seeds):
            artifact, cached = run_train(ctx, config.model_copy(update={"seed": value}), graph, resume=resume, log=output.info)
            runs.append((artifact, cached))
            output.info(f"seed {value}: {'cached' if cached else 'trained'} {model} artifact {artifact.id}")
        write_seed_group(ctx, [a for a, _ in runs])
        output.result({"runs": [summary_payload(a, c) | {"seed": a.manifest.seed} for a, c in runs]})
        return
    artifact, cached = run_train(ctx, config, graph, resume=resume, log=output.info)
    payload = summary_payload(artifact, cached)
    output.info(f"{'cached' if cached else 'trained'} {model} artifact {artifact.id} (best epoch {payload['best_epoch']})")
    output.result(payload)
