"""Tests of recgoat_cli/stages/run_labels.py: runs named by the configuration keys that tell them apart."""

from __future__ import annotations

import pytest

from recgoat_cli.stages.run_labels import differing_keys, format_value, run_labels


def labels(*runs):
    return [named.label for named in run_labels(runs)]


def test_two_variants_of_one_model_are_named_by_the_differing_key():
    base = {"model": "recgoat", "dim": 64, "lr": 0.001, "device": "cpu", "seed": 2024}
    assert labels(
        ("recgoat", {**base, "gat_values": "id"}, 2024, "8debb9aa"),
        ("recgoat", {**base, "gat_values": "lm", "device": "cuda"}, 2024, "b3b7c9bb"),
    ) == ["recgoat gat_values=id", "recgoat gat_values=lm"]


def test_seeds_are_named_only_when_one_configuration_has_several():
    mf = {"model": "mf", "dim": 8}
    assert labels(("mf", mf, 1, "a"), ("mf", mf, 2, "b"), ("mf", {**mf, "dim": 16}, 1, "c")) == [
        "mf dim=8 seed 1", "mf dim=8 seed 2", "mf dim=16",
    ]


def test_keys_are_compared_within_a_model_only():
    assert labels(("lightgcn", {"lr": 0.005}, 1, "a"), ("recgoat", {"lr": 0.002}, 1, "b")) == ["lightgcn", "recgoat"]


def test_identical_runs_fall_back_to_the_artifact_id():
    same = {"model": "mf"}
    assert labels(("mf", same, 1, "abcdef123"), ("mf", same, 1, "fedcba321")) == ["mf (abcdef)", "mf (fedcba)"]


def test_configuration_is_the_label_without_the_seed():
    named = run_labels([("mf", {"dim": 8}, 1, "a"), ("mf", {"dim": 8}, 2, "b")])
    assert [n.configuration for n in named] == ["mf", "mf"] and [n.label for n in named] == ["mf seed 1", "mf seed 2"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.001, "0.001"), (1e-4, "0.0001"), (True, "true"), (("item", "user-item"), "item+user-item"), (None, "-"), (64, "64")],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_differing_keys_treats_a_missing_key_as_none_and_ignores_seed_and_device():
    assert differing_keys([{"a": 1, "seed": 1, "device": "cpu"}, {"a": 1, "b": 2, "seed": 2, "device": "cuda"}]) == ["b"]


def test_a_configs_own_non_semantic_keys_are_left_out():
    configs = [{"lr": 0.1, "batch_size": 64, "non_semantic": ["batch_size"]}, {"lr": 0.1, "batch_size": 128, "non_semantic": ["batch_size"]}]
    assert differing_keys(configs) == []
