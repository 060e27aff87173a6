"""The command line end to end on a tiny dataset: exit codes, --json, caching, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recgoat_cli.cli.app import app, expand_multi_value_options

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result


@pytest.fixture()
def tiny(tiny_dataset, tmp_path):
    return tiny_dataset, tmp_path / "runs"


def test_expand_multi_value_options():
    assert expand_multi_value_options(["evaluate", "--k", "10", "20", "--json"]) == ["evaluate", "--k", "10", "--k", "20", "--json"]
    assert expand_multi_value_options(["train", "--lr", "0.1", "--k=5"]) == ["train", "--lr", "0.1", "--k=5"]
    # --from takes several ids in evaluate only; elsewhere a second id stays an error for click to report
    assert expand_multi_value_options(["evaluate", "--from", "a", "b"]) == ["evaluate", "--from", "a", "--from", "b"]
    assert expand_multi_value_options(["train", "--from", "a", "b"]) == ["train", "--from", "a", "b"]


def test_pipeline_end_to_end_with_json(tiny):
    data, runs = tiny
    common = ["--dataset", str(data), "--workdir", str(runs)]
    result = invoke("build-graph", *common, "--json")
    assert result.exit_code == 0, result.output
    graph = json.loads(result.stdout)
    assert graph["graphs"]["user_item"]["nodes"] == 40 + 30

    result = invoke("train", *common, "--model", "lightgcn", "--epochs", "3", "--dim", "8", "--json")
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout)
    assert 1 <= trained["best_epoch"] <= 3 and "recall@20" in trained["best_valid"]

    again = json.loads(invoke("train", *common, "--model", "lightgcn", "--epochs", "3", "--dim", "8", "--json").stdout)
    assert again["cached"] is True and again["artifact_id"] == trained["artifact_id"]

    result = invoke("evaluate", *common, "--k", "5", "10", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert set(metrics) == {f"{m}@{k}" for m in ("recall", "ndcg", "precision", "hit", "map") for k in (5, 10)}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())

    result = invoke("export", *common, "--top-k", "5", "--format", "csv", "--json")
    assert result.exit_code == 0, result.output
    path = Path(json.loads(result.stdout)["path"])
    lines = (path / "recommendations.csv").read_text().splitlines()
    assert lines[0] == "user_id,item_id,rank,score" and len(lines) == 1 + 40 * 5
    assert json.loads((path / "lineage.json").read_text())["artifacts"]["train"] == trained["artifact_id"]

    shown = json.loads(invoke("show", "--dataset", str(data), "--workdir", str(runs), "--json").stdout)
    assert {a["stage"] for a in shown["artifacts"]} == {"build-graph", "train", "evaluate", "export"}


def test_quiet_prints_nothing(tiny):
    data, runs = tiny
    result = invoke("build-graph", "--dataset", str(data), "--workdir", str(runs), "--quiet")
    assert result.exit_code == 0 and result.stdout == ""


def test_quiet_json_prints_only_the_json_object(tiny):
    data, runs = tiny
    result = invoke("build-graph", "--dataset", str(data), "--workdir", str(runs), "--quiet", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["artifact_id"]  # one object on stdout, nothing else


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--dataset", "DATA", "--model", "lightgcn", "--from", "nope"], "build-graph artifact 'nope' does not exist"),
        (["build-graph", "--dataset", "nope"], "dataset 'nope' not found"),
        (["train", "--dataset", "DATA", "--model", "lightgcn", "--val-metric", "recal@20"], "--val-metric"),
        (["evaluate", "--dataset", "DATA", "--k", "0"], "--k 0"),
    ],
)
def test_user_errors_exit_2_without_traceback(tiny, args, message):
    data, runs = tiny
    args = [str(data) if a == "DATA" else a for a in args]
    result = invoke(*args, "--workdir", str(runs))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_inter_file_exits_2(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "bad.inter").write_text("userID\titemID\tx_label\n0\tx\t0\n")
    result = invoke("build-graph", "--dataset", str(folder), "--workdir", str(tmp_path / "runs"))
    assert result.exit_code == 2
    assert "line 2 column itemID is 'x'" in result.output
    assert not (tmp_path / "runs" / "bad" / "build-graph").exists() or not any(
        p for p in (tmp_path / "runs" / "bad" / "build-graph").iterdir() if not p.name.startswith(".")
    )


def test_help_lists_stages_without_importing_heavy_libraries():
    # the 1 s start-up budget itself is measured by benchmarks/speed/cli_startup.py, not by a timed test
    proc = subprocess.run([sys.executable, "-m", "recgoat_cli", "--help"], capture_output=True, text=True, check=True)
    for stage in ("prepare", "build-graph", "train", "evaluate", "export", "run", "show"):
        assert stage in proc.stdout
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, recgoat_cli.cli.app; print('torch' in sys.modules, 'polars' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )
    assert imported.stdout.split() == ["False", "False"]


def test_run_whole_pipeline_and_recgoat_needs_side_information(tiny):
    data, runs = tiny
    common = ["--dataset", str(data), "--workdir", str(runs)]
    result = invoke("run", *common, "--model", "lightgcn", "--epochs", "2", "--dim", "8", "--k", "5", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["embed"] is None and set(payload["evaluate"]["metrics"]) >= {"recall@5", "ndcg@5"}
    result = invoke("run", *common, "--epochs", "2", "--dim", "8")  # default model: recgoat
    assert result.exit_code == 2 and "needs LM representations" in result.output and "Traceback" not in result.output


def test_run_recgoat_with_a_feature_file(tiny, tmp_path):
    data, runs = tiny
    np.save(data / "image_feat.npy", np.random.default_rng(0).standard_normal((30, 6)).astype(np.float32))
    result = invoke("run", "--dataset", str(data), "--workdir", str(runs), "--epochs", "2", "--dim", "8", "--knn-k", "3", "--user-knn-k", "3", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["embed"] is not None and payload["train"]["model"] == "recgoat"


def test_unwritable_workdir_is_refused_before_the_stage_starts(tiny, tmp_path):
    data, _ = tiny
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    # a text model that does not exist would fail later; the workdir is checked first, before any model loads
    result = invoke("embed", "--dataset", str(data), "--workdir", str(blocker / "runs"), "--text-model", str(tmp_path / "no-model"))
    assert result.exit_code == 2
    assert f"{blocker} is a file" in result.stderr and "--workdir" in result.stderr


def test_parse_errors_are_one_line(tiny):
    data, runs = tiny
    result = invoke("train", "--dataset", str(data), "--workdir", str(runs), "--epochs", "many")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: Invalid value for '--epochs': Input should be a valid integer, unable to parse string as an integer "
        "(see `recgoat train --help`)."
    ]


def test_freedom_late_fusion_and_evaluate_mask_from_the_command_line(tiny):
    data, runs = tiny
    np.save(data / "text_feat.npy", np.random.default_rng(0).standard_normal((30, 6)).astype(np.float32))
    common = ["--dataset", str(data), "--workdir", str(runs)]
    result = invoke("run", *common, "--model", "freedom", "--epochs", "2", "--dim", "8", "--knn-k", "3", "--user-knn-k", "3", "--freedom-knn-k", "3", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["train"]["model"] == "freedom" and payload["evaluate"]["mask"] == "train+valid"

    result = invoke("train", *common, "--model", "late-fusion", "--epochs", "2", "--dim", "8", "--late-fusion-grid", "0,1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == "late-fusion"
    result = invoke("evaluate", *common, "--mask", "train", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mask"] == "train"

    for args, message in (
        (["evaluate", "--mask", "valid"], "--mask valid: use train or train+valid."),
        (["train", "--model", "late-fusion", "--late-fusion-grid", "0,x"], "--late-fusion-grid 0,x"),
    ):
        result = invoke(*args, *common)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_train_defaults_to_recgoat_and_says_what_to_do_without_content(tiny, sample_data_dir, tmp_path):
    data, runs = tiny
    result = invoke("train", "--dataset", str(data), "--workdir", str(runs), "--epochs", "1")
    assert result.exit_code == 2
    assert "has no item content" in result.output and "--model lightgcn" in result.output
    assert not runs.exists() or not any(runs.rglob("manifest.json"))  # refused before anything was built
    trained = invoke("train", "--dataset", str(sample_data_dir), "--workdir", str(tmp_path / "sample-runs"), "--epochs", "1", "--json")
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["model"] == "recgoat"
