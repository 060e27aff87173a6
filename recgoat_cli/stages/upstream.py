"""Stages run what they need, the way ``make`` builds a target's prerequisites.

``train`` needs a build-graph artifact, ``evaluate`` and ``export`` need a train artifact. When the dataset has
none yet (and no ``--from`` names one), the missing upstream stages run first with their defaults, and one
line says which: ``embed`` (when the dataset has side information: ``items.tsv``, ``images/`` or ``*_feat.npy``,
as in ``recgoat run``), ``build-graph`` and ``train``. An existing upstream artifact is reused as it is, so a
build-graph artifact made without an embed artifact stays one (and ``--model recgoat`` then says to rebuild it).

Under torchrun the chain does not run: every rank would race to build it; the usual "run X first" error stands.
"""

from __future__ import annotations

from typing import Callable

from recgoat_cli.artifacts.store import Artifact
from recgoat_cli.stages.common import StageContext

Log = Callable[[str], None]


def has_side_information(ctx: StageContext) -> bool:
    data = ctx.dataset
    return data.item_table is not None or data.image_dir is not None or bool(data.feature_files)


def _missing_chain(ctx: StageContext, target: str) -> list[str]:
    """The stages to run, in order, so that ``target``'s upstream exists (empty when it does)."""
    from recgoat_cli import distributed

    upstream_of = {"train": "build-graph", "evaluate": "train", "export": "train"}
    needed = upstream_of[target]
    if ctx.store.latest_id(needed) is not None or distributed.requested():
        return []
    chain = [needed]
    if needed == "train" and ctx.store.latest_id("build-graph") is None:
        chain.insert(0, "build-graph")
    if "build-graph" in chain and has_side_information(ctx) and ctx.store.latest_id("embed") is None:
        chain.insert(0, "embed")
    return chain


def _say(ctx: StageContext, target: str, chain: list[str], log: Log) -> None:
    steps = [f"`recgoat {stage}`" for stage in chain]
    listed = steps[0] if len(steps) == 1 else ", ".join(steps[:-1]) + " and " + steps[-1]
    first = chain[-1]
    defaults = "its defaults" if len(chain) == 1 else "their defaults"
    log(f"no {first} artifact for dataset '{ctx.key}' yet, so `recgoat {target}` runs {listed} with {defaults} first")


def _run_chain(ctx: StageContext, chain: list[str], *, device: str = "auto") -> None:
    from recgoat_cli.config import EmbedConfig, GraphConfig, TrainConfig
    from recgoat_cli.stages.build_graph import run_build_graph, upstream_embed
    from recgoat_cli.stages.embed import run_embed
    from recgoat_cli.stages.train import run_train

    if "embed" in chain:
        run_embed(ctx, EmbedConfig(device=device))
    if "build-graph" in chain:
        run_build_graph(ctx, GraphConfig(), upstream_embed(ctx, None))
    if "train" in chain:
        run_train(ctx, TrainConfig(device=device), ctx.store.get("build-graph"))


def build_graph_for_train(ctx: StageContext, from_id: str | None, *, log: Log = lambda message: None) -> Artifact:
    """The build-graph artifact ``train`` uses: the one named, the latest, or one made now (with embed first)."""
    if from_id is None and (chain := _missing_chain(ctx, "train")):
        _say(ctx, "train", chain, log)
        _run_chain(ctx, chain)
    return ctx.store.get("build-graph", from_id)


def ensure_trained(ctx: StageContext, target: str, *, log: Log = lambda message: None, device: str = "auto") -> None:
    """Before ``evaluate``/``export`` without ``--from``: train (and build what training needs) when nothing is trained."""
    if chain := _missing_chain(ctx, target):
        _say(ctx, target, chain, log)
        _run_chain(ctx, chain, device=device)
