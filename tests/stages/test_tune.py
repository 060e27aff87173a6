"""``recgoat tune`` selects on validation, then reads the test split once, for the chosen trial only."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from recgoat_cli.cli.app import app
from recgoat_cli.config import GraphConfig, TrainConfig
from recgoat_cli.errors import UserError
from recgoat_cli.stages.build_graph import run_build_graph
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.tune import grid_text, parse_grid, run_tune, trial_configs

runner = CliRunner()


def test_test_split_is_read_only_after_selection(tiny_dataset, tmp_path, monkeypatch):
    ctx = open_context(str(tiny_dataset), tmp_path)
    graph, _ = run_build_graph(ctx, GraphConfig())
    events: list[str] = []
    original = ctx.dataset.split

    def recording(name):
        events.append(name)
        return original(name)

    monkeypatch.setattr(ctx.dataset, "split", recording)
    base = TrainConfig(model="lightgcn", dim=8, epochs=2)
    artifact, result = run_tune(ctx, base, parse_grid(["lr=0.001,0.05", "n_layers=1,2"]), graph, log=lambda _: events.append("trial done"))
    assert len(result["trials"]) == 4 and sum(r["chosen"] for r in result["trials"]) == 1
    # all four trials had finished before the test split was first read, and no trial finished after it
    first_test = events.index("test")
    assert events[:first_test].count("trial done") == 4 and "trial done" not in events[first_test:]
    chosen = result["chosen"]
    assert chosen["valid_recall@20"] == max(r["valid_recall@20"] for r in result["trials"])
    assert (artifact.path / "trials.csv").read_text().count("\n") == 5
    assert "chosen" in (artifact.path / "results.md").read_text()


def test_random_search_respects_budget(tiny_dataset, tmp_path):
    result = runner.invoke(app, ["build-graph", "--dataset", str(tiny_dataset), "--workdir", str(tmp_path), "--quiet"])
    assert result.exit_code == 0
    result = runner.invoke(app, ["tune", "--dataset", str(tiny_dataset), "--workdir", str(tmp_path), "--model", "mf",
                                 "--epochs", "2", "--grid", "lr=0.001,0.01,0.1", "dim=4,8", "--search", "random", "--budget", "2", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["trials"]) == 2 and set(payload["test"]) >= {"recall@20", "ndcg@10"}


@pytest.mark.parametrize(("spec", "message"), [(["lr"], "KEY=V1,V2"), (["color=red"], "not a train option"), ([], "at least one")])
def test_bad_grids_are_user_errors(spec, message):
    with pytest.raises(UserError, match=message):
        parse_grid(spec)


def test_bad_grid_value_exits_2(tiny_dataset, tmp_path):
    runner.invoke(app, ["build-graph", "--dataset", str(tiny_dataset), "--workdir", str(tmp_path), "--quiet"])
    result = runner.invoke(app, ["tune", "--dataset", str(tiny_dataset), "--workdir", str(tmp_path), "--grid", "lr=-1"])
    assert result.exit_code == 2 and "lr" in result.output and "Traceback" not in result.output


def test_graphs_are_a_grid_key_joined_with_plus():
    base = TrainConfig(model="recgoat")
    configs = trial_configs(base, parse_grid(["graphs=item+user-item,item+user-item+user-user"]), "grid", None, 0)
    assert [c.graphs for c in configs] == [("item", "user-item"), ("item", "user-item", "user-user")]
    assert grid_text(configs[0].graphs) == "item+user-item"
    with pytest.raises(UserError, match="graphs"):
        trial_configs(base, parse_grid(["graphs=item+friends"]), "grid", None, 0)


def test_parallel_trials_equal_sequential_ones(tiny_dataset, tmp_path):
    """--jobs 2 trains the same trials (same artifact ids, same validation scores) as one process does."""
    results = {}
    for jobs in (1, 2):
        ctx = open_context(str(tiny_dataset), tmp_path / f"jobs{jobs}")
        graph, _ = run_build_graph(ctx, GraphConfig())
        base = TrainConfig(model="lightgcn", dim=8, epochs=3)
        _, results[jobs] = run_tune(ctx, base, parse_grid(["lr=0.001,0.05", "n_layers=1,2"]), graph, jobs=jobs)
    sequential, parallel = results[1]["trials"], results[2]["trials"]
    assert [t["train_artifact"] for t in parallel] == [t["train_artifact"] for t in sequential]
    assert [t["valid_recall@20"] for t in parallel] == pytest.approx([t["valid_recall@20"] for t in sequential], abs=1e-6)
    assert results[2]["chosen"]["trial"] == results[1]["chosen"]["trial"]
    assert results[2]["test"] == pytest.approx(results[1]["test"], abs=1e-6)


def test_parallel_failure_is_a_user_error(tiny_dataset, tmp_path):
    """A trial that fails in a worker stops the tune with the worker's one-sentence error."""
    result = runner.invoke(app, ["build-graph", "--dataset", str(tiny_dataset), "--workdir", str(tmp_path), "--quiet"])
    assert result.exit_code == 0
    result = runner.invoke(app, ["tune", "--dataset", str(tiny_dataset), "--workdir", str(tmp_path), "--model", "mf",
                                 "--epochs", "2", "--grid", "lr=0.01,0.02", "--device", "tpu", "--jobs", "2"])
    assert result.exit_code == 2 and "tpu" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "tiny" / "tune").exists()


def test_model_dependent_defaults_follow_each_trial_s_model():
    trials = trial_configs(TrainConfig(model="late-fusion", lr=0.01), parse_grid(["base_model=lightgcn,freedom"]), "grid", None, 0)
    assert [(t.base_model, t.n_layers, t.reg, t.lr) for t in trials] == [("lightgcn", 3, 1e-4, 0.01), ("freedom", 2, 0.0, 0.01)]
    trials = trial_configs(TrainConfig(model="lightgcn", n_layers=4), parse_grid(["model=lightgcn,freedom"]), "grid", None, 0)
    assert [(t.model, t.n_layers, t.reg) for t in trials] == [("lightgcn", 4, 1e-4), ("freedom", 4, 0.0)]
