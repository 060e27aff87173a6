"""Tests of recgoat_cli/stages/prepare.py: raw interactions -> MMRec layout (filters, splits, id maps, side info).

The pure steps of data/split.py have their own tests in tests/data/test_split.py."""

from __future__ import annotations

import csv
import hashlib
import json
import warnings
from pathlib import Path

import polars as pl
import pytest

import recgoat_cli
from recgoat_cli.data.split import split_sizes
from recgoat_cli.errors import UserError
from recgoat_cli.stages.prepare import PrepareOptions, run_prepare

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


# ------------------------------------------------------------------------------------------------ helpers


def write_table(path: Path, header: list[str], rows: list[tuple], sep: str = ",") -> Path:
    lines = [sep.join(header)] + [sep.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_inter(out: Path, name: str = "toy") -> pl.DataFrame:
    return pl.read_csv(out / f"{name}.inter", separator="\t")


def read_mapping(path: Path) -> dict[str, int]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return {original: int(new) for original, new in reader}


def original_pairs(out: Path, name: str = "toy") -> set[tuple[str, str, int]]:
    """(original user, original item, x_label) of every row of the prepared .inter."""
    users = {v: k for k, v in read_mapping(out / "u_id_mapping.csv").items()}
    items = {v: k for k, v in read_mapping(out / "i_id_mapping.csv").items()}
    inter = read_inter(out, name)
    return {(users[u], items[i], x) for u, i, x in inter.select("userID", "itemID", "x_label").iter_rows()}


def many_items_table(tmp_path: Path, n_users: int = 6, n_items: int = 12, with_time: bool = True) -> Path:
    """User u rated items 0..(u + 3): user u has u + 4 items, timestamps increase with the item id."""
    rows = []
    for user in range(n_users):
        for item in range(min(user + 4, n_items)):
            rows.append((f"u{user}", f"i{item}", 1 + (user + item) % 5, 1000 * user + 10 * item) if with_time
                        else (f"u{user}", f"i{item}", 1 + (user + item) % 5))
    header = ["user_id", "item_id", "rating", "timestamp"] if with_time else ["user_id", "item_id", "rating"]
    return write_table(tmp_path / "inter.csv", header, rows)


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------------------------ whole step


def test_k_core_end_to_end_writes_only_the_core(tmp_path):
    rows = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "y"), ("c", "z"), ("d", "z")]
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], rows)
    summary = run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", user_core=2, item_core=2))
    assert {(u, i) for u, i, _ in original_pairs(tmp_path / "out")} == {("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")}
    k_core_step = next(s for s in summary["steps"] if s["step"] == "k_core")
    assert k_core_step["passes"] == 3 and k_core_step["removed"] == 3
    assert summary["counts"] == {"users": 2, "items": 2, "interactions": 4}


def test_rating_threshold_runs_before_k_core(tmp_path):
    # With all ratings, user c has 2 items and survives a 2-core; its rating-2 row goes first, then c falls out.
    rows = [("a", "x", 5), ("a", "y", 4), ("b", "x", 4), ("b", "y", 5), ("c", "x", 5), ("c", "y", 2)]
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id", "rating"], rows)
    summary = run_prepare(
        source, tmp_path / "out", PrepareOptions(name="toy", rating_threshold=4, user_core=2, item_core=1)
    )
    pairs = {(u, i) for u, i, _ in original_pairs(tmp_path / "out")}
    assert pairs == {("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")}
    assert [s["step"] for s in summary["steps"]] == ["read", "dedupe", "rating_threshold", "k_core"]
    assert summary["steps"][2]["removed"] == 1 and summary["steps"][3]["removed"] == 1
    assert read_inter(tmp_path / "out")["rating"].min() >= 4


def test_dedupe_keeps_the_latest_interaction(tmp_path):
    rows = [("a", "x", 1, 100), ("a", "x", 5, 300), ("a", "x", 3, 200), ("a", "y", 2, 50), ("a", "y", 4, 50)]
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id", "rating", "timestamp"], rows)
    summary = run_prepare(source, tmp_path / "out", PrepareOptions(name="toy"))
    inter = read_inter(tmp_path / "out").sort("itemID")
    # x: the timestamp-300 row; y: equal timestamps, so the later line wins.
    assert inter.select("timestamp", "rating").rows() == [(300, 5), (50, 4)]
    assert summary["steps"][1]["removed"] == 3


@pytest.mark.parametrize("n_users", [1, 6])
def test_random_split_sizes_and_disjointness(tmp_path, n_users):
    source = many_items_table(tmp_path, n_users=n_users, n_items=30)
    run_prepare(source, tmp_path / "out", PrepareOptions(name="toy"))
    inter = read_inter(tmp_path / "out")
    assert inter.select("userID", "itemID").is_duplicated().sum() == 0
    for (user,), group in inter.group_by("userID"):
        labels = group["x_label"].to_list()
        expected = split_sizes(len(labels), (0.8, 0.1, 0.1))
        assert (labels.count(0), labels.count(1), labels.count(2)) == expected
    assert sorted(inter["userID"].unique().to_list()) == list(range(n_users))


def test_temporal_split_puts_the_latest_items_in_test(tmp_path):
    source = many_items_table(tmp_path, n_users=4, n_items=30)
    summary = run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", split="temporal"))
    inter = read_inter(tmp_path / "out")
    for (user,), group in inter.group_by("userID"):
        by_label = {x: group.filter(pl.col("x_label") == x)["timestamp"] for x in (0, 1, 2)}
        assert by_label[0].max() < by_label[1].min() <= by_label[1].max() < by_label[2].min()
    assert summary["split"]["order"] == "timestamp"


def test_loo_split_holds_out_the_last_and_second_last(tmp_path):
    rows = [("a", "x", 1), ("a", "y", 3), ("a", "z", 2), ("a", "w", 4), ("b", "x", 9), ("b", "y", 8), ("c", "x", 1)]
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id", "timestamp"], rows)
    run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", split="loo"))
    labels = {(u, i): x for u, i, x in original_pairs(tmp_path / "out")}
    assert labels == {("a", "x"): 0, ("a", "z"): 0, ("a", "y"): 1, ("a", "w"): 2,
                      ("b", "y"): 0, ("b", "x"): 2, ("c", "x"): 0}


def test_loo_without_timestamps_uses_a_seeded_random_order(tmp_path):
    source = many_items_table(tmp_path, n_users=5, n_items=20, with_time=False)
    with pytest.warns(UserWarning, match="random order seeded by --seed 7"):
        summary = run_prepare(source, tmp_path / "a", PrepareOptions(name="toy", split="loo", seed=7))
    with pytest.warns(UserWarning):
        run_prepare(source, tmp_path / "b", PrepareOptions(name="toy", split="loo", seed=7))
    assert (tmp_path / "a" / "toy.inter").read_bytes() == (tmp_path / "b" / "toy.inter").read_bytes()
    inter = read_inter(tmp_path / "a")
    per_user = inter.group_by("userID").agg((pl.col("x_label") == 2).sum().alias("test"),
                                            (pl.col("x_label") == 1).sum().alias("valid"))
    assert per_user["test"].to_list() == [1] * 5 and per_user["valid"].to_list() == [1] * 5
    assert summary["split"]["order"] == "random" and "timestamp" not in inter.columns


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    source = many_items_table(tmp_path, n_users=6, n_items=30)
    for out, seed in (("a", 1), ("b", 1), ("c", 2)):
        run_prepare(source, tmp_path / out, PrepareOptions(name="toy", seed=seed))
    for file in ("toy.inter", "u_id_mapping.csv", "i_id_mapping.csv"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert (tmp_path / "a" / "toy.inter").read_bytes() != (tmp_path / "c" / "toy.inter").read_bytes()


def test_split_does_not_depend_on_row_order(tmp_path):
    source = many_items_table(tmp_path, n_users=6, n_items=30)
    lines = source.read_text().splitlines()
    shuffled = write_table(tmp_path / "shuffled.csv", [lines[0]], [(line,) for line in reversed(lines[1:])])
    run_prepare(source, tmp_path / "a", PrepareOptions(name="toy"))
    run_prepare(shuffled, tmp_path / "b", PrepareOptions(name="toy"))
    assert (tmp_path / "a" / "toy.inter").read_bytes() == (tmp_path / "b" / "toy.inter").read_bytes()


def test_id_maps_round_trip_to_the_input_pairs(tmp_path):
    rows = [("user,1", "item 10", 1), ("user,1", "item 9", 2), ('q"u', "item 9", 3), ("z", "item 10", 4)]
    source = write_table(tmp_path / "in.tsv", ["user_id", "item_id", "timestamp"], rows, sep="\t")
    run_prepare(source, tmp_path / "out", PrepareOptions(name="toy"))
    assert {(u, i) for u, i, _ in original_pairs(tmp_path / "out")} == {(u, i) for u, i, _ in rows}
    user_map = read_mapping(tmp_path / "out" / "u_id_mapping.csv")
    assert user_map == {'q"u': 0, "user,1": 1, "z": 2}  # string order, CSV-quoted on disk
    assert sorted(read_mapping(tmp_path / "out" / "i_id_mapping.csv").values()) == [0, 1]
    assert (tmp_path / "out" / "u_id_mapping.csv").read_text().splitlines()[0] == "user_id,userID"


def test_integer_ids_are_numbered_in_numeric_order(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], [(10, 100), (9, 20), (9, 100), (10, 3)])
    run_prepare(source, tmp_path / "out", PrepareOptions(name="toy"))
    assert read_mapping(tmp_path / "out" / "u_id_mapping.csv") == {"9": 0, "10": 1}
    assert read_mapping(tmp_path / "out" / "i_id_mapping.csv") == {"3": 0, "20": 1, "100": 2}


def test_inter_header_and_prepare_json(tmp_path):
    source = many_items_table(tmp_path, n_users=3, n_items=10)
    summary = run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", seed=5))
    out = tmp_path / "out"
    assert (out / "toy.inter").read_text().splitlines()[0] == "userID\titemID\tx_label\ttimestamp\trating"
    on_disk = json.loads((out / "prepare.json").read_text())
    assert on_disk == summary
    assert summary["recgoat_version"] == recgoat_cli.__version__ and summary["seed"] == 5
    assert summary["options"]["ratios"] == [0.8, 0.1, 0.1] and summary["options"]["split"] == "random"
    assert summary["sources"]["interactions"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    for name, digest in summary["outputs"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    split = summary["split"]
    assert split["train"] + split["valid"] + split["test"] == summary["counts"]["interactions"] == 4 + 5 + 6


def test_iso_datetimes_become_unix_seconds(tmp_path):
    rows = [("a", "x", "2020-01-01T00:00:10"), ("a", "y", "2020-01-01T00:00:00"), ("a", "z", "2020-01-01T00:00:05")]
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id", "timestamp"], rows)
    summary = run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", split="temporal"))
    inter = read_inter(tmp_path / "out").sort("timestamp")
    assert inter["timestamp"].to_list() == [1577836800, 1577836805, 1577836810]
    assert inter["x_label"].to_list() == [0, 1, 2]
    assert summary["columns"]["timestamp_parsed_from_datetime"] is True


def test_parquet_input_with_integer_ids(tmp_path):
    source = tmp_path / "in.parquet"
    pl.DataFrame({"uid": [1, 1, 2, 2, 2], "iid": [5, 6, 5, 6, 7], "stars": [1.5, 2.0, 3.0, 4.0, 5.0]}).write_parquet(source)
    options = PrepareOptions(name="toy", user_col="uid", item_col="iid", rating_col="stars", rating_threshold=2.0)
    summary = run_prepare(source, tmp_path / "out", options)
    assert summary["counts"] == {"users": 2, "items": 3, "interactions": 4}
    assert sorted(read_inter(tmp_path / "out")["rating"].to_list()) == [2, 3, 4, 5]  # integral, so written as ints
    assert read_mapping(tmp_path / "out" / "i_id_mapping.csv") == {"5": 0, "6": 1, "7": 2}


def test_recbole_atomic_folder_uses_its_item_file(tmp_path):
    folder = tmp_path / "shop"
    folder.mkdir()
    write_table(folder / "shop.inter", ["user_id:token", "item_id:token", "rating:float", "timestamp:float"],
                [(1, 10, 4, 100), (1, 11, 5, 101), (1, 12, 3, 102), (2, 10, 1, 103), (2, 12, 2, 104)], sep="\t")
    write_table(folder / "shop.item", ["item_id:token", "title:token_seq", "price:float"],
                [(10, "Red mug", 3.5), (11, 'A "quoted" lamp', 20), (99, "never rated", 1)], sep="\t")
    write_table(folder / "shop.user", ["user_id:token", "age:token"], [(1, 30), (2, 40)], sep="\t")
    summary = run_prepare(folder, tmp_path / "out", PrepareOptions(name="shop"))
    assert summary["sources"]["interactions"]["format"] == "recbole"
    items = (tmp_path / "out" / "items.tsv").read_text(encoding="utf-8").splitlines()
    assert items == ["itemID\ttitle\tprice", "0\tRed mug\t3.5", '1\tA "quoted" lamp\t20', "2\t\t"]
    assert summary["items_tsv"]["items_with_side_info"] == 2
    assert summary["counts"] == {"users": 2, "items": 3, "interactions": 5}


def test_item_tables_merge_json_on_top_of_csv_and_fields_are_cleaned(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], [("a", "m1"), ("a", "m2"), ("b", "m3")])
    table = write_table(tmp_path / "items.csv", ["item_id", "title", "year"],
                        [("m1", "One", 1990), ("m2", "Two", 1991)])
    details = tmp_path / "details.json"
    details.write_text(json.dumps([
        {"movie_id": "m2", "title": "Two (1991)", "description": "line one\nline\ttwo", "cast": ["A", "B"]},
        {"movie_id": "m3", "description": "third", "score": 7.0},
        {"movie_id": "unrated", "description": "not in the interactions"},
    ]), encoding="utf-8")
    options = PrepareOptions(name="toy", item_text=[table, details], item_text_key=("item_id", "movie_id"))
    summary = run_prepare(source, tmp_path / "out", options)
    lines = (tmp_path / "out" / "items.tsv").read_text(encoding="utf-8").splitlines()
    assert lines == [
        "itemID\ttitle\tyear\tdescription\tcast\tscore",
        "0\tOne\t1990\t\t\t",
        "1\tTwo (1991)\t1991\tline one line two\tA, B\t",
        "2\t\t\tthird\t\t7",
    ]
    assert summary["items_tsv"]["items_with_side_info"] == 3

    keep_some = PrepareOptions(name="toy", item_text=[table, details], item_text_key=("item_id", "movie_id"),
                               item_text_columns=("description",))
    run_prepare(source, tmp_path / "some", keep_some)
    assert (tmp_path / "some" / "items.tsv").read_text().splitlines()[0] == "itemID\tdescription"


def test_images_are_copied_under_new_ids(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], [("a", 30), ("a", 20), ("b", 10)])
    posters = tmp_path / "posters"
    posters.mkdir()
    (posters / "30.jpg").write_bytes(b"thirty")
    (posters / "10.png").write_bytes(b"ten")
    (posters / "10.jpg").write_bytes(b"ten as jpg")  # .jpg is preferred over .png
    (posters / "notes.txt").write_text("not an image")
    summary = run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", images=posters))
    images = tmp_path / "out" / "images"
    assert sorted(p.name for p in images.iterdir()) == ["0.jpg", "2.jpg"]
    assert (images / "0.jpg").read_bytes() == b"ten as jpg" and (images / "2.jpg").read_bytes() == b"thirty"
    assert summary["images"] == {"items_with_image": 2, "items_without_image": 1}


# ------------------------------------------------------------------------------------------------ errors


def test_missing_column_lists_the_columns(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user", "item_id"], [("a", "x")])
    with pytest.raises(UserError, match=r"has no column 'user_id' \(columns: user, item_id\); pass --user-col"):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy"))


def test_explicit_rating_column_must_exist(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], [("a", "x")])
    with pytest.raises(UserError, match=r"no column 'stars'.*--rating-col"):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", rating_col="stars"))
    with pytest.raises(UserError, match="--rating-threshold needs a rating column"):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", rating_threshold=3))


def test_empty_id_names_the_line(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("user_id,item_id\na,x\n,y\n")
    with pytest.raises(UserError, match=r"in\.csv, line 3: column 'user_id' has an empty user id"):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy"))


def test_non_numeric_rating_names_line_and_column(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id", "rating"], [("a", "x", 4), ("b", "y", "good")])
    with pytest.raises(UserError, match=r"in\.csv, line 3: column 'rating' holds 'good', not a number"):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy"))


@pytest.mark.parametrize("content,message", [("", "is empty"), ("user_id,item_id\n", "has a header but no rows")])
def test_empty_files(tmp_path, content, message):
    source = tmp_path / "in.csv"
    source.write_text(content)
    with pytest.raises(UserError, match=message):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy"))


def test_k_core_removing_everything_says_which_flag_to_lower(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], [("a", "x"), ("b", "y")])
    with pytest.raises(UserError, match=r"k-core \(--user-core 10.*removed every interaction.*lower --user-core"):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", user_core=10))


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"ratios": (0.5, 0.1, 0.1)}, "must sum to 1"),
        ({"ratios": (0.0, 0.5, 0.5)}, "positive train share"),
        ({"ratios": (1.2, -0.1, -0.1)}, "non-negative"),
        ({"split": "chrono"}, "--split 'chrono' is not known"),
        ({"fmt": "xlsx"}, "--format 'xlsx' is not known"),
        ({"user_core": -1}, "--user-core"),
        ({"name": "a/b"}, "--name"),
    ],
)
def test_bad_options(tmp_path, overrides, message):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], [("a", "x")])
    with pytest.raises(UserError, match=message):
        run_prepare(source, tmp_path / "out", PrepareOptions(name=overrides.pop("name", "toy"), **overrides))


def test_temporal_split_without_timestamps(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], [("a", "x")])
    with pytest.raises(UserError, match=r"--split temporal needs timestamps.*no column 'timestamp'"):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", split="temporal"))


def test_unknown_suffix_and_missing_source(tmp_path):
    odd = write_table(tmp_path / "in.xlsx", ["user_id", "item_id"], [("a", "x")])
    with pytest.raises(UserError, match=r"from its suffix '\.xlsx'; pass --format"):
        run_prepare(odd, tmp_path / "out", PrepareOptions(name="toy"))
    with pytest.raises(UserError, match="does not exist"):
        run_prepare(tmp_path / "nope.csv", tmp_path / "out", PrepareOptions(name="toy"))


def test_missing_image_folder(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], [("a", "x")])
    with pytest.raises(UserError, match=r"image folder .*posters does not exist.*--images"):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", images=tmp_path / "posters"))


def test_item_text_key_not_found_lists_columns(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], [("a", "x")])
    table = write_table(tmp_path / "items.csv", ["sku", "title"], [("x", "X")])
    with pytest.raises(UserError, match=r"items\.csv has neither 'item_id' .*\(columns: sku, title\).*--item-text-key"):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", item_text=table))


def test_existing_out_needs_force_and_force_replaces_only_a_prepared_dataset(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], [("a", "x"), ("a", "y")])
    out = tmp_path / "out"
    run_prepare(source, out, PrepareOptions(name="toy"))
    with pytest.raises(UserError, match="already exists; pass --force"):
        run_prepare(source, out, PrepareOptions(name="toy"))
    run_prepare(source, out, PrepareOptions(name="other", force=True))
    assert sorted(p.name for p in out.iterdir()) == ["i_id_mapping.csv", "other.inter", "prepare.json",
                                                     "u_id_mapping.csv"]
    unrelated = tmp_path / "home"
    unrelated.mkdir()
    (unrelated / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="without prepare.json"):
        run_prepare(source, unrelated, PrepareOptions(name="toy", force=True))
    assert (unrelated / "thesis.tex").read_text() == "precious"
    with pytest.raises(UserError, match="holds the input"):
        run_prepare(source, tmp_path, PrepareOptions(name="toy", force=True))
    assert leftovers(tmp_path) == []


def test_an_error_while_writing_leaves_no_out_folder_and_no_temp_dir(tmp_path):
    source = write_table(tmp_path / "in.csv", ["user_id", "item_id"], [("a", "x"), ("a", "y")])
    posters = tmp_path / "posters"
    posters.mkdir()
    (posters / "unrelated.jpg").write_bytes(b"?")
    with pytest.raises(UserError, match="no image named by an original item id"):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", images=posters))
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []

    # Same for an existing dataset under --force: the old one stays as it was.
    run_prepare(source, tmp_path / "out", PrepareOptions(name="toy"))
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    with pytest.raises(UserError):
        run_prepare(source, tmp_path / "out", PrepareOptions(name="toy", images=posters, force=True))
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ real data


@pytest.mark.shared_data
def test_ml_100k_with_item_text_and_posters(tmp_path):
    data = SHARED_DATA / "ml-100k"
    if not data.is_dir():
        pytest.skip(f"{data} is absent: the shared real datasets exist only next to the developers' checkout")
    options = PrepareOptions(
        name="ml-100k",
        item_text=(data / "ml-100k.item", data / "imdb_details.json"),
        item_text_key=("item_id", "movie_id"),
        images=data / "posters",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = run_prepare(data, tmp_path / "ml", options)
    assert summary["counts"] == {"users": 943, "items": 1682, "interactions": 100_000}
    split = summary["split"]
    assert split["users_with_valid"] == split["users_with_test"] == 943  # every ml-100k user rated >= 20 movies
    assert split["train"] + split["valid"] + split["test"] == 100_000
    assert 0.79 < split["train"] / 100_000 < 0.81
    inter = read_inter(tmp_path / "ml", "ml-100k")
    assert inter["userID"].n_unique() == 943 and inter["itemID"].max() == 1681

    items = pl.read_csv(tmp_path / "ml" / "items.tsv", separator="\t", quote_char=None, infer_schema=False)
    assert items.height == 1682 and {"movie_title", "description", "release_year", "class"} <= set(items.columns)
    assert items["itemID"].to_list() == [str(i) for i in range(1682)]
    assert items["description"].is_not_null().sum() == 1591  # the IMDb details cover 1,591 movies
    item_map = read_mapping(tmp_path / "ml" / "i_id_mapping.csv")
    assert item_map["1"] == 0 and item_map["1682"] == 1681
    assert items.row(item_map["1"], named=True)["movie_title"].startswith("Toy Story")

    images = list((tmp_path / "ml" / "images").iterdir())
    assert len(images) == 1612 == summary["images"]["items_with_image"]
    poster_of_toy_story = (data / "posters" / "1.jpg").read_bytes()
    assert (tmp_path / "ml" / "images" / f"{item_map['1']}.jpg").read_bytes() == poster_of_toy_story
