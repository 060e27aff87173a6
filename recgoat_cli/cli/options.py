"""The options of the ``recgoat`` commands, each declared once: its flag, default, help and check.

An option that more than one command takes is declared here, as an ``Annotated`` Typer option or as a field of
an option group; an option that one command alone takes is declared in that command's signature. A group is a
dataclass whose fields are options with their defaults. A command takes a group as one parameter and is decorated
with ``@option_groups``: Typer then sees the group's fields as the command's own options, and the command receives
the group built from what was parsed. ``recgoat run`` takes the groups of the stages it runs. A stage's group
builds that stage's config field by field (``TrainOptions.config()``), and the values it shares with the config
come from ``recgoat_cli.defaults``.

Only Typer is imported here (``recgoat_cli.defaults`` and ``recgoat_cli.presets`` import nothing heavy), so
``recgoat --help`` stays fast; the configs are imported when a command runs.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from recgoat_cli.defaults import DEVICE, EmbedDefaults, EvalDefaults, GraphDefaults, TrainDefaults
from recgoat_cli.presets import PRESETS

DEFAULT_WORKDIR = Path("runs")
#: the values ``--preset reference`` sets, quoted in the help of the options it changes
_REFERENCE = PRESETS["reference"]


def option_groups(command: Callable) -> Callable:
    """Let ``command`` take option groups: each parameter annotated with a dataclass is spread into the group's
    fields, in the signature Typer reads, and is built back from them when the command is called."""
    hints = typing.get_type_hints(command, include_extras=True)
    parameters: list[inspect.Parameter] = []
    groups: dict[str, tuple[type, list[str]]] = {}
    for parameter in inspect.signature(command).parameters.values():
        annotation = hints.get(parameter.name, parameter.annotation)
        if not dataclasses.is_dataclass(annotation):
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=annotation))
            continue
        field_hints = typing.get_type_hints(annotation, include_extras=True)
        fields = dataclasses.fields(annotation)
        groups[parameter.name] = (annotation, [field.name for field in fields])
        for field in fields:
            default = inspect.Parameter.empty if field.default is dataclasses.MISSING else field.default
            parameters.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=field_hints[field.name]))
    names = [parameter.name for parameter in parameters] + list(groups)
    if len(names) != len(set(names)):
        raise TypeError(f"{command.__name__}: two options share a name: {sorted({n for n in names if names.count(n) > 1})}")

    @functools.wraps(command)
    def with_groups(**parsed):
        for name, (group, fields) in groups.items():
            parsed[name] = group(**{field: parsed.pop(field) for field in fields})
        return command(**parsed)

    with_groups.__signature__ = inspect.Signature(parameters)
    with_groups.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return with_groups


def _shown(value) -> str:
    """A default as the help text writes it: 64, 0.001, 1e-4, 100, item,user-item."""
    if isinstance(value, tuple):
        return ",".join(_shown(part) for part in value)
    if isinstance(value, float):
        if 0 < abs(value) < 1e-3:
            mantissa, exponent = f"{value:e}".split("e")
            return f"{float(mantissa):g}e{int(exponent)}"
        return f"{value:g}"
    return str(value)


# ---- shared by most commands ----------------------------------------------------------------------------------

DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="dataset name under --data-root, 'sample', or a folder path")]
WorkdirOpt = Annotated[
    Path, typer.Option("--workdir", "-w", envvar="RECGOAT_HOME", help="where artifacts are written (env RECGOAT_HOME)")
]
DataRootOpt = Annotated[
    Optional[Path], typer.Option("--data-root", envvar="RECGOAT_DATA", help="folder holding datasets (env RECGOAT_DATA; default ./data)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object on stdout instead of tables")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="print nothing but errors")]
ForceOpt = Annotated[bool, typer.Option("--force", help="recompute even when an identical artifact exists")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N")]
SeedOpt = Annotated[int, typer.Option("--seed")]


@dataclass(frozen=True)
class ArtifactOptions:
    """The dataset whose artifacts a command reads, and the folder they are in."""

    dataset: DatasetOpt
    workdir: WorkdirOpt = DEFAULT_WORKDIR

    def key(self) -> str:
        """The dataset's artifact key; the name as given when the dataset folder moved away (its artifacts stay)."""
        from recgoat_cli.data.dataset import dataset_key, resolve_dataset
        from recgoat_cli.errors import UserError

        try:
            return dataset_key(resolve_dataset(self.dataset))
        except UserError:
            return self.dataset


@dataclass(frozen=True)
class DatasetOptions(ArtifactOptions):
    """The dataset a stage reads, where datasets live, and where its artifacts are written."""

    data_root: DataRootOpt = None

    def context(self, output, force: bool = False):
        """The validated dataset and its artifact store (``recgoat_cli.stages.common.StageContext``)."""
        from recgoat_cli.stages.common import open_context

        return open_context(self.dataset, self.workdir, self.data_root, force=force, progress=output.progress)


@dataclass(frozen=True)
class OutputOptions:
    """How a command reports: tables, one JSON object, or nothing but errors."""

    as_json: JsonOpt = False
    quiet: QuietOpt = False

    def output(self):
        from recgoat_cli.cli.common import Output

        return Output(self.as_json, self.quiet)


# ---- embed (embed, run) -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedOptions:
    """The embed options that ``recgoat run`` passes on; ``recgoat embed`` adds ``EmbedCommandOptions``."""

    text_model: Annotated[str, typer.Option("--text-model", help="minilm (bundled default), bge-base, bge-small, e5-base, a hub name (downloaded on first use), a folder, or none")] = EmbedDefaults.text_model
    text_template: Annotated[Optional[str], typer.Option("--text-template", help="item text template over items.tsv columns, e.g. '{title}. {description}'")] = None
    image_encoder: Annotated[str, typer.Option("--image-encoder", help="auto (clip when --image-weights is given, else descriptor), clip, descriptor or none")] = EmbedDefaults.image_encoder
    image_model: Annotated[str, typer.Option("--image-model", "--image-arch", help="open_clip architecture, e.g. ViT-B-32, or hf-hub:ORG/NAME")] = EmbedDefaults.image_model
    image_weights: Annotated[Optional[str], typer.Option("--image-weights", help="open_clip pretrained tag (downloaded on first use), or a weights file")] = None
    feature: Annotated[Optional[list[str]], typer.Option("--feature", help="NAME=path.npy precomputed item features (repeatable)")] = None
    user_mode: Annotated[str, typer.Option("--user-mode", help="mean (of train item text rows) or profile (text of the last N train items)")] = EmbedDefaults.user_mode
    skip_unreadable_images: Annotated[bool, typer.Option("--skip-unreadable-images", help="fill image files that do not decode with the mean image row instead of stopping")] = False
    offline: Annotated[bool, typer.Option("--offline", help="never download a model: use only local folders and the Hugging Face cache (like HF_HUB_OFFLINE=1)")] = False

    def config(self, device: str = DEVICE, **more):
        """The ``EmbedConfig``; ``more`` are the fields only ``recgoat embed`` sets (config defaults otherwise)."""
        from recgoat_cli.config import EmbedConfig
        from recgoat_cli.encoders.features import parse_feature_spec

        if self.offline:
            # Every library of this process (huggingface_hub, transformers, open_clip) then stays off the network too;
            # they read it at import, which happens later, in the stage.
            os.environ["HF_HUB_OFFLINE"] = "1"
        features = tuple((name, str(path.resolve())) for name, path in (parse_feature_spec(s) for s in self.feature or ()))
        return EmbedConfig(
            text_model=None if self.text_model.lower() == "none" else self.text_model,
            text_template=self.text_template,
            image_encoder=self.image_encoder,
            image_model=self.image_model,
            image_weights=self.image_weights,
            features=features,
            user_mode=self.user_mode,
            device=device,
            skip_unreadable_images=self.skip_unreadable_images,
            offline=self.offline,
            **more,
        )


@dataclass(frozen=True)
class EmbedCommandOptions(EmbedOptions):
    """The embed options of ``recgoat embed`` alone (``recgoat run`` keeps their defaults)."""

    dataset_features: Annotated[bool, typer.Option("--dataset-features/--no-dataset-features", help="import the dataset's *_feat.npy files")] = EmbedDefaults.dataset_features
    profile_last_n: Annotated[int, typer.Option("--profile-last-n", help="train items in a user's text profile")] = EmbedDefaults.profile_last_n
    batch_size: Annotated[int, typer.Option("--batch-size")] = EmbedDefaults.batch_size

    def config(self, device: str = DEVICE):
        return super().config(device, dataset_features=self.dataset_features, profile_last_n=self.profile_last_n, batch_size=self.batch_size)


# ---- build-graph (build-graph, run) -----------------------------------------------------------------------------

_KNN_K_HELP = "neighbours per item in each item-item graph"
UserKnnKOpt = Annotated[int, typer.Option("--user-knn-k", help="neighbours per user in the user-user graph")]
MEMORY_UNITS = {"": 1, "m": 1, "mb": 1, "mib": 1, "g": 1024, "gb": 1024, "gib": 1024}


def parse_memory_budget(text: str) -> int:
    """``--memory-budget`` in MiB: a plain number is MiB, or a size like ``512MB`` or ``2GB`` (binary units)."""
    import re

    from recgoat_cli.errors import UserError

    least = GraphDefaults.min_memory_budget_mb
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in MEMORY_UNITS:
        raise UserError(f"--memory-budget {text!r} is not a size; write MiB as a number or a size like 512MB or 2GB.")
    mib = int(float(match.group(1)) * MEMORY_UNITS[unit])
    if mib < least:
        raise UserError(f"--memory-budget {text} is below the {least} MiB the kNN tiles need; pass {least}MB or more.")
    return mib


@dataclass(frozen=True)
class GraphOptions:
    """The options of ``recgoat build-graph``."""

    knn_k: Annotated[int, typer.Option("--knn-k", help=_KNN_K_HELP)] = GraphDefaults.knn_k
    user_knn_k: UserKnnKOpt = GraphDefaults.user_knn_k
    user_graph: Annotated[str, typer.Option("--user-graph", help="embedding, co-interaction, both or none")] = GraphDefaults.user_graph
    normalize: Annotated[str, typer.Option("--normalize", help="none, sym or rw (item-item and user-user graphs)")] = GraphDefaults.normalize
    memory_budget: Annotated[str, typer.Option("--memory-budget", help="memory for the blockwise kNN similarity tiles: MiB, or a size like 512MB or 2GB")] = str(GraphDefaults.memory_budget_mb)

    def config(self):
        from recgoat_cli.config import GraphConfig

        return GraphConfig(
            knn_k=self.knn_k,
            user_knn_k=self.user_knn_k,
            user_graph=self.user_graph,
            normalize=self.normalize,
            memory_budget_mb=parse_memory_budget(self.memory_budget),
        )


@dataclass(frozen=True)
class PresetGraphOptions:
    """The build-graph options of ``recgoat run``, where ``--preset`` may choose ``--knn-k``."""

    knn_k: Annotated[Optional[int], typer.Option("--knn-k", help=f"{_KNN_K_HELP} [default: {GraphDefaults.knn_k}; --preset reference: {_REFERENCE['graph']['knn_k']}]")] = None
    user_knn_k: UserKnnKOpt = GraphDefaults.user_knn_k

    def config(self, preset: str | None):
        """The ``GraphConfig``: ``--knn-k`` when given, else the preset's, else the default."""
        from recgoat_cli.config import GraphConfig
        from recgoat_cli.presets import preset as preset_values

        given = {"user_knn_k": self.user_knn_k} | ({"knn_k": self.knn_k} if self.knn_k is not None else {})
        return GraphConfig(**(preset_values(preset, "graph") | given))


# ---- train (train, run, tune) -----------------------------------------------------------------------------------

_T = TrainDefaults
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help=f"mf, lightgcn, recgoat, freedom (FREEDOM's frozen item graphs) or late-fusion (a base model's scores plus content scores) [default: {_T.pipeline_model}]")]
PresetOpt = Annotated[Optional[str], typer.Option("--preset", help="a named configuration (reference: the authors' RecGOAT with its defects fixed; see docs/method.md); options given explicitly win")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="maximum epochs")]
PatienceOpt = Annotated[int, typer.Option("--patience", help="evaluations without improvement before stopping")]
ValMetricOpt = Annotated[str, typer.Option("--val-metric", help="validation metric for early stopping, e.g. recall@20")]


def parse_graphs(text: str) -> tuple[str, ...]:
    from recgoat_cli.errors import UserError

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in ("item", "user-item", "user-user")]
    if unknown:
        raise UserError(f"--graphs {text}: unknown graph {unknown[0]}; use item, user-item and/or user-user, comma separated.")
    return names


def parse_weights(text: str) -> tuple[float, ...]:
    from recgoat_cli.errors import UserError

    try:
        weights = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"--late-fusion-grid {text}: write non-negative numbers, comma separated (e.g. 0,0.5,1,2).") from None
    if not weights or any(w < 0 for w in weights):
        raise UserError(f"--late-fusion-grid {text}: write non-negative numbers, comma separated (e.g. 0,0.5,1,2).")
    return weights


@dataclass(frozen=True)
class TrainOptions:
    """The options of one training run (``recgoat train`` and ``recgoat run``).

    Every field but ``preset`` is the ``TrainConfig`` field of the same name. A field left at None takes the
    preset's value when it has one, else ``TrainConfig``'s default (which its help text shows).
    """

    model: ModelOpt = None
    preset: PresetOpt = None
    dim: Annotated[Optional[int], typer.Option("--dim", help=f"embedding dimension [default: {_T.dim}]")] = None
    n_layers: Annotated[Optional[int], typer.Option("--layers", "--n-layers", help=f"propagation layers [default: {_T.n_layers}; {_T.freedom_n_layers} for freedom]")] = None
    lr: Annotated[Optional[float], typer.Option("--lr", help=f"Adam learning rate [default: {_shown(_T.lr)}]")] = None
    reg: Annotated[Optional[float], typer.Option("--reg", help=f"L2 weight on the batch's embeddings [default: {_shown(_T.reg)}; {_shown(_T.freedom_reg)} for freedom]")] = None
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help=f"BPR triples per step (the global batch: under torchrun it is split across the processes) [default: {_T.batch_size}]")] = None
    epochs: EpochsOpt = _T.epochs
    patience: PatienceOpt = _T.patience
    eval_every: Annotated[int, typer.Option("--eval-every", help="validate every N epochs")] = _T.eval_every
    val_metric: ValMetricOpt = _T.val_metric
    seed: SeedOpt = _T.seed
    graphs: Annotated[Optional[str], typer.Option("--graphs", help=f"RecGOAT graphs, comma separated: item,user-item,user-user [default: {_shown(_T.graphs)}]")] = None
    cmcl: Annotated[Optional[bool], typer.Option("--cmcl/--no-cmcl", help=f"RecGOAT: instance-level cross-modal contrastive loss [default: --{'' if _T.cmcl else 'no-'}cmcl]")] = None
    oat: Annotated[Optional[bool], typer.Option("--oat/--no-oat", help=f"RecGOAT: distribution-level optimal transport loss [default: --{'' if _T.oat else 'no-'}oat]")] = None
    fusion: Annotated[Optional[str], typer.Option("--fusion", help=f"RecGOAT view fusion: oat (adaptive softmax weights), residual (ID view plus learned coefficients of the others), concat, sum or oat-map (each modality mapped onto the ID dimensions by a transport plan, as the reference code does) [default: {_T.fusion}]")] = None
    lambda_cmcl: Annotated[Optional[float], typer.Option("--lambda-cmcl", help=f"weight of the CMCL loss [default: {_shown(_T.lambda_cmcl)}]")] = None
    lambda_oat: Annotated[float, typer.Option("--lambda-oat", help="weight of the OAT loss")] = _T.lambda_oat
    temperature: Annotated[Optional[float], typer.Option("--temperature", help=f"InfoNCE temperature [default: {_shown(_T.temperature)}]")] = None
    cmcl_rows: Annotated[int, typer.Option("--cmcl-rows", help="rows per contrastive problem (each row has the others as negatives)")] = _T.cmcl_rows
    ot_reg: Annotated[float, typer.Option("--ot-reg", help="Sinkhorn entropic regularisation (on the mean-normalised cost)")] = _T.ot_reg
    ot_iters: Annotated[int, typer.Option("--ot-iters", help="Sinkhorn iteration limit")] = _T.ot_iters
    ot_batch: Annotated[int, typer.Option("--ot-batch", help="items per transport problem")] = _T.ot_batch
    gat_layers: Annotated[Optional[int], typer.Option("--gat-layers", help=f"graph attention layers (0: no attention) [default: {_T.gat_layers}]")] = None
    gat_heads: Annotated[Optional[int], typer.Option("--gat-heads", help=f"attention heads [default: {_T.gat_heads}]")] = None
    gat_dropout: Annotated[Optional[float], typer.Option("--gat-dropout", help=f"attention (and, in the reference branch, feature) dropout [default: {_shown(_T.gat_dropout)}]")] = None
    gat_values: Annotated[Optional[str], typer.Option("--gat-values", help=f"what the attention passes along the edges: id (collaborative embeddings, attention from LM rows) or lm (projected LM rows) [default: {_T.gat_values}]")] = None
    item_branch: Annotated[Optional[str], typer.Option("--item-branch", help=f"RecGOAT item-item branch: attention (batch-restricted) or reference (projection + GAT stack, self-loops) [default: {_T.item_branch}]")] = None
    cmcl_form: Annotated[Optional[str], typer.Option("--cmcl-form", help=f"CMCL terms: views (ID-anchored view pairs) or reference (user-item + view-pair InfoNCE) [default: {_T.cmcl_form}]")] = None
    cmcl_view_weight: Annotated[Optional[float], typer.Option("--cmcl-view-weight", help=f"reference CMCL: share of the view-pair terms [default: {_shown(_T.cmcl_view_weight)}]")] = None
    map_scale: Annotated[Optional[float], typer.Option("--map-scale", help=f"oat-map fusion: factor on the dimension cost [default: {_shown(_T.map_scale)}]")] = None
    map_reg: Annotated[Optional[float], typer.Option("--map-reg", help=f"oat-map fusion: Sinkhorn regularisation of the dimension plan [default: {_shown(_T.map_reg)}]")] = None
    map_iters: Annotated[Optional[int], typer.Option("--map-iters", help=f"oat-map fusion: Sinkhorn iteration limit [default: {_T.map_iters}]")] = None
    map_plan: Annotated[Optional[str], typer.Option("--map-plan", help=f"oat-map fusion: sinkhorn (the solved plan) or none (T = 0, what the reference code's underflowing Sinkhorn returns) [default: {_T.map_plan}]")] = None
    init_std: Annotated[Optional[float], typer.Option("--init-std", help=f"RecGOAT ID embedding init: 0 for Xavier uniform, > 0 for a normal with this std (the reference: {_shown(_REFERENCE['train']['init_std'])}) [default: {_shown(_T.init_std)}]")] = None
    content_score: Annotated[Optional[bool], typer.Option("--content-score/--no-content-score", help=f"RecGOAT: add each modality's z-scored content ranker (late fusion's) to the score with a learned weight, trained jointly [default: {'on' if _T.content_score else 'off'}]")] = None
    content_control: Annotated[Optional[str], typer.Option("--content-control", help=f"RecGOAT ablation: none, or shuffle (the LM rows permuted across items and across users, with the kNN graphs built from them relabelled: a content-free control) [default: {_T.content_control}]")] = None
    kernels: Annotated[str, typer.Option("--kernels", help="edge softmax kernels: auto, native or torch_scatter")] = _T.kernels
    amp: Annotated[bool, typer.Option("--amp", help="bfloat16 autocast on CUDA")] = _T.amp
    lm_dim: Annotated[Optional[int], typer.Option("--lm-dim", help=f"principal components kept of each frozen LM representation (0: all) [default: {_T.lm_dim}]")] = None
    # FREEDOM
    freedom_dropout: Annotated[float, typer.Option("--freedom-dropout", help="FREEDOM: share of user-item edges dropped each epoch (degree-sensitive sampling)")] = _T.freedom_dropout
    freedom_knn_k: Annotated[int, typer.Option("--freedom-knn-k", help="FREEDOM: neighbours per item (itself included) in each modality's frozen item graph")] = _T.freedom_knn_k
    freedom_image_weight: Annotated[float, typer.Option("--freedom-image-weight", help="FREEDOM: share of the image modalities in the item graph mixture")] = _T.freedom_image_weight
    freedom_mm_layers: Annotated[int, typer.Option("--freedom-mm-layers", help="FREEDOM: propagation steps over the frozen item graph")] = _T.freedom_mm_layers
    freedom_modality_weight: Annotated[float, typer.Option("--freedom-modality-weight", help="FREEDOM: weight of the modality BPR losses (MMRec's reg_weight)")] = _T.freedom_modality_weight
    # late fusion
    base_model: Annotated[str, typer.Option("--base-model", help="late fusion: the model whose scores are fused (mf, lightgcn or freedom)")] = _T.base_model
    late_fusion_grid: Annotated[str, typer.Option("--late-fusion-grid", help="late fusion: weights tried per modality on validation, comma separated")] = _shown(_T.late_fusion_grid)

    def config(self, default_model: str = _T.model, device: str = DEVICE):
        """The ``TrainConfig``: the options given (not None) over the preset's values, over the defaults; the
        model defaults to ``default_model`` (the command's)."""
        from recgoat_cli.config import TrainConfig
        from recgoat_cli.presets import with_preset

        given = {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name != "preset"}
        given = {name: value for name, value in given.items() if value is not None} | {"device": device}
        if self.graphs is not None:
            given["graphs"] = parse_graphs(self.graphs)
        given["late_fusion_grid"] = parse_weights(self.late_fusion_grid)
        return TrainConfig(**({"model": default_model} | with_preset(self.preset, "train", given)))


# ---- evaluate (evaluate, run, tune) and export (export, run) ----------------------------------------------------

KOpt = Annotated[Optional[list[int]], typer.Option("--k", help="cut-offs, e.g. --k 10 20")]


def cutoffs(k: list[int] | None) -> tuple[int, ...]:
    """``--k`` as given, else the default cut-offs."""
    return tuple(k or EvalDefaults.ks)


_TOP_K_HELP = "recommendations per user"
TopKOpt = Annotated[int, typer.Option("--top-k", help=_TOP_K_HELP)]
RunTopKOpt = Annotated[int, typer.Option("--top-k", help=f"{_TOP_K_HELP} in the export")]
