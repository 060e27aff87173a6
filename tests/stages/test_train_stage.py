"""Training is deterministic on CPU, resumes exactly, selects on validation only, and caches by config."""

from __future__ import annotations

import numpy as np
import pytest

from recgoat_cli.config import GraphConfig, TrainConfig
from recgoat_cli.stages.build_graph import run_build_graph
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.train import load_embeddings, run_train


@pytest.fixture()
def tiny(tiny_dataset):
    return tiny_dataset


def _train(data, workdir, **overrides):
    ctx = open_context(str(data), workdir)
    graph, _ = run_build_graph(ctx, GraphConfig())
    config = TrainConfig(**{"model": "lightgcn", "dim": 8, "epochs": 4, "patience": 50, **overrides})
    return ctx, graph, config


@pytest.mark.parametrize("model", ["mf", "lightgcn"])
def test_same_seed_same_embeddings(tiny, tmp_path, model):
    results = []
    for run in ("a", "b"):
        ctx, graph, config = _train(tiny, tmp_path / run, model=model)
        artifact, cached = run_train(ctx, config, graph)
        assert not cached
        results.append(load_embeddings(artifact))
    assert all(np.array_equal(x, y) for x, y in zip(results[0], results[1]))


def test_interrupted_run_resumes_to_the_same_result(tiny, tmp_path):
    ctx, graph, config = _train(tiny, tmp_path / "straight")
    straight, _ = run_train(ctx, config, graph)

    ctx, graph, config = _train(tiny, tmp_path / "interrupted")

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_train(ctx, config, graph, on_epoch=stop_after_two)
    assert ctx.store.latest_id("train") is None  # nothing half-written under a real id
    resumed, cached = run_train(ctx, config, graph, resume=True)
    assert not cached and resumed.id == straight.id
    assert all(np.array_equal(x, y) for x, y in zip(load_embeddings(straight), load_embeddings(resumed)))
    assert resumed.manifest.summary["best_epoch"] == straight.manifest.summary["best_epoch"]


def test_cache_hit_and_new_id_for_new_config(tiny, tmp_path):
    ctx, graph, config = _train(tiny, tmp_path / "w")
    first, _ = run_train(ctx, config, graph)
    again, cached = run_train(ctx, config, graph)
    assert cached and again.id == first.id
    other, cached = run_train(ctx, config.model_copy(update={"lr": 0.01}), graph)
    assert not cached and other.id != first.id


def test_a_result_changing_revision_changes_only_the_affected_ids(tiny, tmp_path):
    from recgoat_cli.artifacts.manifest import compute_artifact_id
    from recgoat_cli.stages.train import STAGE, result_revision, train_artifact_id

    ctx, graph, config = _train(tiny, tmp_path / "w")

    def plain_id(cfg):  # the id before revisions existed
        return compute_artifact_id(STAGE, cfg.semantic_dump(), [graph.id], ctx.dataset.input_hashes())

    lm = config.model_copy(update={"model": "recgoat", "gat_values": "lm", "content_score": False})
    assert result_revision(lm) == 2 and train_artifact_id(ctx, lm, graph, None) != plain_id(lm)
    content = config.model_copy(update={"model": "recgoat", "gat_values": "id", "content_score": True})
    assert result_revision(content) == 3 and train_artifact_id(ctx, content, graph, None) != plain_id(content)
    for unchanged in (config, config.model_copy(update={"model": "recgoat", "gat_values": "id", "content_score": False})):
        assert result_revision(unchanged) == 1 and train_artifact_id(ctx, unchanged, graph, None) == plain_id(unchanged)


def test_training_never_reads_the_test_split(tiny, tmp_path, monkeypatch):
    ctx, graph, config = _train(tiny, tmp_path / "w")
    original = ctx.dataset.split

    def guarded(name):
        assert name != "test", "training read the test split"
        return original(name)

    monkeypatch.setattr(ctx.dataset, "split", guarded)
    artifact, _ = run_train(ctx, config, graph)
    assert "recall@20" in artifact.manifest.summary["best_valid"]


def test_a_failed_artifact_write_keeps_the_training_folder_for_resume(tmp_path):
    """The train artifact takes the work folder's files through the store's writer; a full disk while writing it
    (here raised by the body, as np.save would) leaves them all in the work folder and the stage folder clean."""
    import errno

    from recgoat_cli.artifacts.store import ArtifactStore, ArtifactWriteError
    from recgoat_cli.stages.train import linked_into

    store = ArtifactStore(tmp_path / "runs", "tiny")
    work = store.ensure_stage_dir("train") / ".work-abc"
    work.mkdir()
    (work / "last.pt").write_bytes(b"checkpoint")
    (work / "log.jsonl").write_text("{}\n")
    with pytest.raises(ArtifactWriteError) as caught:
        with store.writer("train", "abc") as out, linked_into(work, out):
            assert (out / "last.pt").read_bytes() == b"checkpoint"
            raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.reason == "No space left on device"
    assert sorted(p.name for p in work.iterdir()) == ["last.pt", "log.jsonl"]
    assert (work / "last.pt").read_bytes() == b"checkpoint"
    assert sorted(p.name for p in store.stage_dir("train").iterdir()) == [".work-abc"]
    assert store.latest_id("train") is None
