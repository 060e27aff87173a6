"""Named configurations (``--preset``): every value of a preset is written here and nowhere else.

A preset fills the train (and build-graph) options the user did not give; an option given on the command line
wins. ``reference`` is the authors' public RecGOAT code as recgoat runs it, with that code's defects fixed
(selection on validation, InfoNCE minimised, a converged log-domain Sinkhorn): ``docs/method.md`` has the
component-by-component table and the reason for every difference.
"""

from __future__ import annotations

from recgoat_cli.errors import UserError

PRESETS: dict[str, dict[str, dict]] = {
    "reference": {
        "train": {
            "model": "recgoat",
            # collaborative backbone: LightGCN, 3 layers, 64-d; the user is its LightGCN embedding alone
            "dim": 64,
            "n_layers": 3,
            "graphs": ("item",),
            # item branches: raw features projected to dim, then 2 GAT layers of 8 heads, dropout 0.1, self-loops
            "lm_dim": 0,
            "item_branch": "reference",
            "gat_values": "lm",
            "content_score": False,  # the reference has no content score
            "gat_layers": 2,
            "gat_heads": 8,
            "gat_dropout": 0.1,
            # fusion: the d x d transport map of each modality onto the ID dimensions, cost x100, eps 0.01
            "fusion": "oat-map",
            "map_scale": 100.0,
            "map_reg": 0.01,
            "map_plan": "sinkhorn",
            "oat": False,  # the reference's OAT is the map inside the fusion, not a loss
            # CMCL: 0.01 x [(1 - 0.5) user-item InfoNCE + 0.5 x mean view-pair InfoNCE], temperature 0.2
            "cmcl": True,
            "cmcl_form": "reference",
            "lambda_cmcl": 0.01,
            "cmcl_view_weight": 0.5,
            "temperature": 0.2,
            # ID embeddings drawn from N(0, 0.1^2), as the reference initialises LightGCN's tables (recgoat: Xavier)
            "init_std": 0.1,
            # optimisation: Adam lr 1e-3, batch 2048; the reference's decay 1e-4 on the batch mean of squared
            # norms is reg 2e-4 in recgoat's (1/2B) form of the same penalty
            "lr": 1e-3,
            "batch_size": 2048,
            "reg": 2e-4,
        },
        # item-item kNN graph: k = 20 on cosine similarity, both directions (the union)
        "graph": {"knn_k": 20, "symmetrize": "max"},
    },
}


def preset_names() -> list[str]:
    return sorted(PRESETS)


def preset(name: str | None, part: str) -> dict:
    """The ``part`` (``train`` or ``graph``) values of preset ``name`` (empty for None)."""
    if name is None:
        return {}
    if name not in PRESETS:
        raise UserError(f"--preset {name}: unknown preset; use one of {', '.join(preset_names())}.")
    return dict(PRESETS[name].get(part, {}))


def with_preset(name: str | None, part: str, given: dict) -> dict:
    """``given`` (the options the user set) over the preset's values for ``part``."""
    values = preset(name, part)
    if part == "train" and "model" in values and given.get("model", values["model"]) != values["model"]:
        raise UserError(f"--preset {name} configures --model {values['model']}; drop --model {given['model']} or the preset.")
    return values | given
