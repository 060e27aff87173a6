"""``recgoat show``: the artifacts of a dataset, stage by stage, with their lineage."""

from __future__ import annotations

from recgoat_cli.cli.common import handle_errors
from recgoat_cli.cli.options import ArtifactOptions, OutputOptions, option_groups

STAGES = ("embed", "build-graph", "train", "evaluate", "export", "tune")


def collect(workdir, dataset: str) -> list[dict]:
    from recgoat_cli.artifacts.store import ArtifactStore

    store = ArtifactStore(workdir, dataset)
    rows = []
    for stage in STAGES:
        latest = store.latest_id(stage)
        for artifact in store.list(stage):
            m = artifact.manifest
            rows.append(
                {
                    "stage": stage,
                    "artifact_id": m.artifact_id,
                    "latest": m.artifact_id == latest,
                    "created_at": m.created_at,
                    "upstream": {u.stage: u.artifact_id for u in m.upstream},
                    "summary": m.summary,
                    "path": str(artifact.path),
                }
            )
    return rows


def describe(row: dict) -> str:
    summary = row["summary"]
    if row["stage"] == "train":
        return f"{summary.get('model')} best epoch {summary.get('best_epoch')} valid {summary.get('best_valid')}"
    if row["stage"] == "evaluate":
        metrics = summary.get("metrics", {})
        shown = ", ".join(f"{k}={v:.4f}" for k, v in list(metrics.items())[:4])
        return f"{summary.get('split')}: {shown}"
    if row["stage"] == "build-graph":
        graphs = summary.get("graphs", {})
        return "\n".join(
            f"{name}: {g['nodes']} nodes, {g['edges']} edges, degree {g['degree_min']}/{g['degree_median']:g}/{g['degree_max']} "
            f"(min/median/max), {g['isolated_nodes']} isolated"
            for name, g in graphs.items()
        )
    if row["stage"] == "tune":
        chosen = summary.get("chosen", {})
        return f"{summary.get('trials')} trials; chosen trial {chosen.get('trial')}; test recall@20 {summary.get('test', {}).get('recall@20', float('nan')):.4f}"
    if row["stage"] == "embed":
        shapes = ", ".join(f"{name} {shape[0]}x{shape[1]}" for name, shape in summary.get("modalities", {}).items())
        skipped = "".join(f"\nskipped {name}: {why}" for name, why in summary.get("skipped", {}).items())
        return f"items: {shapes}; users {summary.get('users', ['?', '?'])[1]}-d{skipped}"
    if row["stage"] == "export":
        if summary.get("format") == "torchscript":
            return f"TorchScript scorer {summary.get('scorer')} for {summary.get('users')} users, {summary.get('items')} items"
        return f"{summary.get('rows')} rows, top-{summary.get('top_k')}"
    return ", ".join(f"{k}={v}" for k, v in summary.items() if not isinstance(v, (dict, list)))[:120]


@handle_errors
@option_groups
def show(*, artifacts: ArtifactOptions, reporting: OutputOptions) -> None:
    """List every artifact of a dataset with its upstream ids (the lineage chain)."""
    from recgoat_cli.cli.common import render_table
    from recgoat_cli.errors import UserError

    key = artifacts.key()
    rows = collect(artifacts.workdir, key)
    if not rows:
        raise UserError(f"no artifacts for dataset '{key}' under {artifacts.workdir}; run `recgoat run --dataset {artifacts.dataset}` first.")

    def render(payload: dict) -> None:
        table_rows = [
            [
                r["stage"],
                r["artifact_id"] + (" *" if r["latest"] else ""),
                " ".join(f"{s}:{i}" for s, i in r["upstream"].items()) or "-",
                describe(r),
            ]
            for r in payload["artifacts"]
        ]
        render_table(f"artifacts of {key} (* = latest)", ["stage", "id", "from", "summary"], table_rows)

    reporting.output().result({"dataset": key, "artifacts": rows}, render=render)
