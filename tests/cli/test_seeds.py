"""``train --seeds`` trains one model per seed; ``evaluate`` then reports mean and std over those runs."""

from __future__ import annotations

import json
import statistics

from typer.testing import CliRunner

from recgoat_cli.cli.app import app

runner = CliRunner()


def test_seeds_then_evaluate_reports_mean_and_std(tiny_dataset, tmp_path):
    common = ["--dataset", str(tiny_dataset), "--workdir", str(tmp_path / "runs")]
    assert runner.invoke(app, ["build-graph", *common, "--quiet"]).exit_code == 0
    trained = runner.invoke(app, ["train", *common, "--model", "lightgcn", "--epochs", "2", "--dim", "8", "--seeds", "1", "2", "3", "--json"])
    assert trained.exit_code == 0, trained.output
    runs = json.loads(trained.stdout)["runs"]
    assert [r["seed"] for r in runs] == [1, 2, 3] and len({r["artifact_id"] for r in runs}) == 3

    result = runner.invoke(app, ["evaluate", *common, "--k", "5", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["n_runs"] == 3 and sorted(r["seed"] for r in payload["runs"]) == [1, 2, 3]
    per_run = [r["metrics"]["recall@5"] for r in payload["runs"]]
    assert abs(payload["metrics"]["recall@5"] - statistics.mean(per_run)) < 1e-12
    assert abs(payload["std"]["recall@5"] - statistics.pstdev(per_run)) < 1e-12

    table = runner.invoke(app, ["evaluate", *common, "--k", "5"])
    assert "±" in table.stdout and "mean ± std of 3 runs" in table.stdout.replace("\n", " ")

    two = runner.invoke(app, ["evaluate", *common, "--k", "5", "--json", "--from", runs[0]["artifact_id"], runs[2]["artifact_id"]])
    assert json.loads(two.stdout)["n_runs"] == 2
