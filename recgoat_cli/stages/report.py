"""``recgoat report``: pictures and a markdown summary of a dataset's training runs and test metrics.

For every train artifact, ``train-<id>.png`` plots the training loss (total and each term) and the
validation metrics per epoch from its ``log.jsonl``, with the selected (best) epoch marked. The
evaluate artifacts of the test split (``metrics.json`` with ``split == "test"``) give ``test-metrics.png``,
a grouped bar chart of every metric per model and seed (both read from the train artifact's manifest),
and ``report.md`` links the pictures and tabulates the same numbers, with the artifact ids they came from.
Each run is named by its model and the configuration keys that differ between the runs shown
(``recgoat gat_values=id``; ``stages.run_labels``), and the mean ± std over seeds is taken per configuration.

The report is a view over existing artifacts, not an artifact: it is rewritten on every call, each file
atomically (a temporary file, then a rename). Every artifact read is verified against its manifest first.
matplotlib is imported only here, and draws through its Agg canvas directly (no pyplot, no global
backend switch).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from recgoat_cli.artifacts.store import Artifact, ArtifactStore, verify_artifact
from recgoat_cli.errors import UserError
from recgoat_cli.stages.run_labels import run_labels, train_run

__all__ = ["ReportRun", "TestResult", "collect_report", "run_report"]

TRAIN_LOG = "log.jsonl"
TEST_METRICS_FIGURE = "test-metrics.png"
REPORT_NAME = "report.md"


@dataclass
class ReportRun:
    """One train artifact: its model, seed, per-epoch log and selected epoch."""

    artifact_id: str
    model: str
    seed: int | None
    history: list[dict]
    best_epoch: int | None
    val_metric: str | None
    label: str = ""


@dataclass
class TestResult:
    """Test metrics of one train artifact, merged over its evaluate artifacts (newer wins on the same key)."""

    train_id: str
    model: str
    seed: int | None
    metrics: dict[str, float] = field(default_factory=dict)
    evaluate_ids: list[str] = field(default_factory=list)
    label: str = ""
    configuration: str = ""


def _verified(artifacts: list[Artifact]) -> list[Artifact]:
    for artifact in artifacts:
        verify_artifact(artifact)
    return artifacts


def collect_report(store: ArtifactStore) -> tuple[list[ReportRun], list[TestResult]]:
    """Training runs and test results of a dataset's artifacts, oldest first."""
    runs = []
    trains = {a.id: a for a in _verified(store.list("train"))}
    for artifact in trains.values():
        summary = artifact.manifest.summary
        log_path = artifact.file(TRAIN_LOG)
        history = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()] if log_path.is_file() else []
        runs.append(
            ReportRun(
                artifact_id=artifact.id,
                model=str(summary.get("model") or artifact.manifest.config.get("model")),
                seed=artifact.manifest.seed,
                history=history,
                best_epoch=summary.get("best_epoch"),
                val_metric=artifact.manifest.config.get("val_metric"),
            )
        )
    for run, named in zip(runs, run_labels([train_run(a) for a in trains.values()])):
        run.label = named.label
    results: dict[str, TestResult] = {}
    for artifact in _verified(store.list("evaluate")):
        metrics = json.loads(artifact.file("metrics.json").read_text(encoding="utf-8"))
        if metrics.get("split") != "test":
            continue
        train_id = artifact.manifest.upstream_id("train") or metrics.get("train_artifact")
        # The train artifact's manifest names the model and seed; the evaluate artifact keeps a copy of both
        # for a train artifact that has since been deleted.
        train = trains.get(train_id)
        model = train.manifest.summary.get("model") if train is not None else metrics.get("model")
        seed = train.manifest.seed if train is not None else artifact.manifest.seed
        # `evaluate --mask train` ranks valid items too: its numbers are another row, never merged with the default's
        mask = metrics.get("mask", "train+valid")
        key, model = (train_id, str(model)) if mask == "train+valid" else (f"{train_id} mask {mask}", f"{model} (mask {mask})")
        result = results.setdefault(key, TestResult(train_id=train_id, model=model, seed=seed))
        result.metrics.update(metrics["metrics"])
        result.evaluate_ids.append(artifact.id)
    tests = list(results.values())
    # A train artifact deleted since its evaluation has no config left: its model and seed are all we know.
    shown = [train_run(trains[t.train_id]) if t.train_id in trains else (t.model, {}, t.seed, t.train_id) for t in tests]
    for test, named in zip(tests, run_labels(shown)):
        test.label, test.configuration = named.label, named.configuration
    return runs, tests


def _metric_order(tests: list[TestResult]) -> list[str]:
    """``recall@10, recall@20, ndcg@10, ...``: metrics in first-seen order, cut-offs ascending within each."""
    keys = list(dict.fromkeys(key for test in tests for key in test.metrics))
    names = list(dict.fromkeys(key.split("@")[0] for key in keys))
    ks = sorted({int(key.split("@")[1]) for key in keys})
    return [f"{name}@{k}" for name in names for k in ks if f"{name}@{k}" in keys]


def _save_figure(figure, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        figure.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def plot_training(run: ReportRun, path: Path) -> None:
    """Loss terms (left) and validation metrics (right) per epoch; the selected epoch is a dashed line."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, valid_axes = figure.subplots(1, 2)
    loss_keys = ["loss"] + sorted({k for r in run.history for k in r if k.startswith("loss_")})
    for key in loss_keys:
        points = [(r["epoch"], r[key]) for r in run.history if key in r]
        if points:
            loss_axes.plot(*zip(*points), marker="o", markersize=3, label=key, linewidth=2 if key == "loss" else 1)
    loss_axes.set(title="training loss", xlabel="epoch", ylabel="mean loss per batch")
    valid_keys = sorted({k for r in run.history for k in r if k.startswith("valid_")})
    for key in valid_keys:
        points = [(r["epoch"], r[key]) for r in run.history if key in r]
        valid_axes.plot(*zip(*points), marker="o", markersize=3, label=key.removeprefix("valid_"))
    valid_axes.set(title="validation", xlabel="epoch", ylabel="metric")
    for axes in (loss_axes, valid_axes):
        if run.best_epoch:
            axes.axvline(run.best_epoch, color="grey", linestyle="--", linewidth=1, label=f"selected epoch {run.best_epoch}")
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize="small")
        axes.grid(alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(f"{run.label} (train {run.artifact_id})")
    _save_figure(figure, path)


def plot_test_metrics(tests: list[TestResult], path: Path) -> None:
    """Grouped bars: one group per metric@K, one bar per model and seed."""
    from matplotlib.figure import Figure

    keys = _metric_order(tests)
    width = 0.8 / len(tests)
    figure = Figure(figsize=(max(6.0, 0.5 + len(keys) * (0.3 + 0.25 * len(tests))), 4.5), layout="constrained")
    axes = figure.subplots()
    for position, test in enumerate(tests):
        offsets = [i - 0.4 + width * (position + 0.5) for i in range(len(keys))]
        values = [test.metrics.get(key, math.nan) for key in keys]
        axes.bar(offsets, values, width=width, label=test.label)
    axes.set_xticks(range(len(keys)), keys, rotation=45, ha="right")
    axes.set(title="test metrics per model and seed", ylabel="value")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small")
    _save_figure(figure, path)


def _markdown_table(columns: list[str], rows: list[list]) -> list[str]:
    cell = lambda v: f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v))  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def render_markdown(dataset: str, runs: list[ReportRun], tests: list[TestResult], figures: dict[str, str]) -> str:
    lines = [f"# recgoat report: {dataset}", ""]
    lines += ["## Test metrics", ""]
    if tests:
        keys = _metric_order(tests)
        lines += [f"![test metrics per model and seed]({TEST_METRICS_FIGURE})", ""]
        rows = [[t.label, t.model, t.seed, f"`{t.train_id}`"] + [t.metrics.get(k) for k in keys] for t in tests]
        lines += _markdown_table(["run", "model", "seed", "train artifact"] + keys, rows) + [""]
        by_configuration: dict[str, list[TestResult]] = {}
        for test in tests:
            by_configuration.setdefault(test.configuration, []).append(test)
        if any(len(group) > 1 for group in by_configuration.values()):
            lines += ["Mean ± standard deviation over seeds:", ""]
            rows = [
                [configuration, len(group)] + [_mean_std([t.metrics[k] for t in group if k in t.metrics]) for k in keys]
                for configuration, group in by_configuration.items()
            ]
            lines += _markdown_table(["configuration", "runs"] + keys, rows) + [""]
    else:
        lines += [f"No test evaluation yet; run `recgoat evaluate --dataset {dataset}`.", ""]
    lines += ["## Training", ""]
    rows = [
        [r.label, r.model, r.seed, f"`{r.artifact_id}`", len(r.history), r.best_epoch, r.val_metric, f"[plot]({figures[r.artifact_id]})"]
        for r in runs
    ]
    lines += _markdown_table(["run", "model", "seed", "train artifact", "epochs", "selected epoch", "selected on", "curves"], rows) + [""]
    for run in runs:
        lines += [f"### {run.label} (`{run.artifact_id}`)", "", f"![training curves of {run.artifact_id}]({figures[run.artifact_id]})", ""]
    return "\n".join(lines)


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {spread:.4f}"


def run_report(store: ArtifactStore, out_dir: Path) -> dict:
    """Write the pictures and ``report.md`` of a dataset's artifacts into ``out_dir``; return what was written.

    A dataset with neither a train nor an evaluate artifact is a ``UserError`` naming the command to run.
    """
    runs, tests = collect_report(store)
    if not runs and not tests:
        raise UserError(
            f"no train or evaluate artifacts for dataset '{store.dataset}' under {store.workdir}; "
            f"run `recgoat run --dataset {store.dataset}` (or `recgoat train` and `recgoat evaluate`) first."
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out_dir} ({exc.strerror}); pass a writable --out.") from None
    figures = {run.artifact_id: f"train-{run.artifact_id}.png" for run in runs}
    for run in runs:
        plot_training(run, out_dir / figures[run.artifact_id])
    if tests:
        plot_test_metrics(tests, out_dir / TEST_METRICS_FIGURE)
    report = out_dir / REPORT_NAME
    tmp = report.with_name(f".{REPORT_NAME}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(render_markdown(store.dataset, runs, tests, figures) + "\n", encoding="utf-8")
    os.replace(tmp, report)
    written = list(figures.values()) + ([TEST_METRICS_FIGURE] if tests else [])
    return {
        "out": str(out_dir),
        "report": str(report),
        "figures": [str(out_dir / name) for name in written],
        "train_artifacts": [r.artifact_id for r in runs],
        "test_results": [
            {"label": t.label, "model": t.model, "seed": t.seed, "train_artifact": t.train_id, "metrics": t.metrics} for t in tests
        ],
    }
