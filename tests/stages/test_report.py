"""``recgoat report``: valid PNGs of every training run and of the test metrics, and a report.md linking them."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from recgoat_cli.artifacts.store import ArtifactStore
from recgoat_cli.cli.app import app
from recgoat_cli.config import EvalConfig, GraphConfig, TrainConfig
from recgoat_cli.errors import UserError
from recgoat_cli.stages.build_graph import run_build_graph
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.evaluate import run_evaluate
from recgoat_cli.stages.report import TEST_METRICS_FIGURE, run_report
from recgoat_cli.stages.train import run_train
from recgoat_cli.train.loop import read_log


def _assert_png(path):
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 100 and image.height > 100
        image.verify()


@pytest.fixture()
def pipeline(tiny_dataset, tmp_path):
    """Two MF seeds, each evaluated on test; seed 0 also on valid (which the report leaves out)."""
    ctx = open_context(str(tiny_dataset), tmp_path / "runs")
    graph, _ = run_build_graph(ctx, GraphConfig())
    trained = {}
    for seed in (0, 1):
        trained[seed], _ = run_train(ctx, TrainConfig(model="mf", dim=8, epochs=2, seed=seed), graph)
        run_evaluate(ctx, EvalConfig(ks=(5, 10), split="test", device="cpu"), trained[seed])
    run_evaluate(ctx, EvalConfig(ks=(5,), split="valid", device="cpu"), trained[0])
    return ctx, trained


def test_report_draws_every_run_and_the_test_metrics(pipeline, tmp_path):
    ctx, trained = pipeline
    out = tmp_path / "report"
    written = run_report(ctx.store, out)

    names = [f"train-{trained[0].id}.png", f"train-{trained[1].id}.png", TEST_METRICS_FIGURE]
    assert sorted(written["figures"]) == sorted(str(out / name) for name in names)
    for name in names:
        _assert_png(out / name)

    # one bar group per model and seed, from the test split only, with the numbers of metrics.json
    results = {r["seed"]: r for r in written["test_results"]}
    assert set(results) == {0, 1} and all(r["model"] == "mf" for r in results.values())
    for seed, artifact in trained.items():
        evaluated = [a for a in ctx.store.list("evaluate") if a.manifest.upstream_id("train") == artifact.id and a.manifest.config["split"] == "test"]
        assert results[seed]["metrics"] == json.loads(evaluated[0].file("metrics.json").read_text())["metrics"]
        assert set(results[seed]["metrics"]) == {f"{m}@{k}" for m in ("recall", "ndcg", "precision", "hit", "map") for k in (5, 10)}

    markdown = (out / "report.md").read_text()
    for name in names:
        assert f"]({name})" in markdown
    assert f"| mf seed 0 | mf | 0 | `{trained[0].id}` | {results[0]['metrics']['recall@5']:.4f} |" in markdown
    assert "Mean ± standard deviation over seeds" in markdown  # two seeds of one configuration
    assert "| mf | 2 |" in markdown
    assert f"| mf seed 0 | mf | 0 | `{trained[0].id}` | {len(read_log(trained[0].file('log.jsonl')))} |" in markdown
    assert sorted(r["label"] for r in written["test_results"]) == ["mf seed 0", "mf seed 1"]


def test_runs_are_labelled_by_the_keys_that_differ(tiny_dataset, tmp_path):
    """Two configurations of one model (same seed) read as `mf dim=8` / `mf dim=16`, not as ids; a LightGCN run
    shown with them is just `lightgcn` (its keys are compared with LightGCN runs only)."""
    ctx = open_context(str(tiny_dataset), tmp_path / "runs")
    graph, _ = run_build_graph(ctx, GraphConfig())
    for model, dim in (("mf", 8), ("mf", 16), ("lightgcn", 8)):
        trained, _ = run_train(ctx, TrainConfig(model=model, dim=dim, epochs=1), graph)
        run_evaluate(ctx, EvalConfig(ks=(5,), split="test", device="cpu"), trained)
    written = run_report(ctx.store, tmp_path / "report")
    assert sorted(r["label"] for r in written["test_results"]) == ["lightgcn", "mf dim=16", "mf dim=8"]
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "### mf dim=16 (`" in markdown and "Mean ± standard deviation" not in markdown


def test_report_command_writes_under_the_workdir_by_default(pipeline, tiny_dataset, tmp_path):
    result = CliRunner().invoke(app, ["report", "--dataset", str(tiny_dataset), "--workdir", str(tmp_path / "runs"), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["report"] == str(tmp_path / "runs" / "tiny" / "report" / "report.md")
    for figure in payload["figures"]:
        _assert_png(tmp_path / "runs" / "tiny" / "report" / figure.rsplit("/", 1)[1])


def test_report_before_training_names_the_command_to_run(tiny_dataset, tmp_path):
    with pytest.raises(UserError, match=r"run `recgoat run --dataset tiny`"):
        run_report(ArtifactStore(tmp_path / "runs", "tiny"), tmp_path / "out")
    result = CliRunner().invoke(app, ["report", "--dataset", str(tiny_dataset), "--workdir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "no train or evaluate artifacts for dataset 'tiny'" in result.stderr
    assert not (tmp_path / "out").exists()
