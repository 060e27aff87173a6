"""Resolved configuration of each stage (pydantic v2, unknown keys refused).

One model per stage. The resolved config is dumped into the stage's manifest, and the fields that change
what a stage computes (``semantic_dump``) enter the artifact id, so that the same config on the same inputs
is a cache hit and anything else is a new artifact. Fields that only change how results are shown or where
work runs (device, progress, batch size for ranking) are kept out of the id.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recgoat_cli.defaults import DEVICE, EmbedDefaults, EvalDefaults, ExportDefaults, GraphDefaults, TrainDefaults


class StageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: fields that do not change the result; excluded from the artifact id
    non_semantic: tuple[str, ...] = ()

    def semantic_dump(self) -> dict:
        return self.model_dump(exclude={"non_semantic", *self.non_semantic})


class EmbedConfig(StageConfig):
    """``recgoat embed``: LM representations of items (per modality) and of users."""

    text_model: str | None = Field(EmbedDefaults.text_model, description="alias, hub name or folder; None skips text")
    text_template: str | None = Field(None, description="item text template over items.tsv columns; None = automatic")
    image_encoder: Literal["auto", "clip", "descriptor", "none"] = EmbedDefaults.image_encoder
    image_model: str = EmbedDefaults.image_model
    image_weights: str | None = None
    features: tuple[tuple[str, str], ...] = Field((), description="extra (name, path) precomputed feature files")
    dataset_features: bool = Field(EmbedDefaults.dataset_features, description="import the dataset's own *_feat.npy files")
    user_mode: Literal["mean", "profile"] = EmbedDefaults.user_mode
    profile_template: str = "A user who liked: {titles}"
    profile_last_n: int = Field(EmbedDefaults.profile_last_n, ge=1)
    missing_rule: Literal["mean"] = "mean"
    skip_unreadable_images: bool = Field(False, description="fill undecodable image files like absent ones instead of stopping")
    batch_size: int = Field(EmbedDefaults.batch_size, ge=1)
    device: str = DEVICE
    offline: bool = Field(False, description="never download a model (HF_HUB_OFFLINE=1 does the same)")
    # skip_unreadable_images never changes a written artifact: without it the same inputs write nothing.
    # offline decides only where a model may come from; what was loaded enters the id through its fingerprint.
    non_semantic: tuple[str, ...] = ("batch_size", "device", "skip_unreadable_images", "offline")


class GraphConfig(StageConfig):
    """``recgoat build-graph``: graphs from the train split and the embed artifact (when there is one)."""

    knn_k: int = Field(GraphDefaults.knn_k, ge=1, description="neighbours per item in each modality's item-item graph")
    user_knn_k: int = Field(GraphDefaults.user_knn_k, ge=1, description="neighbours per user in the user-user graph")
    user_graph: Literal["embedding", "co-interaction", "both", "none"] = GraphDefaults.user_graph
    co_measure: Literal["count", "cosine", "jaccard"] = "cosine"
    symmetrize: Literal["max", "mean", "none"] = "max"
    self_loops: bool = False
    normalize: Literal["none", "sym", "rw"] = GraphDefaults.normalize
    memory_budget_mb: int = Field(GraphDefaults.memory_budget_mb, ge=GraphDefaults.min_memory_budget_mb)
    non_semantic: tuple[str, ...] = ("memory_budget_mb",)


class TrainConfig(StageConfig):
    """``recgoat train``: one model trained with BPR, early-stopped on the validation split."""

    model: Literal["mf", "lightgcn", "recgoat", "freedom", "late-fusion"] = TrainDefaults.model
    dim: int = Field(TrainDefaults.dim, ge=1)
    n_layers: int = Field(TrainDefaults.n_layers, ge=0)
    lr: float = Field(TrainDefaults.lr, gt=0)
    reg: float = Field(TrainDefaults.reg, ge=0, description="L2 weight on the batch's ego embeddings")
    batch_size: int = Field(TrainDefaults.batch_size, ge=1)
    epochs: int = Field(TrainDefaults.epochs, ge=1)
    patience: int = Field(TrainDefaults.patience, ge=1, description="evaluations without validation improvement before stopping")
    eval_every: int = Field(TrainDefaults.eval_every, ge=1)
    val_metric: str = TrainDefaults.val_metric
    seed: int = TrainDefaults.seed
    # RecGOAT (ignored by mf/lightgcn)
    gat_heads: int = Field(TrainDefaults.gat_heads, ge=1)
    gat_layers: int = Field(TrainDefaults.gat_layers, ge=0)
    gat_dropout: float = Field(TrainDefaults.gat_dropout, ge=0, lt=1)
    gat_values: Literal["id", "lm"] = Field(TrainDefaults.gat_values, description="what attention passes along edges: ID embeddings or LM rows")
    graphs: tuple[Literal["item", "user-item", "user-user"], ...] = TrainDefaults.graphs
    cmcl: bool = TrainDefaults.cmcl
    lambda_cmcl: float = Field(TrainDefaults.lambda_cmcl, ge=0)
    temperature: float = Field(TrainDefaults.temperature, gt=0)
    cmcl_rows: int = Field(TrainDefaults.cmcl_rows, ge=2, description="rows per InfoNCE problem (in-batch negatives + 1)")
    oat: bool = TrainDefaults.oat
    lambda_oat: float = Field(TrainDefaults.lambda_oat, ge=0)
    ot_reg: float = Field(TrainDefaults.ot_reg, gt=0, description="entropic regularisation on the mean-normalised cost")
    ot_iters: int = Field(TrainDefaults.ot_iters, ge=1)
    ot_batch: int = Field(TrainDefaults.ot_batch, ge=2, description="items per transport problem")
    fusion: Literal["oat", "concat", "sum", "residual", "oat-map"] = TrainDefaults.fusion
    item_branch: Literal["attention", "reference"] = Field(TrainDefaults.item_branch, description="item-item branch: batch-restricted attention or the reference's projection + GAT stack")
    cmcl_form: Literal["views", "reference"] = Field(TrainDefaults.cmcl_form, description="CMCL terms: ID-anchored view pairs, or the reference's user-item + view-pair InfoNCE")
    cmcl_view_weight: float = Field(TrainDefaults.cmcl_view_weight, ge=0, le=1, description="share of the view-pair terms in the reference CMCL")
    map_scale: float = Field(TrainDefaults.map_scale, gt=0, description="oat-map: factor on the mean squared difference of two dimensions")
    map_reg: float = Field(TrainDefaults.map_reg, gt=0, description="oat-map: entropic regularisation of the dimension transport plan")
    map_iters: int = Field(TrainDefaults.map_iters, ge=1, description="oat-map: Sinkhorn iteration limit of the dimension plan")
    init_std: float = Field(TrainDefaults.init_std, ge=0, description="RecGOAT ID embedding init: 0 for Xavier uniform, > 0 for a normal with this std")
    map_plan: Literal["sinkhorn", "none"] = Field(TrainDefaults.map_plan, description="oat-map: the solved plan, or none (T = 0: the reference code's underflowed plan)")
    content_score: bool = Field(TrainDefaults.content_score, description="RecGOAT: add the z-scored content ranker with a learned weight per modality to the score")
    content_control: Literal["none", "shuffle"] = Field(TrainDefaults.content_control, description="RecGOAT ablation: the LM rows as embedded, or permuted across items and across users (the kNN graphs relabelled to match)")
    lm_dim: int = Field(TrainDefaults.lm_dim, ge=0, description="principal components kept of each frozen LM representation (0: all)")
    kernels: Literal["auto", "native", "torch_scatter"] = TrainDefaults.kernels
    # FREEDOM (ignored by the others); defaults are MMRec's, and --model freedom also changes the defaults
    # of n_layers (2, MMRec's n_ui_layers) and reg (0: MMRec trains FREEDOM without an L2 term)
    freedom_dropout: float = Field(TrainDefaults.freedom_dropout, ge=0, lt=1, description="share of the user-item edges dropped each epoch, degree-sensitively")
    freedom_knn_k: int = Field(TrainDefaults.freedom_knn_k, ge=1, description="neighbours per item (itself included) in each modality's frozen item graph")
    freedom_image_weight: float = Field(TrainDefaults.freedom_image_weight, ge=0, le=1, description="share of the image modalities in the frozen item graph mixture")
    freedom_mm_layers: int = Field(TrainDefaults.freedom_mm_layers, ge=0, description="propagation steps over the frozen item graph")
    freedom_modality_weight: float = Field(TrainDefaults.freedom_modality_weight, ge=0, description="weight of the modality BPR terms (MMRec's reg_weight)")
    # late fusion (ignored by the others): base_model's z-scores plus weighted content z-scores
    base_model: Literal["mf", "lightgcn", "freedom"] = TrainDefaults.base_model
    late_fusion_grid: tuple[float, ...] = Field(TrainDefaults.late_fusion_grid, min_length=1, description="weights tried per modality, chosen on validation")
    device: str = DEVICE
    amp: bool = TrainDefaults.amp
    non_semantic: tuple[str, ...] = ("device", "kernels")

    #: fields added after train artifact ids were published: each enters the id only away from its default, so
    #: every earlier configuration keeps its id (and its cached artifact)
    LATE_FIELDS: ClassVar[tuple[str, ...]] = (
        "item_branch", "cmcl_form", "cmcl_view_weight", "map_scale", "map_reg", "map_iters", "map_plan",
        "freedom_dropout", "freedom_knn_k", "freedom_image_weight", "freedom_mm_layers", "freedom_modality_weight",
        "base_model", "late_fusion_grid", "init_std", "content_score", "content_control",
    )

    def semantic_dump(self) -> dict:
        dump = super().semantic_dump()
        for name in self.LATE_FIELDS:
            if dump[name] == type(self).model_fields[name].default:
                del dump[name]
        return dump

    @model_validator(mode="before")
    @classmethod
    def _freedom_defaults(cls, data):
        """FREEDOM (also as late fusion's base) trains with MMRec's 2 layers and no L2 unless told otherwise."""
        if isinstance(data, dict) and "freedom" in (data.get("model"), data.get("base_model") if data.get("model") == "late-fusion" else None):
            data = {"n_layers": TrainDefaults.freedom_n_layers, "reg": TrainDefaults.freedom_reg} | data
        return data

    @field_validator("late_fusion_grid")
    @classmethod
    def _non_negative_weights(cls, grid: tuple[float, ...]) -> tuple[float, ...]:
        if any(w < 0 for w in grid):
            raise ValueError("every late-fusion weight must be at least 0")
        return tuple(sorted(set(grid)))

    @field_validator("val_metric")
    @classmethod
    def _metric_at_k(cls, value: str) -> str:
        name, _, k = value.partition("@")
        if name not in {"recall", "ndcg", "precision", "hit", "map"} or not k.isdigit() or int(k) < 1:
            raise ValueError("must look like recall@20 (recall, ndcg, precision, hit or map at a positive K)")
        return value


class EvalConfig(StageConfig):
    """``recgoat evaluate``: full ranking of all items on one split."""

    ks: tuple[int, ...] = EvalDefaults.ks
    split: Literal["valid", "test"] = EvalDefaults.split
    metrics: tuple[str, ...] = ("recall", "ndcg", "precision", "hit", "map")
    mask: Literal["train", "train+valid"] = Field(
        EvalDefaults.mask, description="known splits whose items are never ranked; the evaluated split itself is never masked"
    )
    batch_size: int | None = Field(None, ge=1, description="users per scoring block; None sizes it from the item count")
    device: str = DEVICE
    non_semantic: tuple[str, ...] = ("batch_size", "device")

    def semantic_dump(self) -> dict:
        # the default mask leaves the id as it was before --mask existed, so earlier evaluations stay cached
        dump = super().semantic_dump()
        if self.mask == "train+valid":
            dump.pop("mask")
        return dump

    @field_validator("ks")
    @classmethod
    def _positive(cls, ks: tuple[int, ...]) -> tuple[int, ...]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError("every K must be a positive integer")
        return tuple(sorted(set(ks)))


class ExportConfig(StageConfig):
    """``recgoat export``: per-user top-N lists with original ids, and the learned embeddings."""

    top_k: int = Field(ExportDefaults.top_k, ge=1)
    format: Literal["parquet", "csv", "torchscript"] = ExportDefaults.format
    exclude: Literal["train", "train+valid", "none"] = ExportDefaults.exclude
    batch_size: int | None = Field(None, ge=1, description="users per scoring block; None sizes it from the item count")
    device: str = DEVICE
    non_semantic: tuple[str, ...] = ("batch_size", "device")
