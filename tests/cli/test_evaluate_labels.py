"""``recgoat evaluate`` over several runs names each run by the configuration keys that differ between them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from recgoat_cli.cli.app import app

runner = CliRunner()


def test_evaluate_labels_runs_by_what_differs(tiny_dataset, tmp_path):
    common = ["--dataset", str(tiny_dataset), "--workdir", str(tmp_path / "runs")]
    ids = []
    for dim in ("8", "16"):
        trained = runner.invoke(app, ["train", *common, "--model", "mf", "--epochs", "1", "--dim", dim, "--json"])
        assert trained.exit_code == 0, trained.output
        ids.append(json.loads(trained.stdout)["artifact_id"])

    result = runner.invoke(app, ["evaluate", *common, "--k", "5", "--json", "--from", *ids])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert [r["label"] for r in runs] == ["mf dim=8", "mf dim=16"]

    table = runner.invoke(app, ["evaluate", *common, "--k", "5", "--from", *ids])
    assert table.exit_code == 0, table.output
    flat = " ".join(table.stdout.split())
    assert "mf dim=8" in flat and "mf dim=16" in flat and "±" not in flat  # no mean over two configurations
