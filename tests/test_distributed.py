"""Distributed runs: the sharding rules, and real 2-process torchrun jobs (gloo, CPU) on the shipped sample data.

Tolerance of the 2-process run against the single-process one (LightGCN): every step uses exactly the
single-process triples (each rank takes every second triple of the global batch, losses are weighted by the
rank's share), so the two runs differ only in float summation order: per-rank partial sums, the gloo
all-reduce, and one thread per rank instead of two. That is about 1e-7 relative per step; after three epochs
losses agree to 1e-5 relative and embeddings to 1e-4 absolute. Ranking metrics are discontinuous (two items
whose scores differ by less than that noise can swap at the cut-off), so metrics may differ by a few swapped
ranks among 500 users: within 0.01 absolute. Evaluation shards only users, so its metrics agree to 1e-9.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from typer.testing import CliRunner

from recgoat_cli import distributed
from recgoat_cli.cli.app import app
from recgoat_cli.config import EmbedConfig, EvalConfig, GraphConfig, TrainConfig
from recgoat_cli.stages.build_graph import run_build_graph
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.embed import run_embed
from recgoat_cli.stages.evaluate import evaluate_trained
from recgoat_cli.stages.train import load_embeddings, run_train
from recgoat_cli.train.loop import read_log

REPO_ROOT = Path(__file__).resolve().parents[1]
gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="this torch build has no gloo backend for torch.distributed"
)
#: the CLI defaults of `recgoat train` with these overrides, so the in-process and the torchrun runs share a config
TRAIN = {"model": "lightgcn", "dim": 16, "epochs": 3}
TRAIN_FLAGS = ["--model", "lightgcn", "--dim", "16", "--epochs", "3"]


@pytest.mark.parametrize("n", [0, 1, 7, 2048, 4097, 10_000])
@pytest.mark.parametrize(("batch_size", "world"), [(1, 1), (3, 1), (3, 2), (3, 3), (2048, 1), (2048, 2), (2048, 3), (2048, 8)])
def test_rank_rows_are_disjoint_cover_each_batch_and_give_equal_step_counts(n, batch_size, world):
    batches = distributed.epoch_batches(n, batch_size, world)
    taken = []
    for lo, hi in batches:
        shares = [range(n)[distributed.rank_rows(lo, hi, r, world)] for r in range(world)]
        assert all(shares), "every rank gets triples at every step"
        assert sorted(i for share in shares for i in share) == list(range(lo, hi))  # disjoint, exactly the global batch
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
        taken += [i for share in shares for i in share]
    # every rank walks the same list of batches, so all take the same number of optimizer steps; only a final
    # batch too small to give every rank a triple is dropped (never with one process)
    assert batches == [(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)][: len(batches)]
    dropped = n - len(taken)
    assert dropped == 0 if world == 1 else 0 <= dropped < world
    assert sorted(taken) == list(range(len(taken)))


def test_a_global_batch_smaller_than_the_world_is_refused():
    with pytest.raises(ValueError, match="cannot give each of 4 ranks"):
        distributed.epoch_batches(100, 3, 4)


@pytest.mark.parametrize("n", [0, 1, 5, 400, 401])
@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_shard_range_chunks_cover_in_order(n, world):
    chunks = [distributed.shard_range(n, r, world) for r in range(world)]
    assert [i for chunk in chunks for i in chunk] == list(range(n))
    assert max(map(len, chunks)) - min(map(len, chunks)) <= 1


def test_helpers_are_the_identity_without_a_process_group():
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    rows = np.arange(6.0).reshape(3, 2)
    assert distributed.gather_rows(rows) is rows
    assert distributed.broadcast_object({"stop": True}) == {"stop": True}
    assert distributed.all_gather_objects(3) == [3]
    values = torch.tensor([1.0, 2.0])
    assert torch.equal(distributed.sum_across_ranks(values), values)
    assert distributed.backend_for(torch.device("cpu")) == "gloo" and distributed.backend_for(torch.device("cuda", 0)) == "nccl"


def test_commands_that_do_not_shard_refuse_torchrun(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    result = CliRunner().invoke(app, ["build-graph", "--dataset", "sample", "--workdir", str(tmp_path)])
    assert result.exit_code == 2
    assert "`recgoat build-graph` runs on one process" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "sample").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(*args: str, cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2 <args>`` on this checkout, one thread per rank."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
               "--master-port", str(_free_port()), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def trained_both_ways(tmp_path_factory, sample_data_dir):
    """LightGCN trained in-process (one process) and by `torchrun --nproc-per-node 2 -m recgoat_cli train`, same workdir."""
    workdir = tmp_path_factory.mktemp("distributed")
    ctx = open_context(str(sample_data_dir), workdir)
    graph, _ = run_build_graph(ctx, GraphConfig(user_graph="none"))
    single, _ = run_train(ctx, TrainConfig(**TRAIN), graph)
    flags = ["--dataset", str(sample_data_dir), "--workdir", str(workdir), *TRAIN_FLAGS, "--json"]
    process = torchrun("-m", "recgoat_cli", "train", *flags, cwd=workdir)
    return ctx, single, process, workdir


@pytest.mark.slow
@gloo
def test_two_process_training_matches_one_process_and_writes_one_artifact(trained_both_ways):
    ctx, single, process, _ = trained_both_ways
    assert process.returncode == 0, process.stderr[-3000:]
    [payload] = _json_lines(process.stdout)  # only rank 0 prints
    parallel = ctx.store.get("train", payload["artifact_id"])
    assert parallel.id != single.id  # the world size is part of the id; a one-process artifact is not reused
    assert parallel.manifest.summary["world_size"] == 2 and single.manifest.summary["world_size"] == 1
    train_dir = ctx.store.stage_dir("train")
    assert sorted(os.listdir(train_dir)) == sorted([single.id, parallel.id, "latest"])  # no second copy, no leftovers
    assert ctx.store.latest_id("train") == parallel.id
    assert sorted(os.listdir(parallel.path)) == sorted(
        ["best.pt", "last.pt", "log.jsonl", "manifest.json", "user_embeddings.npy", "item_embeddings.npy"]
    )

    one, two = read_log(single.file("log.jsonl")), read_log(parallel.file("log.jsonl"))
    assert [r["epoch"] for r in two] == [1, 2, 3]  # one log line per epoch: rank 0 alone writes it
    for a, b in zip(one, two):
        assert b["loss_bpr"] == pytest.approx(a["loss_bpr"], rel=1e-5)
        assert b["loss_l2"] == pytest.approx(a["loss_l2"], rel=1e-5)
        assert b["valid_recall@20"] == pytest.approx(a["valid_recall@20"], abs=0.01)
    for x, y in zip(load_embeddings(single), load_embeddings(parallel)):
        np.testing.assert_allclose(y, x, atol=1e-4)
    best_one, best_two = single.manifest.summary["best_valid"], parallel.manifest.summary["best_valid"]
    assert best_two["recall@20"] == pytest.approx(best_one["recall@20"], abs=0.01)


WORKER = """
import json
import sys

import torch

from recgoat_cli import distributed
from recgoat_cli.config import EmbedConfig, EvalConfig, TrainConfig
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.embed import run_embed
from recgoat_cli.stages.evaluate import run_evaluate
from recgoat_cli.stages.train import run_train
from recgoat_cli.train.loop import read_log

data, workdir = sys.argv[1], sys.argv[2]


def interrupt(record):
    if record["epoch"] == 2:
        raise KeyboardInterrupt


with distributed.process_group(torch.device("cpu")):
    ctx = open_context(data, workdir)
    embedded, _ = run_embed(ctx, EmbedConfig(**{embed}))
    config, graph = TrainConfig(**{train}), ctx.store.get("build-graph")
    try:
        run_train(ctx, config, graph, on_epoch=interrupt)
    except KeyboardInterrupt:
        pass
    [work_dir] = [p for p in ctx.store.stage_dir("train").glob(".work-*") if p.is_dir()]
    interrupted = {
        "latest": ctx.store.latest_id("train"),
        "logged_epochs": [r["epoch"] for r in read_log(work_dir / "log.jsonl")],
        "rank_rng_states": len(torch.load(work_dir / "last.pt", weights_only=True)["rank_rng_states"]),
    }
    distributed.barrier()  # every rank has read the interrupted state before rank 0 goes on
    resumed, cached = run_train(ctx, config, graph, resume=True)
    evaluated, _ = run_evaluate(ctx, EvalConfig(), resumed)
    if distributed.is_main():
        print(json.dumps({"embed": embedded.id, "interrupted": interrupted, "resumed": resumed.id, "cached": cached, "evaluate": evaluated.id}))
"""
EMBED = {"text_model": None, "image_encoder": "descriptor"}


@pytest.fixture(scope="module")
def worker_run(tmp_path_factory, sample_data_dir):
    """One 2-process job over the stage functions: embed, train interrupted after epoch 2, resume, evaluate."""
    workdir = tmp_path_factory.mktemp("worker")
    ctx = open_context(str(sample_data_dir), workdir)
    run_build_graph(ctx, GraphConfig(user_graph="none"))
    worker = workdir / "worker.py"
    worker.write_text(WORKER.replace("{embed}", repr(EMBED)).replace("{train}", repr(TRAIN)))
    process = torchrun(str(worker), str(sample_data_dir), str(workdir), cwd=workdir)
    assert process.returncode == 0, process.stderr[-3000:]
    [report] = _json_lines(process.stdout)
    return ctx, report


@pytest.mark.slow
@gloo
def test_two_process_embed_gathers_every_item_in_order(worker_run, sample_data_dir, tmp_path):
    ctx, report = worker_run
    single, _ = run_embed(open_context(str(sample_data_dir), tmp_path), EmbedConfig(**EMBED))
    assert report["embed"] == single.id  # how many processes encode is not part of the result
    parallel = ctx.store.get("embed", report["embed"])
    for name in ("item_image.npy", "users.npy"):
        np.testing.assert_array_equal(np.load(parallel.file(name)), np.load(single.file(name)))
    assert json.loads(parallel.file("modalities.json").read_text()) == json.loads(single.file("modalities.json").read_text())


@pytest.mark.slow
@gloo
def test_interrupted_two_process_run_resumes_to_the_same_result(worker_run, trained_both_ways):
    ctx, report = worker_run
    straight_ctx, _, process, _ = trained_both_ways
    straight = straight_ctx.store.get("train", _json_lines(process.stdout)[0]["artifact_id"])
    # interrupted after epoch 2: nothing under a real id, rank 0's log and checkpoint hold both ranks' RNG states
    assert report["interrupted"] == {"latest": None, "logged_epochs": [1, 2], "rank_rng_states": 2}
    resumed = ctx.store.get("train", report["resumed"])
    assert not report["cached"] and resumed.id == straight.id
    assert all(np.array_equal(x, y) for x, y in zip(load_embeddings(straight), load_embeddings(resumed)))

    def losses(artifact):
        return [{k: v for k, v in r.items() if k.startswith(("epoch", "loss", "valid"))} for r in read_log(artifact.file("log.jsonl"))]

    assert losses(resumed) == losses(straight)


@pytest.mark.slow
@gloo
def test_two_process_evaluate_matches_one_process(worker_run):
    ctx, report = worker_run
    evaluated = ctx.store.get("evaluate", report["evaluate"])
    expected = evaluate_trained(ctx, EvalConfig(), ctx.store.get("train", report["resumed"]))
    assert evaluated.manifest.summary["n_users"] == expected["n_users"] == 500
    assert evaluated.manifest.summary["metrics"] == pytest.approx(expected["metrics"], abs=1e-9)
    assert sorted(os.listdir(ctx.store.stage_dir("evaluate"))) == sorted([evaluated.id, "latest"])  # written once
