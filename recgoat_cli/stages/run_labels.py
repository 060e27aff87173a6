"""Names for training runs shown side by side: the model plus the configuration keys that tell them apart.

Two RecGOAT variants used to appear as ``recgoat seed 2024 (8debb9)`` and ``recgoat seed 2024 (b3b7c9)``; with
``run_labels`` they are ``recgoat gat_values=id`` and ``recgoat gat_values=lm``. Keys are compared among the
runs *of the same model* that are shown (a LightGCN run's unused RecGOAT defaults are not news), seeds are
named only when one configuration was run with several, and the upstream build-graph artifact counts as a key
(``build-graph=1a2b3c``) so that runs on different graphs are told apart too. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: keys that never tell configurations apart: where the run ran, and the seed (named separately); each config's
#: own ``non_semantic`` keys (those kept out of its artifact id) are left out too
IGNORED_KEYS = frozenset({"seed", "device", "kernels", "non_semantic"})


@dataclass(frozen=True)
class RunLabel:
    """``configuration``: the model and the keys that differ; ``label``: that, plus the seed where needed."""

    configuration: str
    label: str


def format_value(value: Any) -> str:
    """How a config value reads in a label: ``1e-03`` floats as ``0.001``, tuples joined by ``+`` (as in --grid)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "+".join(format_value(v) for v in value)
    return "-" if value is None else str(value)


def differing_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Keys (first-seen order) whose values are not the same in every config; a key a config lacks counts as None."""
    ignored = IGNORED_KEYS.union(*(config.get("non_semantic") or () for config in configs))
    keys = list(dict.fromkeys(k for config in configs for k in config if k not in ignored))
    return [k for k in keys if len({repr(config.get(k)) for config in configs}) > 1]


def run_labels(runs: Sequence[tuple[str, Mapping[str, Any], int | None, str]]) -> list[RunLabel]:
    """One label per ``(model, config, seed, artifact_id)`` run, in order, unique among the runs given.

    Example: ``[("recgoat", {"gat_values": "id"}, 1, "a"), ("recgoat", {"gat_values": "lm"}, 1, "b")]`` ->
    ``recgoat gat_values=id``, ``recgoat gat_values=lm``; two seeds of one configuration -> ``mf seed 1``,
    ``mf seed 2``.
    """
    by_model: dict[str, list[int]] = {}
    for index, (model, _, _, _) in enumerate(runs):
        by_model.setdefault(model, []).append(index)
    configurations = [""] * len(runs)
    for model, indices in by_model.items():
        keys = differing_keys([runs[i][1] for i in indices])
        for i in indices:
            config = runs[i][1]
            configurations[i] = " ".join([model] + [f"{k}={format_value(config.get(k))}" for k in keys])
    labels = []
    for i, (_, _, seed, _) in enumerate(runs):
        seeds = {runs[j][2] for j in range(len(runs)) if configurations[j] == configurations[i]}
        labels.append(configurations[i] + (f" seed {seed}" if len(seeds) > 1 else ""))
    # Same configuration and seed (e.g. one run trained with --resume and one without): the id tells them apart.
    labels = [label if labels.count(label) == 1 else f"{label} ({str(runs[i][3] or '?')[:6]})" for i, label in enumerate(labels)]
    return [RunLabel(configuration, label) for configuration, label in zip(configurations, labels)]


def train_run(artifact) -> tuple[str, dict, int | None, str]:
    """The ``(model, config, seed, id)`` of a train artifact, its build-graph upstream counted as a config key."""
    manifest = artifact.manifest
    config = dict(manifest.config)
    graph = manifest.upstream_id("build-graph")
    if graph is not None:
        config["build-graph"] = graph[:6]
    model = str(manifest.summary.get("model") or config.get("model"))
    return model, config, manifest.seed, artifact.id
