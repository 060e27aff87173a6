"""--content-control shuffle: the LM rows permuted, the kNN graphs relabelled to what the permuted rows give."""

from __future__ import annotations

import numpy as np
import torch

from recgoat_cli.stages.train import relabelled_edges, shuffled_content


def knn_edges(features: np.ndarray, k: int) -> set[tuple[int, int]]:
    """Naive cosine kNN (neighbour -> node), no self-edges, as a set of pairs."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return {(int(j), i) for i in range(len(features)) for j in np.argsort(-similarity[i], kind="stable")[:k]}


def test_shuffled_rows_and_relabelled_graph_match_a_graph_built_from_the_shuffled_rows():
    rng = np.random.default_rng(3)
    items = {"text": rng.standard_normal((12, 5)).astype(np.float32)}
    users = rng.standard_normal((7, 5)).astype(np.float32)
    shuffled, shuffled_users, item_order, user_order = shuffled_content(items, users, seed=11)
    assert sorted(item_order.tolist()) == list(range(12)) and item_order.tolist() != list(range(12))
    assert np.array_equal(shuffled["text"][4], items["text"][item_order[4]])
    assert np.array_equal(shuffled_users[2], users[user_order[2]])
    original = torch.tensor(sorted(knn_edges(items["text"], 3))).T
    relabelled = {tuple(pair) for pair in relabelled_edges(original, item_order).T.tolist()}
    assert relabelled == knn_edges(shuffled["text"], 3)
    # the same seed draws the same permutation (the control is reproducible)
    assert np.array_equal(shuffled_content(items, users, seed=11)[2], item_order)
