"""Tests for recgoat_cli/graphs/stats.py."""

from __future__ import annotations

import json

import numpy as np
import torch

from recgoat_cli.graphs.stats import graph_stats


def test_hand_example_symmetric_with_duplicate_and_self_loop():
    # Undirected 0-1 and 1-2 (stored both ways, 0->1 twice), a self-loop on 3, node 4 alone.
    rows = np.array([0, 1, 1, 2, 0, 3])
    cols = np.array([1, 0, 2, 1, 1, 3])
    stats = graph_stats(rows, cols, 5)
    assert stats == {
        "nodes": 5,
        "edges": 5,
        "self_loops": 1,
        "degree_min": 0,
        "degree_median": 1.0,
        "degree_max": 2,
        "degree_mean": 1.0,
        "isolated_nodes": 2,
        "symmetric": True,
    }
    json.dumps(stats)


def test_directed_edge_makes_graph_asymmetric():
    stats = graph_stats(torch.tensor([0, 1, 2]), torch.tensor([1, 0, 0]), 3)
    assert stats["symmetric"] is False
    assert stats["isolated_nodes"] == 0
    assert stats["degree_max"] == 1 and stats["edges"] == 3


def test_empty_graph():
    stats = graph_stats(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 4)
    assert stats["edges"] == 0 and stats["isolated_nodes"] == 4 and stats["symmetric"] is True
    assert stats["degree_max"] == 0 and stats["degree_mean"] == 0.0
