"""Model names as the CLI knows them, and how a checkpoint's constructor arguments rebuild a model."""

from __future__ import annotations

from recgoat_cli.model.base import Recommender


def model_classes() -> dict[str, type[Recommender]]:
    from recgoat_cli.model.freedom import Freedom
    from recgoat_cli.model.lightgcn import LightGCN
    from recgoat_cli.model.mf import MatrixFactorization
    from recgoat_cli.model.recgoat import RecGOAT

    return {"mf": MatrixFactorization, "lightgcn": LightGCN, "recgoat": RecGOAT, "freedom": Freedom}


def build_model(name: str, args: dict) -> Recommender:
    """``args`` are plain ints, floats, strings and lists: what a checkpoint stores next to the weights."""
    classes = model_classes()
    if name not in classes:
        raise KeyError(f"unknown model {name!r}; known: {sorted(classes)}")
    return classes[name](**args)
