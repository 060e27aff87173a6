"""``recgoat train``: fit MF, LightGCN or RecGOAT with BPR; early stopping on the validation split."""

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

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="mf, lightgcn or recgoat")]
DimOpt = Annotated[int, typer.Option("--dim", help="embedding dimension")]
LayersOpt = Annotated[int, typer.Option("--layers", "--n-layers", help="propagation layers")]
LrOpt = Annotated[float, typer.Option("--lr", help="Adam learning rate")]
RegOpt = Annotated[float, typer.Option("--reg", help="L2 weight on the batch's embeddings")]
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

    values = {k: v for k, v in options.items() if k in TrainConfig.model_fields and k != "graphs" and v is not None}
    return TrainConfig(**values, n_layers=options["layers"], graphs=parse_graphs(options["graphs"]))


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
    layers: LayersOpt = 3,
    lr: LrOpt = 1e-3,
    reg: RegOpt = 1e-4,
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
