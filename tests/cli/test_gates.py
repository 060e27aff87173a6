"""``recgoat evaluate --fail-below``: exit 0 above the gates, 3 below (metrics still printed), 2 for a bad gate."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_tiny_dataset  # tests/ is on sys.path under pytest
from typer.testing import CliRunner

from recgoat_cli.cli.app import app
from recgoat_cli.errors import GateFailure, UserError
from recgoat_cli.eval.gates import Gate, check_gates, gate_results, parse_gates

METRICS = ("recall", "ndcg", "precision", "hit", "map")
runner = CliRunner()


# --- parsing and checking (pure) ------------------------------------------------------------------------


def test_parse_gates_reads_metric_k_and_threshold():
    gates = parse_gates(["recall@20=0.05", "ndcg@10=2e-2", " map@20=0"], METRICS, (10, 20))
    assert gates == [Gate("recall@20", 0.05), Gate("ndcg@10", 0.02), Gate("map@20", 0.0)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("recal@20=0.05", "unknown metric 'recal'; use one of hit, map, ndcg, precision, recall"),
        ("recall@50=0.05", "recall@50 is not evaluated (--k 10 20); add --k 50"),
        ("recall@20=x", "the threshold 'x' is not a finite number"),
        ("recall@20=nan", "the threshold 'nan' is not a finite number"),
        ("recall@0=0.1", "K must be a positive integer"),
        ("recall@ten=0.1", "K must be a positive integer"),
        ("recall@20", "write each gate as METRIC@K=THRESHOLD"),
        ("recall=0.1", "write each gate as METRIC@K=THRESHOLD"),
    ],
)
def test_malformed_gate_is_a_user_error_that_says_the_fix(spec, message):
    with pytest.raises(UserError, match=re.escape(f"--fail-below {spec}: ")) as caught:
        parse_gates([spec], METRICS, (10, 20))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("value", "threshold", "passed"),
    [(0.05, 0.05, True), (0.0500001, 0.05, True), (0.0499999, 0.05, False), (0.0, 0.0, True), (math.nan, 0.0, False)],
)
def test_gate_passes_at_or_above_its_threshold_only(value, threshold, passed):
    (result,) = gate_results({"recall@20": value}, [Gate("recall@20", threshold)])
    assert result.passed is passed


def test_check_gates_names_every_failed_metric_value_and_threshold():
    metrics = {"recall@20": 0.03125, "ndcg@20": 0.5, "hit@10": 0.01}
    gates = [Gate("recall@20", 0.05), Gate("ndcg@20", 0.02), Gate("hit@10", 0.2)]
    with pytest.raises(GateFailure) as caught:
        check_gates(gate_results(metrics, gates))
    assert str(caught.value) == "recall@20 = 0.03125 is below 0.05; hit@10 = 0.01 is below 0.2."
    check_gates(gate_results(metrics, gates[1:2]))  # all pass: returns


# --- through the command line -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained MF model, shared by this file's tests; returns the ``--dataset/--workdir`` arguments."""
    root = tmp_path_factory.mktemp("gates")
    common = ["--dataset", str(make_tiny_dataset(root / "data")), "--workdir", str(root / "runs")]
    for args in (["build-graph"], ["train", "--model", "mf", "--epochs", "2", "--dim", "8"]):
        result = runner.invoke(app, [*args, *common, "--quiet"])
        assert result.exit_code == 0, result.output
    return common


def _evaluate(common, *gates):
    return runner.invoke(app, ["evaluate", *common, "--k", "5", "20", "--json", "--fail-below", *gates])


def test_gates_above_exit_0_and_report_each_gate(trained):
    result = _evaluate(trained, "recall@20=0", "ndcg@5=0.0")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [g["metric"] for g in payload["gates"]] == ["recall@20", "ndcg@5"]
    assert all(g["passed"] for g in payload["gates"])
    assert payload["gates"][0]["value"] == payload["metrics"]["recall@20"]


def test_gate_below_exits_3_after_printing_the_metrics(trained):
    result = _evaluate(trained, "recall@20=0", "ndcg@20=1.01", "hit@5=1.5")
    assert result.exit_code == GateFailure.exit_code == 3
    payload = json.loads(result.stdout)  # the metrics are still on stdout
    ndcg, hit = payload["metrics"]["ndcg@20"], payload["metrics"]["hit@5"]
    assert [g["passed"] for g in payload["gates"]] == [True, False, False]
    assert f"gate failed: ndcg@20 = {ndcg:.6g} is below 1.01; hit@5 = {hit:.6g} is below 1.5." in result.stderr
    assert "recall@20" not in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("gate", "message"),
    [("recal@20=0.05", "unknown metric 'recal'"), ("recall@10=0.05", "add --k 10"), ("recall@20=x", "'x' is not a finite number")],
)
def test_malformed_gate_exits_2_before_evaluating(trained, gate, message):
    result = runner.invoke(app, ["evaluate", *trained, "--k", "5", "20", "--split", "valid", "--json", "--fail-below", gate])
    assert result.exit_code == UserError.exit_code == 2
    assert message in result.stderr and result.stdout == ""
    evaluated = Path(trained[3]) / "tiny" / "evaluate"
    assert not any(json.loads(p.read_text())["split"] == "valid" for p in evaluated.glob("*/metrics.json"))  # nothing ranked


def test_exit_codes_reach_the_shell(trained, tmp_path):
    command = [sys.executable, "-m", "recgoat_cli", "evaluate", *trained, "--k", "20", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

    def shell(*gates: str) -> subprocess.CompletedProcess:
        return subprocess.run([*command, "--fail-below", *gates], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    below = shell("recall@20=0", "ndcg@20=1.01")
    assert below.returncode == 3, below.stderr
    assert "recall@20" in json.loads(below.stdout)["metrics"]
    assert "gate failed: ndcg@20 = " in below.stderr and "is below 1.01." in below.stderr

    malformed = shell("recal@20=0.05")
    assert malformed.returncode == 2 and "unknown metric 'recal'" in malformed.stderr
