"""Property tests of the parsers: any generated interaction file either loads with the MMRec layout's invariants
intact (ids contiguous from 0, each interaction once, splits disjoint, a train split) or is refused with a
UserError naming the file; any generated raw table given to ``recgoat prepare`` exits 0 with a dataset that
loads, or exits 2 with one sentence, never with a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recgoat_cli.cli.app import app
from recgoat_cli.data.dataset import load_dataset
from recgoat_cli.data.layout import SPLITS
from recgoat_cli.errors import UserError

DAMAGE = ["-1", "1.5", "x", "", " 2", "1e3", "\u0663", "NaN", "0x1", "3", "train"]


@st.composite
def valid_pairs(draw) -> set[tuple[int, int]]:
    """Distinct (user, item) pairs in which every user id below n_users and item id below n_items occurs."""
    n_users, n_items = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    pairs = {(u, u % n_items) for u in range(n_users)} | {(i % n_users, i) for i in range(n_items)}
    extra = draw(st.sets(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)), max_size=10))
    return pairs | extra


labels = st.lists(st.sampled_from(["0", "0", "0", "1", "2"]), min_size=25, max_size=25)
# None, or (row, what): replace one field of a row, cut it short, add a field, blank it, or duplicate it
damage = st.one_of(st.none(), st.tuples(st.integers(0, 19), st.sampled_from(["field", "ragged", "extra", "blank", "duplicate"])),
                   st.tuples(st.integers(0, 19), st.sampled_from(DAMAGE), st.integers(0, 2)))
header = st.sampled_from([
    ["userID", "itemID", "x_label"], ["userID", "itemID", "x_label"], ["userID", "itemID", "x_label"],
    ["itemID", "userID", "x_label"], ["userID", "itemID", "x_label", "timestamp"], ["userID", "itemID"],
    ["userID", "userID", "x_label"],
])


def inter_bytes(columns: list[str], pairs: set, labels: list[str], damage, non_utf8: bool) -> bytes:
    rows = [[str(u), str(i), label] for (u, i), label in zip(sorted(pairs), labels)]
    if damage is not None and rows:
        index = damage[0] % len(rows)
        if len(damage) == 3:
            rows[index][damage[2]] = damage[1]
        elif damage[1] == "ragged":
            rows[index] = rows[index][:2]
        elif damage[1] == "extra":
            rows[index].append("9")
        elif damage[1] == "blank":
            rows[index] = []
        elif damage[1] == "duplicate":
            rows.append(list(rows[index]))
    lines = ["\t".join(columns)]
    for values in rows:
        lines.append("\t".join(values + ["17"] * (len(columns) == 4 and len(values) == 3)))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    return data + b"0\t\xff\t0\n" if non_utf8 else data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(columns=header, pairs=valid_pairs(), labels=labels, damage=damage, non_utf8=st.sampled_from([False] * 9 + [True]))
def test_any_interaction_file_loads_with_invariants_or_is_a_user_error(columns, pairs, labels, damage, non_utf8):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gen"
        folder.mkdir()
        path = folder / "gen.inter"
        path.write_bytes(inter_bytes(columns, pairs, labels, damage, non_utf8))
        n_rows = len(path.read_bytes().splitlines()) - 1
        try:
            dataset = load_dataset(folder)
        except UserError as error:
            assert str(path) in str(error) and "\n" not in str(error)
            event("refused")
            return
        event("loaded")
        split_pairs = {s: set(zip(*(a.tolist() for a in dataset.split(s)))) for s in SPLITS}
        users = np.concatenate([dataset.split(s)[0] for s in SPLITS])
        items = np.concatenate([dataset.split(s)[1] for s in SPLITS])
        assert len(users) == n_rows == sum(len(p) for p in split_pairs.values())  # every row, each pair once
        train, valid, test = (split_pairs[s] for s in SPLITS)
        assert not (train & valid or train & test or valid & test)
        assert sorted(set(users.tolist())) == list(range(dataset.n_users))
        assert sorted(set(items.tolist())) == list(range(dataset.n_items))
        assert len(train) >= 1


raw_row = st.one_of(
    st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(["i1", "i2", "i3", "i4"]), st.sampled_from(["1", "4", "5"])).map(list),
    st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(["i1", "i2", "i3", "i4"]), st.sampled_from(["1", "4", "5"])).map(list),
    st.lists(st.one_of(st.sampled_from(["u1", "i1", "5", "", "x", '"', "1e9"]), st.text(max_size=4)), min_size=0, max_size=4),
)
raw_table = st.lists(raw_row, min_size=0, max_size=25)
runner = CliRunner()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=raw_table, header_line=st.sampled_from(["user_id,item_id,rating", "user_id,item_id", "user_id,item_id,rating,timestamp", "a,b", ""]),
       k_core=st.sampled_from(["0", "2"]))
def test_prepare_on_any_table_exits_0_with_a_loadable_dataset_or_2_with_one_sentence(rows, header_line, k_core):
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "raw.csv"
        source.write_text("\n".join([header_line, *(",".join(r) for r in rows)]) + "\n", encoding="utf-8")
        out = Path(tmp) / "out"
        result = runner.invoke(app, ["prepare", "--input", str(source), "--name", "gen", "--out", str(out), "--k-core", k_core])
        assert result.exit_code in (0, 2), f"exit {result.exit_code}: {result.output} {result.exception!r}"
        if result.exit_code == 2:
            errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1 and "Traceback" not in result.output
            assert not out.exists()
            event("exit 2")
            return
        event("prepared")
        dataset = load_dataset(out)
        train_users = set(dataset.split("train")[0].tolist())
        assert train_users == set(range(dataset.n_users))  # prepare gives every user a train item


# ---- hostile ids: any id up to 2^63 loads, or is refused by one sentence, without an array sized by the id ----------
#: small ids (often valid), ids far beyond any row count, and 2^63 itself (one beyond int64)
hostile_id = st.one_of(st.integers(0, 12), st.integers(2**20, 2**63))
ID_MEMORY_LIMIT = 64 * 2**20  # what numpy may trace while loading a 25-row file; an id-sized array is far above


def hostile_inter(pairs: set, labels: list[str], row: int, column: int, value: int) -> bytes:
    rows = [[str(u), str(i), label] for (u, i), label in zip(sorted(pairs), labels)]
    rows[row % len(rows)][column] = str(value)
    return ("\n".join(["userID\titemID\tx_label", *("\t".join(r) for r in rows)]) + "\n").encode()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=valid_pairs(), labels=labels, row=st.integers(0, 24), column=st.integers(0, 1), value=hostile_id)
def test_any_id_up_to_2_63_loads_or_is_refused_without_allocating_by_it(pairs, labels, row, column, value):
    import tracemalloc

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gen"
        folder.mkdir()
        path = folder / "gen.inter"
        path.write_bytes(hostile_inter(pairs, labels, row, column, value))
        tracemalloc.start()
        try:
            dataset = load_dataset(folder)
        except UserError as error:
            assert str(path) in str(error) and "\n" not in str(error)
            event("refused")
            return
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert peak < ID_MEMORY_LIMIT, f"{peak} bytes traced loading an id of {value}"
        event("loaded")
        n_rows = len(path.read_bytes().splitlines()) - 1
        assert dataset.n_users <= n_rows and dataset.n_items <= n_rows  # ids contiguous from 0: never beyond the rows
        users = np.concatenate([dataset.split(s)[0] for s in SPLITS])
        assert sorted(set(users.tolist())) == list(range(dataset.n_users))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(pairs=valid_pairs(), labels=labels, row=st.integers(0, 24), column=st.integers(0, 1), value=st.integers(2**20, 2**63))
def test_build_graph_on_a_hostile_id_exits_2_with_one_sentence_and_writes_nothing(pairs, labels, row, column, value):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gen"
        folder.mkdir()
        (folder / "gen.inter").write_bytes(hostile_inter(pairs, labels, row, column, value))
        workdir = Path(tmp) / "runs"

        result = runner.invoke(app, ["build-graph", "--dataset", str(folder), "--workdir", str(workdir)])

        assert result.exit_code == 2, f"exit {result.exit_code}: {result.output} {result.exception!r}"
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and result.stderr.strip() == errors[0] and errors[0].endswith("."), result.stderr
        assert "gen.inter" in errors[0] and ("has id" in errors[0] or "64-bit" in errors[0])
        assert "Traceback" not in result.output and not workdir.exists()
