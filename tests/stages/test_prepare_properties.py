"""Property tests of recgoat_cli/stages/prepare.py: any small interaction table either prepares with the layout's
invariants intact (checked against a plain-Python reference of dedupe, threshold and k-core) or raises UserError."""

from __future__ import annotations

import csv
import tempfile
import warnings
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from recgoat_cli.data.split import split_sizes
from recgoat_cli.errors import UserError
from recgoat_cli.stages.prepare import PrepareOptions, run_prepare

interaction = st.tuples(
    st.integers(0, 6),  # user
    st.integers(0, 6),  # item
    st.integers(1, 5),  # rating
    st.integers(0, 9),  # timestamp: small range, so ties happen
)


def reference_kept_pairs(rows, threshold, user_core, item_core):
    """The (user, item) -> (rating, time) that must survive, computed the slow obvious way."""
    latest: dict[tuple[str, str], tuple[int, int, int]] = {}
    for line, (user, item, rating, time) in enumerate(rows):
        key = (f"u{user}", f"i{item}")
        if key not in latest or (time, line) >= (latest[key][1], latest[key][2]):
            latest[key] = (rating, time, line)
    kept = {k: v[:2] for k, v in latest.items() if threshold is None or v[0] >= threshold}
    while True:
        user_degree: dict[str, int] = {}
        item_degree: dict[str, int] = {}
        for user, item in kept:
            user_degree[user] = user_degree.get(user, 0) + 1
            item_degree[item] = item_degree.get(item, 0) + 1
        smaller = {k: v for k, v in kept.items()
                   if user_degree[k[0]] >= user_core and item_degree[k[1]] >= item_core}
        if len(smaller) == len(kept):
            return kept
        kept = smaller


def read_mapping(path: Path) -> dict[int, str]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) in (["user_id", "userID"], ["item_id", "itemID"])
        return {int(new): original for original, new in reader}


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(interaction, min_size=1, max_size=40),
    with_time=st.sampled_from([True, True, False]),
    threshold=st.sampled_from([None, None, 1, 2, 3, 5]),
    # mostly small cores: large ones on tiny tables empty them, which the UserError branch already covers
    user_core=st.sampled_from([0, 0, 1, 2, 3]),
    item_core=st.sampled_from([0, 0, 1, 2, 3]),
    split=st.sampled_from(["random", "temporal", "loo"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_prepare_keeps_its_invariants_or_raises_user_error(rows, with_time, threshold, user_core, item_core, split,
                                                           seed):
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        source = tmp_dir / "in.csv"
        header = "user_id,item_id,rating" + (",timestamp" if with_time else "")
        lines = [f"u{u},i{i},{r}" + (f",{t}" if with_time else "") for u, i, r, t in rows]
        source.write_text("\n".join([header, *lines]) + "\n")
        out = tmp_dir / "out"
        options = PrepareOptions(name="p", rating_threshold=threshold, user_core=user_core, item_core=item_core,
                                 split=split, seed=seed)
        expected = reference_kept_pairs([r if with_time else (*r[:3], 0) for r in rows], threshold, user_core,
                                        item_core)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # loo without timestamps warns by design
                summary = run_prepare(source, out, options)
        except UserError as error:
            assert not out.exists() and [p.name for p in tmp_dir.iterdir()] == ["in.csv"]
            assert (not rows or not expected or (split == "temporal" and not with_time)), str(error)
            event("raised UserError")
            return
        event(f"prepared ({split})")

        assert rows and expected and (with_time or split != "temporal")
        inter = pl.read_csv(out / "p.inter", separator="\t")
        users = read_mapping(out / "u_id_mapping.csv")
        items = read_mapping(out / "i_id_mapping.csv")
        # ids contiguous from 0 and the maps cover exactly the ids in .inter
        assert sorted(users) == list(range(len(users))) == sorted(inter["userID"].unique().to_list())
        assert sorted(items) == list(range(len(items))) == sorted(inter["itemID"].unique().to_list())
        # the kept pairs (and their latest rating/time) are exactly the reference's; each pair once: splits disjoint
        got = {(users[u], items[i]): r for u, i, r in inter.select("userID", "itemID", "rating").iter_rows()}
        assert inter.height == len(got) == len(expected)
        assert got == {k: v[0] for k, v in expected.items()}
        # k-core holds and every user has a train item
        assert inter.group_by("userID").len()["len"].min() >= user_core
        assert inter.group_by("itemID").len()["len"].min() >= item_core
        per_user = inter.group_by("userID").agg(
            pl.len().alias("n"), (pl.col("x_label") == 0).sum().alias("train"),
            (pl.col("x_label") == 1).sum().alias("valid"), (pl.col("x_label") == 2).sum().alias("test"))
        for n, train, valid, test in per_user.select("n", "train", "valid", "test").iter_rows():
            assert train >= 1
            if split == "random":
                assert (train, valid, test) == split_sizes(n, (0.8, 0.1, 0.1))
            elif split == "loo":
                assert (valid, test) == (int(n >= 3), int(n >= 2))
        if split == "temporal" or (split == "loo" and with_time):
            bounds = inter.group_by("userID", "x_label").agg(pl.col("timestamp").min().alias("first"),
                                                             pl.col("timestamp").max().alias("last"))
            for user in bounds["userID"].unique().to_list():
                spans = bounds.filter(pl.col("userID") == user).sort("x_label").select("first", "last").rows()
                assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:]))
        assert summary["counts"]["interactions"] == inter.height
        assert summary["split"]["train"] == int((inter["x_label"] == 0).sum())


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 300), r_valid=st.floats(0, 0.45), r_test=st.floats(0, 0.45))
def test_split_sizes_keep_a_train_item_and_hold_out_from_three_items(n, r_valid, r_test):
    ratios = (1.0 - r_valid - r_test, r_valid, r_test)
    n_train, n_valid, n_test = split_sizes(n, ratios)
    assert n_train + n_valid + n_test == n and min(n_train, n_valid, n_test) >= 0
    if n >= 1:
        assert n_train >= 1
    if n >= 3:
        assert n_valid >= (1 if r_valid > 0 else 0) and n_test >= (1 if r_test > 0 else 0)
    assert n_valid <= max(round(n * r_valid) + 1, 1) and n_test <= max(round(n * r_test) + 1, 1)


@pytest.mark.parametrize("n_users", [2, 5])
def test_every_seed_gives_a_valid_split(tmp_path, n_users):
    rows = [(f"u{u}", f"i{i}") for u in range(n_users) for i in range(u + 3)]
    source = tmp_path / "in.csv"
    source.write_text("user_id,item_id\n" + "".join(f"{u},{i}\n" for u, i in rows))
    for seed in range(5):
        run_prepare(source, tmp_path / f"s{seed}", PrepareOptions(name="p", seed=seed))
        inter = pl.read_csv(tmp_path / f"s{seed}" / "p.inter", separator="\t")
        assert inter.filter(pl.col("x_label") == 0)["userID"].n_unique() == n_users
