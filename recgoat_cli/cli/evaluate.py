"""``recgoat evaluate``: Recall, NDCG, Precision, Hit rate and MAP at every K on the valid or test split.

``--fail-below recall@20=0.05 ndcg@20=0.02`` turns it into a CI gate: the metrics are printed as usual, then
the command exits 3 when any gated metric is below its threshold (``recgoat_cli.stages.gates``).
"""

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
    render_table,
)

KOpt = Annotated[Optional[list[int]], typer.Option("--k", help="cut-offs, e.g. --k 10 20")]
SplitOpt = Annotated[str, typer.Option("--split", help="valid or test")]
FailBelowOpt = Annotated[
    Optional[list[str]],
    typer.Option("--fail-below", help="CI gates METRIC@K=THRESHOLD, e.g. --fail-below recall@20=0.05 ndcg@20=0.02; exit 3 when one is below"),
]


def render_metrics(payload: dict) -> None:
    metrics = payload["metrics"]
    ks = sorted({int(key.split("@")[1]) for key in metrics})
    names = list(dict.fromkeys(key.split("@")[0] for key in metrics))
    rows = [[name] + [metrics[f"{name}@{k}"] for k in ks] for name in names]
    title = f"{payload.get('model')} on {payload['split']} ({payload['n_users']} users)"
    render_table(title, ["metric"] + [f"@{k}" for k in ks], rows)


@handle_errors
def evaluate(
    dataset: DatasetOpt,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    data_root: DataRootOpt = None,
    k: KOpt = None,
    split: SplitOpt = "test",
    device: DeviceOpt = "auto",
    from_id: Annotated[Optional[str], typer.Option("--from", help="train artifact id (default: latest)")] = None,
    fail_below: FailBelowOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Full ranking over all items; train items are masked (and valid items when evaluating test)."""
    from recgoat_cli.config import EvalConfig
    from recgoat_cli.errors import UserError
    from recgoat_cli.stages.evaluate import run_evaluate
    from recgoat_cli.stages.gates import check_gates, gate_results, parse_gates

    if k is not None and any(v < 1 for v in k):
        raise UserError(f"--k {' '.join(map(str, k))}: every K must be a positive integer.")
    output = Output(as_json, quiet)
    ctx = context(dataset, workdir, data_root, force=force, out=output)
    config = EvalConfig(ks=tuple(k or (10, 20)), split=split, device=device)
    gates = parse_gates(fail_below or (), config.metrics, config.ks)  # before ranking: a typo costs nothing
    trained = ctx.store.get("train", from_id)
    artifact, cached = run_evaluate(ctx, config, trained)
    payload = {"artifact_id": artifact.id, "cached": cached, **artifact.manifest.summary}
    results = gate_results(payload["metrics"], gates)
    if results:
        payload["gates"] = [r.as_dict() for r in results]
    output.result(payload, render=render_metrics)
    check_gates(results)
    if results:
        output.info(f"gates passed: {', '.join(str(r.gate) for r in results)}")
