"""The TorchScript scorer ranks exactly as ``rank_users`` (ties included) and serves original ids without recgoat."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig

import numpy as np
import polars as pl
import pytest
import torch

from recgoat_cli.config import ExportConfig, GraphConfig, TrainConfig
from recgoat_cli.eval.ranker import csr_from_pairs, rank_users
from recgoat_cli.stages.build_graph import run_build_graph
from recgoat_cli.stages.common import open_context
from recgoat_cli.stages.export import run_export
from recgoat_cli.export.scorer import METADATA_NAME, build_scorer, save_scorer
from recgoat_cli.stages.train import run_train

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")


def _reloaded(scorer, tmp_path):
    """The scorer after a save/load round trip, as a server would get it."""
    save_scorer(scorer, tmp_path / "scorer.pt")
    return torch.jit.load(tmp_path / "scorer.pt")


def test_hand_computed_lists_with_ties_and_exclusions():
    users = np.array([[1, 0], [0, 1]], dtype=np.float32)
    items = np.array([[1, 0], [1, 0], [0, 1], [2, 0]], dtype=np.float32)
    indptr, indices = csr_from_pairs(np.array([0]), np.array([3]), 2, 4)  # user a has seen item z
    scorer = build_scorer(users, items, indptr, indices, ["a", "b"], ["w", "x", "y", "z"], {"train": "t1"})
    lists, scores = scorer.recommend(["b", "a"], 3)
    # b: scores w0 x0 y1 z0 -> y, then the ties w, x (lower index first); a: w1 x1 y0, z excluded
    assert lists == [["y", "w", "x"], ["w", "x", "y"]]
    assert scores.tolist() == [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    lists, scores = scorer.recommend(["a"], 5)  # only 3 unseen items: a shorter list, -inf scores after it
    assert lists == [["w", "x", "y"]] and scores.tolist() == [[1.0, 1.0, 0.0, float("-inf"), float("-inf")]]
    assert scorer.lineage == {"train": "t1"}


@pytest.mark.parametrize(("n_users", "n_items", "dim", "k"), [(5, 9, 2, 3), (17, 40, 4, 10), (8, 6, 3, 10), (30, 300, 3, 20)])
def test_same_lists_as_rank_users_on_data_with_ties(n_users, n_items, dim, k, tmp_path):
    rng = np.random.default_rng(n_users * 1000 + n_items)
    # Entries in {-1, 0, 1}: integer scores are exact in any summation order and tie often.
    users = rng.integers(-1, 2, (n_users, dim)).astype(np.float32)
    items = rng.integers(-1, 2, (n_items, dim)).astype(np.float32)
    users[0] = 0.0  # every item ties for this user
    pairs = rng.random((n_users, n_items)) < 0.3
    pairs[1] = True  # this user has seen everything: an empty list
    pairs[2] = False
    indptr, indices = csr_from_pairs(*np.nonzero(pairs), n_users, n_items)
    user_ids = [f"user-{u}" for u in rng.permutation(n_users)]
    item_ids = [f"item-{i}" for i in rng.permutation(n_items)]

    expected_ids, expected_scores = rank_users(
        torch.from_numpy(users), torch.from_numpy(items), torch.arange(n_users), indptr, indices, k
    )
    scorer = _reloaded(build_scorer(users, items, indptr, indices, user_ids, item_ids), tmp_path)
    order = rng.permutation(n_users)
    ids, scores = scorer.recommend_indices(torch.from_numpy(order), k)
    assert torch.equal(ids, expected_ids[order]) and torch.equal(scores, expected_scores[order])

    lists, scores = scorer.recommend([user_ids[u] for u in order], k)
    assert lists == [[item_ids[i] for i in row if i >= 0] for row in expected_ids[order].tolist()]
    assert lists[list(order).index(1)] == [] and len(lists[list(order).index(2)]) == min(k, n_items)
    assert torch.equal(scores, expected_scores[order])


def test_unknown_user_and_bad_k_raise_inside_the_scorer():
    scorer = build_scorer(np.ones((2, 2), np.float32), np.ones((3, 2), np.float32), np.zeros(3, np.int64), np.zeros(0, np.int64), ["a", "b"], ["x", "y", "z"])
    with pytest.raises(torch.jit.Error, match="unknown user id 'nobody'"):
        scorer.recommend(["a", "nobody"], 2)
    with pytest.raises(torch.jit.Error, match="k must be a positive integer"):
        scorer.recommend(["a"], 0)


# A plain torch process: -S skips site-packages' .pth files (and with them recgoat's editable install),
# -I ignores PYTHONPATH and the working directory; only site-packages itself goes on sys.path, for torch.
STANDALONE = """
import json, sys, warnings
sys.path.append(sys.argv[1])
try:
    import recgoat_cli
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("recgoat_cli is importable from " + recgoat_cli.__file__)
import torch
warnings.simplefilter("ignore", FutureWarning)
scorer = torch.jit.load(sys.argv[2])
items, scores = scorer.recommend(json.loads(sys.argv[3]), int(sys.argv[4]))
try:
    scorer.recommend(["no-such-user"], 1)
    unknown = None
except torch.jit.Error as error:
    unknown = str(error).strip().splitlines()[-1]
print(json.dumps({"items": items, "scores": scores.tolist(), "lineage": dict(scorer.lineage), "unknown": unknown}))
"""


def _original_item(item: int) -> str:
    shuffled = 11 * item % 30
    return f"{chr(ord('A') + shuffled % 26)}{shuffled // 26}"


def _with_original_ids(folder, n_users=40, n_items=30):
    """Id maps with two-character original ids: user u is ``50 + 7u mod 40``, item i is a letter and a digit."""
    (folder / "u_id_mapping.csv").write_text("user_id,userID\n" + "".join(f"{50 + 7 * u % n_users},{u}\n" for u in range(n_users)))
    (folder / "i_id_mapping.csv").write_text("item_id,itemID\n" + "".join(f"{_original_item(i)},{i}\n" for i in range(n_items)))
    return folder


def test_exported_scorer_runs_without_recgoat_and_matches_the_parquet_export(tiny_dataset, tmp_path):
    ctx = open_context(str(_with_original_ids(tiny_dataset)), tmp_path / "runs")
    graph, _ = run_build_graph(ctx, GraphConfig())
    trained, _ = run_train(ctx, TrainConfig(model="lightgcn", dim=8, epochs=2), graph)
    lists, _ = run_export(ctx, ExportConfig(top_k=5, format="parquet", device="cpu"), trained)
    exported, cached = run_export(ctx, ExportConfig(top_k=5, format="torchscript", device="cpu"), trained)
    assert not cached and (exported.path / "scorer.pt").is_file()
    chain = exported.manifest.summary["lineage"]
    assert chain == json.loads((exported.path / "lineage.json").read_text())["artifacts"]
    assert chain["train"] == trained.id and chain["build-graph"] == graph.id
    assert exported.manifest.upstream_id("train") == trained.id
    metadata = {METADATA_NAME: ""}
    torch.jit.load(exported.path / "scorer.pt", _extra_files=metadata)
    assert json.loads(metadata[METADATA_NAME]) == {"dataset": "tiny", "exclude": "train", "lineage": chain}

    frame = pl.read_parquet(lists.path / "recommendations.parquet").sort(["user_id", "rank"])
    users = ["50", "71", "89", "57"]  # original ids of internal users 0, 3, 17 and 1
    process = subprocess.run(
        [sys.executable, "-I", "-S", "-c", STANDALONE, sysconfig.get_paths()["purelib"], str(exported.path / "scorer.pt"), json.dumps(users), "5"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert process.returncode == 0, process.stderr
    served = json.loads(process.stdout)
    for user, items, scores in zip(users, served["items"], served["scores"]):
        rows = frame.filter(pl.col("user_id") == user)
        assert items == rows["item_id"].to_list()
        np.testing.assert_allclose(scores, rows["score"].to_numpy(), rtol=1e-5, atol=1e-6)
        train_users, train_items = ctx.dataset.split("train")
        assert not set(items) & {_original_item(i) for i in train_items[train_users == _internal(user)]}
    assert served["lineage"] == chain
    assert "unknown user id 'no-such-user'" in served["unknown"]


def _internal(original_user: str, n_users: int = 40) -> int:
    """Internal id of ``50 + 7u mod 40``: 7 * 23 = 161 = 1 (mod 40), so u = 23 * (original - 50) mod 40."""
    return 23 * (int(original_user) - 50) % n_users
