"""``recgoat evaluate``: Recall, NDCG, Precision, Hit rate and MAP at every K on the valid or test split.

``--fail-below recall@20=0.05 ndcg@20=0.02`` turns it into a CI gate: the metrics are printed as usual, then
the command exits 3 when any gated metric is below its threshold (``recgoat_cli.eval.gates``).
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import handle_errors, render_table, runs_distributed
from recgoat_cli.cli.options import DatasetOptions, DeviceOpt, ForceOpt, KOpt, OutputOptions, cutoffs, option_groups
from recgoat_cli.defaults import DEVICE, EvalDefaults


def aggregate_runs(runs: list[dict]) -> dict:
    """Mean and population std of every metric over several runs (one per seed)."""
    import statistics

    keys = list(runs[0]["metrics"])
    return {
        "split": runs[0]["split"],
        "model": runs[0].get("model"),
        "n_users": runs[0]["n_users"],
        "n_runs": len(runs),
        "metrics": {k: statistics.mean(r["metrics"][k] for r in runs) for k in keys},
        "std": {k: statistics.pstdev(r["metrics"][k] for r in runs) for k in keys},
        "runs": runs,
    }


def render_metrics(payload: dict) -> None:
    runs = payload.get("runs") or []
    if len({run.get("configuration") for run in runs}) > 1:
        # Different configurations: a mean over them means nothing; one column per run, named by what differs.
        keys = list(payload["metrics"])
        rows = [[key] + [run["metrics"][key] for run in runs] for key in keys]
        render_table(f"{payload['split']} ({payload['n_users']} users), {len(runs)} runs", ["metric"] + [run["label"] for run in runs], rows)
        return
    metrics = payload["metrics"]
    std = payload.get("std")
    ks = sorted({int(key.split("@")[1]) for key in metrics})
    names = list(dict.fromkeys(key.split("@")[0] for key in metrics))
    if std:
        rows = [[name] + [f"{metrics[f'{name}@{k}']:.4f} ± {std[f'{name}@{k}']:.4f}" for k in ks] for name in names]
        title = f"{payload.get('model')} on {payload['split']} ({payload['n_users']} users, mean ± std of {payload['n_runs']} runs)"
    else:
        rows = [[name] + [metrics[f"{name}@{k}"] for k in ks] for name in names]
        title = f"{payload.get('model')} on {payload['split']} ({payload['n_users']} users)"
    render_table(title, ["metric"] + [f"@{k}" for k in ks], rows)


@handle_errors
@runs_distributed
@option_groups
def evaluate(
    *,
    data: DatasetOptions,
    k: KOpt = None,
    split: Annotated[str, typer.Option("--split", help="valid or test")] = EvalDefaults.split,
    mask: Annotated[
        str,
        typer.Option("--mask", help="known items never ranked: train+valid (valid items too when testing) or train (train items only, the MMRec toolbox's protocol)"),
    ] = EvalDefaults.mask,
    device: DeviceOpt = DEVICE,
    from_id: Annotated[
        Optional[list[str]],
        typer.Option("--from", help="train artifact id(s) (default: the latest, or every run of the latest --seeds call)"),
    ] = None,
    fail_below: Annotated[
        Optional[list[str]],
        typer.Option("--fail-below", help="CI gates METRIC@K=THRESHOLD, e.g. --fail-below recall@20=0.05 ndcg@20=0.02; exit 3 when one is below"),
    ] = None,
    force: ForceOpt = False,
    reporting: OutputOptions,
) -> None:
    """Full ranking over all items; train items are masked (and valid items when evaluating test, unless --mask train)."""
    from recgoat_cli.config import EvalConfig
    from recgoat_cli.errors import UserError
    from recgoat_cli.stages.evaluate import run_evaluate
    from recgoat_cli.eval.gates import check_gates, gate_results, parse_gates

    if mask not in ("train", "train+valid"):
        raise UserError(f"--mask {mask}: use train or train+valid.")
    if k is not None and any(v < 1 for v in k):
        raise UserError(f"--k {' '.join(map(str, k))}: every K must be a positive integer.")
    output = reporting.output()
    ctx = data.context(output, force)
    config = EvalConfig(ks=cutoffs(k), split=split, mask=mask, device=device)
    gates = parse_gates(fail_below or (), config.metrics, config.ks)  # before ranking: a typo costs nothing
    from recgoat_cli.stages.train import latest_seed_group
    from recgoat_cli.stages.upstream import ensure_trained

    if not from_id:
        ensure_trained(ctx, "evaluate", log=output.info, device=device)  # make-style: trains first when nothing is trained
    ids = list(from_id or latest_seed_group(ctx) or [None])
    trains = [ctx.store.get("train", i) for i in ids]
    evaluated = [run_evaluate(ctx, config, trained) for trained in trains]
    if len(evaluated) == 1:
        artifact, cached = evaluated[0]
        payload = {"artifact_id": artifact.id, "cached": cached, **artifact.manifest.summary}
    else:
        from recgoat_cli.stages.run_labels import run_labels, train_run

        named = run_labels([train_run(trained) for trained in trains])  # e.g. "recgoat gat_values=id", "mf seed 2"
        payload = aggregate_runs([
            a.manifest.summary | {"artifact_id": a.id, "seed": a.manifest.seed, "label": n.label, "configuration": n.configuration}
            for (a, _), n in zip(evaluated, named)
        ])
    results = gate_results(payload["metrics"], gates)
    if results:
        payload["gates"] = [r.as_dict() for r in results]
    output.result(payload, render=render_metrics)
    check_gates(results)
    if results:
        output.info(f"gates passed: {', '.join(str(r.gate) for r in results)}")
