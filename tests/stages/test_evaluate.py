"""``evaluate --mask``: which known items are never ranked, on a hand-made model with hand-computed recall."""

from __future__ import annotations

import numpy as np
import pytest

from recgoat_cli.artifacts.store import write_manifest
from recgoat_cli.config import EvalConfig
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.evaluate import masked_splits, run_evaluate


@pytest.mark.parametrize(
    ("split", "mask", "expected"),
    [("test", "train+valid", ("train", "valid")), ("test", "train", ("train",)), ("valid", "train+valid", ("train",)), ("valid", "train", ("train",))],
)
def test_masked_splits_never_mask_the_evaluated_split(split, mask, expected):
    assert masked_splits(split, mask) == expected


@pytest.fixture()
def hand_model(tmp_path):
    """2 users, 5 items. User 0: train 0, valid 1, test 2; user 1: train 3, valid 4, test 0.

    Scores are user (1 or -1) times item (5, 4, 3, 2, 1): user 0 ranks 0 1 2 3 4, user 1 ranks 4 3 2 1 0.
    """
    folder = tmp_path / "data" / "hand"
    folder.mkdir(parents=True)
    rows = [(0, 0, 0), (0, 1, 1), (0, 2, 2), (1, 3, 0), (1, 4, 1), (1, 0, 2)]
    (folder / "hand.inter").write_text("userID\titemID\tx_label\n" + "".join(f"{u}\t{i}\t{x}\n" for u, i, x in rows))
    ctx = open_context(str(folder), tmp_path / "runs")
    with ctx.store.writer("train", "handmade") as out:
        np.save(out / "user_embeddings.npy", np.array([[1.0], [-1.0]], dtype=np.float32))
        np.save(out / "item_embeddings.npy", np.array([[5.0], [4.0], [3.0], [2.0], [1.0]], dtype=np.float32))
        write_manifest(out, stage="train", artifact_id="handmade", dataset=ctx.key, config={"model": "hand"}, inputs=ctx.dataset.input_hashes(), summary={"model": "hand"})
    return ctx, ctx.store.get("train", "handmade")


def test_mask_train_ranks_valid_items_on_test(hand_model):
    ctx, trained = hand_model
    default, _ = run_evaluate(ctx, EvalConfig(ks=(1, 2), metrics=("recall",), device="cpu"), trained)
    train_only, _ = run_evaluate(ctx, EvalConfig(ks=(1, 2), metrics=("recall",), mask="train", device="cpu"), trained)
    # train+valid: user 0's top 1 is item 2 (hit), user 1's is item 2 (miss); top 2 adds 3 and 1: still 1 of 2
    assert default.manifest.summary["metrics"] == {"recall@1": 0.5, "recall@2": 0.5}
    assert default.manifest.summary["mask"] == "train+valid"
    # train only: both users' top 1 is their valid item (miss); user 0's top 2 (1, 2) then hits
    assert train_only.manifest.summary["metrics"] == {"recall@1": 0.0, "recall@2": 0.5}
    assert train_only.manifest.summary["mask"] == "train"
    assert train_only.id != default.id


def test_mask_on_valid_masks_train_only(hand_model):
    ctx, trained = hand_model
    for mask in ("train", "train+valid"):
        result, _ = run_evaluate(ctx, EvalConfig(ks=(1,), metrics=("recall",), split="valid", mask=mask, device="cpu"), trained)
        assert result.manifest.summary["metrics"] == {"recall@1": 1.0}  # each user's top item is the valid one


def test_default_mask_keeps_the_earlier_artifact_id():
    config = EvalConfig(ks=(10, 20))
    assert "mask" not in config.semantic_dump()
    assert EvalConfig(ks=(10, 20), mask="train").semantic_dump()["mask"] == "train"


def test_report_keeps_mask_train_results_apart(hand_model):
    from recgoat_cli.stages.report import collect_report

    ctx, trained = hand_model
    run_evaluate(ctx, EvalConfig(ks=(1,), metrics=("recall",), device="cpu"), trained)
    run_evaluate(ctx, EvalConfig(ks=(1,), metrics=("recall",), mask="train", device="cpu"), trained)
    _, tests = collect_report(ctx.store)
    by_model = {t.model: t.metrics["recall@1"] for t in tests}
    assert by_model == {"hand": 0.5, "hand (mask train)": 0.0}
