"""``train --model late-fusion`` (and ``--model freedom``) end to end on a tiny dataset with feature files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recgoat_cli.config import EmbedConfig, EvalConfig, ExportConfig, GraphConfig, TrainConfig
from recgoat_cli.errors import UserError
from recgoat_cli.eval.ranker import evaluate_ranking
from recgoat_cli.model.late_fusion import centred_unit_rows
from recgoat_cli.stages.build_graph import run_build_graph
from recgoat_cli.stages.common import open_context, split_csr
from recgoat_cli.stages.embed import run_embed
from recgoat_cli.stages.evaluate import run_evaluate
from recgoat_cli.stages.export import run_export
from recgoat_cli.stages.train import load_embeddings, run_train

GRID = (0.0, 0.5, 2.0)


@pytest.fixture()
def pipeline(tiny_dataset, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tiny_dataset / "text_feat.npy", rng.standard_normal((30, 6)).astype(np.float32))
    ctx = open_context(str(tiny_dataset), tmp_path / "runs")
    embed, _ = run_embed(ctx, EmbedConfig(text_model=None, image_encoder="none", device="cpu"))
    graph, _ = run_build_graph(ctx, GraphConfig(knn_k=3, user_knn_k=3), embed)
    return ctx, graph


def zscores(scores: np.ndarray) -> np.ndarray:
    return (scores - scores.mean(axis=1, keepdims=True)) / np.maximum(scores.std(axis=1, keepdims=True), 1e-12)


def test_late_fusion_chooses_its_weight_on_valid_and_evaluate_uses_it(pipeline):
    ctx, graph = pipeline
    config = TrainConfig(model="late-fusion", dim=8, epochs=4, late_fusion_grid=GRID, device="cpu")
    fused, cached = run_train(ctx, config, graph)
    summary = fused.manifest.summary
    # the base is the plain LightGCN artifact of the same options: training it again is a cache hit
    base, base_cached = run_train(ctx, TrainConfig(model="lightgcn", dim=8, epochs=4, device="cpu"), graph)
    assert not cached and base_cached and summary["base_artifact"] == base.id

    # the fused scores are z(base) + w z(content), content = sum of centred cosines to the user's train items
    base_users, base_items = load_embeddings(base)
    features = centred_unit_rows(torch.from_numpy(np.load(ctx.dataset.feature_files["text"]))).double().numpy()
    indptr, indices = split_csr(ctx.dataset, "train")
    train = np.zeros((ctx.dataset.n_users, ctx.dataset.n_items))
    for u in range(ctx.dataset.n_users):
        train[u, indices[indptr[u] : indptr[u + 1]]] = 1.0
    base_z, content_z = zscores(base_users @ base_items.T), zscores(train @ features @ features.T)

    # the chosen weight is the grid's best on valid (train items masked), the smaller one on a tie
    valid = split_csr(ctx.dataset, "valid")
    eye = torch.eye(ctx.dataset.n_users, dtype=torch.float64)

    def valid_recall(weight):
        blend = torch.from_numpy(base_z + weight * content_z)
        return evaluate_ranking(eye, blend.T.contiguous(), *valid, indptr, indices, ks=[20], metrics=["recall"]).metrics["recall@20"]

    scores = {w: valid_recall(w) for w in GRID}
    chosen = max(GRID, key=lambda w: (scores[w], -w))
    assert summary["late_fusion_weights"] == {"text": chosen}
    assert summary["best_valid"]["recall@20"] == pytest.approx(scores[chosen])
    users, items = load_embeddings(fused)
    assert np.allclose(users @ items.T, base_z + chosen * content_z, atol=1e-4)

    # evaluate and export rank the fused scores
    evaluated, _ = run_evaluate(ctx, EvalConfig(split="valid", ks=(20,), metrics=("recall",), device="cpu"), fused)
    assert evaluated.manifest.summary["metrics"]["recall@20"] == pytest.approx(scores[chosen])
    exported, _ = run_export(ctx, ExportConfig(top_k=3, format="csv", device="cpu"), fused)
    assert exported.manifest.summary["lineage"]["train"] == fused.id


def test_late_fusion_needs_an_embed_artifact(tiny_dataset, tmp_path):
    ctx = open_context(str(tiny_dataset), tmp_path / "runs")
    graph, _ = run_build_graph(ctx, GraphConfig())
    with pytest.raises(UserError, match="--model late-fusion needs LM representations"):
        run_train(ctx, TrainConfig(model="late-fusion", dim=8, epochs=2), graph)


def test_freedom_defaults_are_mmrec_s():
    config = TrainConfig(model="freedom")
    assert (config.n_layers, config.reg, config.freedom_dropout, config.freedom_knn_k, config.freedom_image_weight) == (2, 0.0, 0.8, 10, 0.1)
    assert TrainConfig(model="freedom", n_layers=3, reg=1e-3).n_layers == 3
    assert TrainConfig(model="late-fusion", base_model="freedom").n_layers == 2
    assert (TrainConfig(model="lightgcn").n_layers, TrainConfig(model="lightgcn").reg) == (3, 1e-4)


def test_freedom_trains_deterministically_and_resumes_exactly(pipeline):
    ctx, graph = pipeline
    config = TrainConfig(model="freedom", dim=8, epochs=4, patience=50, freedom_knn_k=3, device="cpu")
    straight, _ = run_train(ctx, config, graph)
    assert straight.manifest.summary["model_args"]["modalities"] == [["text", 6]]

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    other = config.model_copy(update={"seed": 7})
    with pytest.raises(KeyboardInterrupt):
        run_train(ctx, other, graph, on_epoch=stop_after_two)
    resumed, _ = run_train(ctx, other, graph, resume=True)
    ctx.force = True
    again, _ = run_train(ctx, other, graph)
    assert resumed.id == again.id
    # the pruned graph of each epoch is drawn from (seed, epoch): the resumed run equals the uninterrupted one
    assert all(np.array_equal(x, y) for x, y in zip(load_embeddings(resumed), load_embeddings(again)))
    assert not np.array_equal(load_embeddings(straight)[1], load_embeddings(again)[1])
