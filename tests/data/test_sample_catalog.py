"""Tests of tools/sample_catalog.py (the generator, outside the package) and of the shipped catalog in sample_data/."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recgoat_cli.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "sample_data"
GENERATOR = ROOT / "tools" / "sample_catalog.py"


def _load_generator():
    """tools/ is not a package, so the generator is loaded from its file, as `python tools/sample_catalog.py` runs it."""
    spec = importlib.util.spec_from_file_location("recgoat_tools_sample_catalog", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


_generator = _load_generator()
CATEGORIES, COLOUR_RGB, COLOURS, STYLES = _generator.CATEGORIES, _generator.COLOUR_RGB, _generator.COLOURS, _generator.STYLES
SampleCatalogSpec, generate_into, main = _generator.SampleCatalogSpec, _generator.generate_into, _generator.main
_split_labels, _UniformStream = _generator._split_labels, _generator._UniformStream
SHIPPED_SPEC = SampleCatalogSpec()
# A second, smaller catalog so that the invariants are checked for more than one seed and size.
SMALL_SPEC = SampleCatalogSpec(seed=7, n_users=60, n_items=48, image_size=48, max_user_items=30)


def _file_hashes(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _read_table(path: Path, separator: str) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", f"{path.name} must end with one newline"
    rows = [line.split(separator) for line in lines[1:-1]]
    return lines[0].split(separator), rows


def _interactions(root: Path) -> np.ndarray:
    header, rows = _read_table(root / "sample.inter", "\t")
    assert header == ["userID", "itemID", "x_label", "timestamp"]
    return np.array(rows, dtype=np.int64)


def _attributes(root: Path) -> dict[str, np.ndarray]:
    header, rows = _read_table(root / "attributes.tsv", "\t")
    assert header == ["itemID", "category", "colour", "style"]
    assert [int(row[0]) for row in rows] == list(range(len(rows)))
    return {
        "category": np.array([CATEGORIES.index(row[1]) for row in rows]),
        "colour": np.array([COLOURS.index(row[2]) for row in rows]),
        "style": np.array([STYLES.index(row[3]) for row in rows]),
    }


def _pixels(root: Path, item: int) -> np.ndarray:
    with Image.open(root / "images" / f"{item}.png") as image:
        assert image.mode == "RGB"
        return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped catalog made again by running the tool as its README says, into a temporary folder."""
    out = tmp_path_factory.mktemp("catalog") / "sample_data"
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out), "--seed", str(SHIPPED_SPEC.seed)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small") / "catalog"
    generate_into(out, SMALL_SPEC)
    return out


@pytest.fixture(scope="module")
def shipped() -> Path:
    if not (SHIPPED / "sample.inter").is_file():
        pytest.skip(f"{SHIPPED} is missing; run `python tools/sample_catalog.py --out sample_data`")
    return SHIPPED


# ------------------------------------------------------------------------------------------------ determinism


def test_two_generations_are_byte_identical(regenerated: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_into(again, SHIPPED_SPEC)
    first, second = _file_hashes(regenerated), _file_hashes(again)
    assert len(first) == SHIPPED_SPEC.n_items + 6  # images + inter, items, attributes, two mappings, README
    assert first == second


def test_another_seed_gives_another_catalog(tmp_path: Path) -> None:
    spec_a = SampleCatalogSpec(seed=1, n_users=30, n_items=24, max_user_items=20)
    spec_b = SampleCatalogSpec(seed=2, n_users=30, n_items=24, max_user_items=20)
    generate_into(tmp_path / "a", spec_a)
    generate_into(tmp_path / "b", spec_b)
    assert (tmp_path / "a" / "sample.inter").read_bytes() != (tmp_path / "b" / "sample.inter").read_bytes()


def test_shipped_catalog_is_what_the_generator_makes(shipped: Path, regenerated: Path) -> None:
    """Every file: the same names, text files byte for byte; images by pixels, since PNG bytes also depend on the
    zlib build."""
    assert sorted(_file_hashes(shipped)) == sorted(_file_hashes(regenerated))
    for name in ("sample.inter", "items.tsv", "attributes.tsv", "u_id_mapping.csv", "i_id_mapping.csv"):
        assert (shipped / name).read_bytes() == (regenerated / name).read_bytes(), (
            f"sample_data/{name} is stale: rerun `python tools/sample_catalog.py --out sample_data`"
        )
    # The README states the data size, which moves with the zlib build; everything else must match.
    readme_lines = [
        [line for line in (root / "README.md").read_text(encoding="utf-8").splitlines() if "MB." not in line]
        for root in (shipped, regenerated)
    ]
    assert readme_lines[0] == readme_lines[1]
    for item in range(SHIPPED_SPEC.n_items):
        np.testing.assert_array_equal(_pixels(shipped, item), _pixels(regenerated, item))


def test_uniform_stream_integers_are_in_range_and_permutations_are_permutations() -> None:
    draws = _UniformStream(seed=3, stream=0)
    values = draws.integers(-2, 3, 5000)
    assert set(values.tolist()) == {-2, -1, 0, 1, 2}
    assert sorted(draws.permutation(50).tolist()) == list(range(50))
    picked = draws.distinct(7, 10)
    assert len(set(picked.tolist())) == 7 and picked.min() >= 0 and picked.max() < 10


# ------------------------------------------------------------------------------------------------ layout


@pytest.mark.parametrize(
    ("n_items_of_user", "expected_counts"),
    # n_held_out = max(1, floor(0.1 n + 0.5)) for valid and for test each; the rest is train.
    [(3, (1, 1, 1)), (5, (3, 1, 1)), (10, (8, 1, 1)), (14, (12, 1, 1)), (15, (11, 2, 2)), (20, (16, 2, 2))],
)
def test_split_labels_are_eight_one_one(n_items_of_user: int, expected_counts: tuple[int, int, int]) -> None:
    labels = _split_labels(n_items_of_user, _UniformStream(seed=0, stream=9))
    assert tuple(np.bincount(labels, minlength=3).tolist()) == expected_counts


@pytest.mark.parametrize("which", ["shipped", "small"])
def test_interaction_file_invariants(which: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(which)
    spec = SHIPPED_SPEC if which == "shipped" else SMALL_SPEC
    interactions = _interactions(root)
    users, items, labels, timestamps = interactions.T

    assert np.array_equal(np.unique(users), np.arange(spec.n_users))
    assert np.array_equal(np.unique(items), np.arange(spec.n_items))
    assert set(np.unique(labels).tolist()) == {0, 1, 2}
    pair_keys = users * spec.n_items + items
    assert len(np.unique(pair_keys)) == len(pair_keys), "a (user, item) pair occurs twice"

    per_user_counts = np.bincount(users, minlength=spec.n_users)
    assert per_user_counts.min() >= spec.min_user_items
    for label in (0, 1, 2):
        assert np.bincount(users[labels == label], minlength=spec.n_users).min() >= 1
    assert np.bincount(items[labels == 0], minlength=spec.n_items).min() >= 1, "an item has no train interaction"

    # Rows are grouped by user and timestamps increase along each user's rows.
    assert np.all(np.diff(users) >= 0)
    same_user = np.diff(users) == 0
    assert np.all(np.diff(timestamps)[same_user] > 0)

    held_out_share = (labels != 0).mean()
    assert 0.15 < held_out_share < 0.25  # 8:1:1, rounded per user


@pytest.mark.parametrize("which", ["shipped", "small"])
def test_every_item_has_a_text_row_an_image_and_attributes(which: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(which)
    spec = SHIPPED_SPEC if which == "shipped" else SMALL_SPEC

    header, rows = _read_table(root / "items.tsv", "\t")
    assert header == ["itemID", "title", "description"]
    assert [int(row[0]) for row in rows] == list(range(spec.n_items))
    for row in rows:
        assert len(row) == 3 and row[1] and row[2]
        assert '"' not in row[1] + row[2] and "\r" not in row[1] + row[2]

    assert len(_attributes(root)["category"]) == spec.n_items
    assert sorted(p.name for p in (root / "images").iterdir()) == sorted(f"{i}.png" for i in range(spec.n_items))
    for item in range(spec.n_items):
        with Image.open(root / "images" / f"{item}.png") as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (spec.image_size, spec.image_size))
            assert not image.info.keys() - {"dpi", "gamma"}, f"{item}.png carries metadata {image.info}"


@pytest.mark.parametrize("which", ["shipped", "small"])
def test_id_mappings(which: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(which)
    spec = SHIPPED_SPEC if which == "shipped" else SMALL_SPEC
    for name, header, prefix, count in (
        ("u_id_mapping.csv", ["user_id", "userID"], "u", spec.n_users),
        ("i_id_mapping.csv", ["item_id", "itemID"], "sku-", spec.n_items),
    ):
        file_header, rows = _read_table(root / name, ",")
        assert file_header == header
        assert [int(row[1]) for row in rows] == list(range(count))
        originals = [row[0] for row in rows]
        assert len(set(originals)) == count and all(original.startswith(prefix) for original in originals)


def test_shipped_catalog_is_under_two_megabytes(shipped: Path) -> None:
    apparent_bytes = sum(path.stat().st_size for path in shipped.rglob("*") if path.is_file())
    assert apparent_bytes < 2_000_000


# ------------------------------------------------------------------------------------------------ signal


def test_titles_name_the_category_and_descriptions_name_the_colour(shipped: Path) -> None:
    attributes = _attributes(shipped)
    _, rows = _read_table(shipped / "items.tsv", "\t")
    for item, (_, title, description) in enumerate(rows):
        assert CATEGORIES[attributes["category"][item]] in title.lower()
        assert COLOURS[attributes["colour"][item]] in description.lower()
    # Titles are varied: many distinct titles, not one per attribute triple.
    assert len({row[1] for row in rows}) > 0.8 * len(rows)


def test_dominant_saturated_colour_of_each_image_is_the_item_colour(shipped: Path) -> None:
    attributes = _attributes(shipped)
    palette = np.array([COLOUR_RGB[name] for name in COLOURS], dtype=np.float64)
    for item in range(SHIPPED_SPEC.n_items):
        pixels = _pixels(shipped, item).reshape(-1, 3)
        # The backgrounds are near-grey; the item's fill is the only strongly saturated part of the picture.
        saturated = pixels[pixels.max(axis=1) - pixels.min(axis=1) > 80]
        assert len(saturated) > 0.1 * len(pixels)
        nearest = np.argmin(((saturated[:, None, :] - palette[None]) ** 2).sum(-1), axis=1)
        assert np.bincount(nearest, minlength=len(COLOURS)).argmax() == attributes["colour"][item]


def _nearest_neighbour_accuracy(features: np.ndarray, groups: np.ndarray) -> float:
    """Share of items whose most cosine-similar other item is in the same group (leave-one-out 1-NN)."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return float((groups[similarity.argmax(axis=1)] == groups).mean())


def test_images_of_a_category_share_a_shape_and_of_a_colour_share_a_histogram(shipped: Path) -> None:
    """Raw pixels, no learned model: the shape finds the category and the colour histogram the colour."""
    attributes = _attributes(shipped)
    images = np.stack([_pixels(shipped, item) for item in range(SHIPPED_SPEC.n_items)])
    masks = (images.max(axis=-1) - images.min(axis=-1) > 80).reshape(len(images), -1)
    # Chance is 1/8 for the category and 1/6 for the colour.
    assert _nearest_neighbour_accuracy(masks.astype(np.float64), attributes["category"]) > 0.9

    # Histogram of the saturated pixels only: the near-grey backgrounds encode the style, not the colour.
    codes = (images // 64).reshape(len(images), -1, 3) @ np.array([16, 4, 1])  # 4 levels per channel: 64 bins
    histograms = np.stack(
        [np.bincount(code[mask], minlength=64) for code, mask in zip(codes, masks, strict=True)]
    ).astype(np.float64)
    assert _nearest_neighbour_accuracy(histograms, attributes["colour"]) > 0.8


@pytest.mark.parametrize(("attribute", "min_lift"), [("category", 2.0), ("colour", 1.6)])
def test_test_items_share_attributes_with_train_items_beyond_chance(
    shipped: Path, attribute: str, min_lift: float
) -> None:
    """How often a user's test item has the user's most frequent train attribute, against a random item."""
    values = _attributes(shipped)[attribute]
    interactions = _interactions(shipped)
    hits, chance = [], []
    for user in np.unique(interactions[:, 0]):
        rows = interactions[interactions[:, 0] == user]
        train_values = values[rows[rows[:, 2] == 0, 1]]
        favourite = np.bincount(train_values).argmax()
        hits.extend(values[rows[rows[:, 2] == 2, 1]] == favourite)
        chance.append((values == favourite).mean())
    assert np.mean(hits) > min_lift * np.mean(chance), (np.mean(hits), np.mean(chance))


def test_popularity_has_a_long_tail(shipped: Path) -> None:
    interactions = _interactions(shipped)
    train_counts = np.bincount(interactions[interactions[:, 2] == 0, 1], minlength=SHIPPED_SPEC.n_items)
    assert (train_counts <= 3).mean() > 0.1  # many items an ID-only model barely sees
    top_tenth = np.sort(train_counts)[::-1][: SHIPPED_SPEC.n_items // 10].sum()
    assert top_tenth > 0.3 * train_counts.sum()  # and a head that takes a large share
    assert train_counts.max() < 0.6 * SHIPPED_SPEC.n_users  # but no item that nearly every user takes


# ------------------------------------------------------------------------------------------------ writing


def test_regenerating_replaces_an_earlier_catalog_without_stale_images(tmp_path: Path) -> None:
    out = tmp_path / "catalog"
    generate_into(out, SampleCatalogSpec(n_users=20, n_items=30, max_user_items=20))
    generate_into(out, SampleCatalogSpec(n_users=20, n_items=16, max_user_items=12))
    assert len(list((out / "images").iterdir())) == 16
    assert [p.name for p in tmp_path.iterdir()] == ["catalog"], "a staging directory was left behind"


def test_refuses_to_replace_a_directory_that_is_not_a_catalog(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(UserError, match="non-empty directory"):
        generate_into(tmp_path, SampleCatalogSpec(n_users=10, n_items=10, max_user_items=10))
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_command_line_exits_2_on_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "non-empty directory" in capsys.readouterr().err
