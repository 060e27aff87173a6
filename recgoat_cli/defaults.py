"""The defaults that both a stage's config (``config.py``) and its command-line options (``cli/options.py``) state.

Each value is written here once: the config field takes it as its default, and the option shows it in
``--help`` (as its default, or in its help text when the option defaults to "not given", so that ``--preset`` or
the model can decide). A default only the config knows stays in ``config.py``.

This module imports nothing, so the command line can read it without importing pydantic, and ``recgoat --help``
stays fast.
"""

from __future__ import annotations

#: ``--device`` of every stage that computes
DEVICE = "auto"


class EmbedDefaults:
    """``EmbedConfig`` and ``recgoat embed``."""

    text_model = "minilm"
    image_encoder = "auto"
    image_model = "ViT-B-32"
    dataset_features = True
    user_mode = "mean"
    profile_last_n = 20
    batch_size = 64


class GraphDefaults:
    """``GraphConfig`` and ``recgoat build-graph``."""

    knn_k = 10
    user_knn_k = 10
    user_graph = "embedding"
    normalize = "sym"
    memory_budget_mb = 512
    #: the smallest ``--memory-budget`` the blockwise kNN tiles work in
    min_memory_budget_mb = 16


class TrainDefaults:
    """``TrainConfig`` and ``recgoat train`` (``run`` and ``tune`` default to RecGOAT instead)."""

    model = "lightgcn"
    dim = 64
    n_layers = 3
    lr = 1e-3
    reg = 1e-4
    batch_size = 2048
    epochs = 300
    patience = 20
    eval_every = 1
    val_metric = "recall@20"
    seed = 2024
    gat_heads = 1
    gat_layers = 1
    gat_dropout = 0.1
    gat_values = "id"
    graphs = ("item", "user-item", "user-user")
    cmcl = True
    lambda_cmcl = 0.1
    temperature = 0.2
    cmcl_rows = 256
    oat = True
    lambda_oat = 0.1
    ot_reg = 0.1
    ot_iters = 100
    ot_batch = 128
    fusion = "oat"
    item_branch = "attention"
    cmcl_form = "views"
    cmcl_view_weight = 0.5
    map_scale = 100.0
    map_reg = 0.01
    map_iters = 1000
    init_std = 0.0
    map_plan = "sinkhorn"
    content_score = True
    content_control = "none"
    lm_dim = 64
    kernels = "auto"
    freedom_dropout = 0.8
    freedom_knn_k = 10
    freedom_image_weight = 0.1
    freedom_mm_layers = 1
    freedom_modality_weight = 1e-4
    #: what ``--model freedom`` (also as late fusion's base) changes: MMRec's 2 layers and no L2 term
    freedom_n_layers = 2
    freedom_reg = 0.0
    base_model = "lightgcn"
    late_fusion_grid = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
    amp = False
    #: the model of ``recgoat train``, ``recgoat run`` and ``recgoat tune`` (``model`` above is ``TrainConfig``'s, which
    #: the make-style training of ``evaluate``/``export`` on a dataset with no train artifact uses: it needs no content)
    pipeline_model = "recgoat"


class EvalDefaults:
    """``EvalConfig`` and ``recgoat evaluate`` (``--k`` of ``run`` and ``tune`` too)."""

    ks = (10, 20)
    split = "test"
    mask = "train+valid"


class ExportDefaults:
    """``ExportConfig`` and ``recgoat export`` (``--top-k`` of ``run`` too)."""

    top_k = 20
    format = "parquet"
    exclude = "train"
