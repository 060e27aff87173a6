"""Deterministic generator of the shipped synthetic catalog ``sample_data/``.

The catalog is a small shop: every item has three latent attributes (category, colour, style) that are shown in
its text (title and description) and in its picture (the drawn shape is the category, the dominant colour is the
colour, the background texture is the style). Users prefer a few categories and colours and also follow a Zipf-like
popularity, so a long tail of items has few interactions: an ID-only model sees little of them while their text
and image still say what they are.

Generative model (all draws come from ``seed``)::

    item i:   category c_i ~ U(8), colour k_i ~ U(6), style s_i ~ U(5)
              popularity rank r_i = a random permutation of 1..n_items
              log pop_i = -zipf_exponent * log(r_i + zipf_offset)          (Zipf-Mandelbrot: long tail, flat head)
    user u:   favourite categories C_u (1 or 2), favourite colours K_u (1 or 2), favourite style S_u (1)
              number of items n_u = min_user_items + Geometric(mean = mean_extra_items), capped
    score     v_ui = log pop_i + w_cat [c_i in C_u] + w_col [k_i in K_u] + w_sty [s_i = S_u]
    items of u = the n_u largest v_ui + g_ui, g_ui ~ Gumbel(0, 1)
              (Gumbel top-k: n_u draws without replacement, each with probability ~ exp(v_ui) among the rest)

Then every item with no interaction is given to one user who likes its category and colour, each user's items
are split at random 8:1:1 into train/valid/test (at least one of each, since n_u >= 5), and an item that ended up
with no train interaction swaps labels with a train interaction of the same user whose item has others.

Only ``Generator.random`` is drawn from (integers, choices and permutations are derived from uniforms here), because
NumPy keeps the bit generator stable across versions but not every ``Generator`` method (NEP 19). Images are built
from integer arithmetic and Pillow's integer rasteriser and saved without metadata, so a re-run is byte-identical.

Run from a source checkout with recgoat installed: ``python tools/sample_catalog.py --out sample_data --seed 0``.
A developer tool, not part of the installed package; ``tests/data/test_sample_catalog.py`` checks that it still makes
the shipped ``sample_data/``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from recgoat_cli.artifacts.store import publish_folder
from recgoat_cli.data.layout import (
    IMAGES_DIR,
    ITEM_COLUMN,
    ITEM_MAPPING_FILE,
    ITEM_MAPPING_HEADER,
    ITEMS_FILE,
    REQUIRED_COLUMNS,
    TEST,
    TIMESTAMP_COLUMN,
    TRAIN,
    USER_MAPPING_FILE,
    USER_MAPPING_HEADER,
    VALID,
    inter_file_name,
)
from recgoat_cli.errors import UserError

logger = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = ("mug", "lamp", "sneaker", "backpack", "watch", "chair", "headphones", "vase")
COLOURS: tuple[str, ...] = ("red", "blue", "green", "yellow", "purple", "orange")
STYLES: tuple[str, ...] = ("minimalist", "vintage", "sporty", "rustic", "modern")

COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (200, 36, 40),
    "blue": (36, 80, 200),
    "green": (40, 150, 60),
    "yellow": (228, 196, 30),
    "purple": (128, 48, 168),
    "orange": (238, 128, 28),
}

# Light, low-saturation backgrounds so that the item colour dominates every colour histogram.
_BACKGROUND_RGB = (236, 234, 228)
_STYLE_PATTERN_RGB: dict[str, tuple[int, int, int]] = {
    "minimalist": _BACKGROUND_RGB,
    "vintage": (214, 204, 182),
    "sporty": (206, 208, 216),
    "rustic": (220, 210, 194),
    "modern": (196, 198, 204),
}

INTERACTIONS_FILE = inter_file_name("sample")
ATTRIBUTES_FILE = "attributes.tsv"
README_FILE = "README.md"


@dataclass(frozen=True)
class SampleCatalogSpec:
    """Sizes and preference strengths of the generated catalog; the defaults make the shipped ``sample_data/``."""

    seed: int = 0
    n_users: int = 500
    n_items: int = 400
    image_size: int = 32
    min_user_items: int = 5
    mean_extra_items: float = 15.0
    max_user_items: int = 80
    zipf_exponent: float = 2.0
    zipf_offset: float = 20.0
    category_weight: float = 3.0
    colour_weight: float = 2.2
    style_weight: float = 0.6


@dataclass(frozen=True)
class SampleCatalog:
    """The generated catalog in memory; ``interactions`` rows are (userID, itemID, x_label, timestamp)."""

    spec: SampleCatalogSpec
    item_category: np.ndarray  # (n_items,) int index into CATEGORIES
    item_colour: np.ndarray  # (n_items,) int index into COLOURS
    item_style: np.ndarray  # (n_items,) int index into STYLES
    item_popularity_rank: np.ndarray  # (n_items,) int, 1 = most popular a priori
    item_original_ids: tuple[str, ...]
    user_original_ids: tuple[str, ...]
    titles: tuple[str, ...]
    descriptions: tuple[str, ...]
    interactions: np.ndarray  # (n_interactions, 4) int64


class _UniformStream:
    """Random draws derived from ``Generator.random`` only, so the stream does not move between NumPy versions."""

    def __init__(self, seed: int, stream: int) -> None:
        self._generator = np.random.Generator(np.random.PCG64([seed, stream]))

    def uniform(self, size: int | None = None) -> np.ndarray:
        return self._generator.random(size)

    def integers(self, low: int, high: int, size: int) -> np.ndarray:
        """Integers in ``[low, high)``."""
        return low + np.floor(self.uniform(size) * (high - low)).astype(np.int64)

    def integer(self, low: int, high: int) -> int:
        return int(self.integers(low, high, 1)[0])

    def permutation(self, n: int) -> np.ndarray:
        return np.argsort(self.uniform(n), kind="stable")

    def pick(self, options: Sequence[str]) -> str:
        return options[self.integer(0, len(options))]

    def distinct(self, n_choose: int, n_options: int) -> np.ndarray:
        return self.permutation(n_options)[:n_choose]

    def gumbel(self, size: int) -> np.ndarray:
        uniforms = np.clip(self.uniform(size), 1e-12, 1.0 - 1e-12)
        return -np.log(-np.log(uniforms))


# Separate streams so that, e.g., rewording a description template does not change the interactions.
_STREAM_ITEMS, _STREAM_USERS, _STREAM_INTERACTIONS, _STREAM_SPLIT, _STREAM_TEXT, _STREAM_IMAGES = range(6)


# ---------------------------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------------------------

_BRANDS = (
    "Northwind", "Kestrel", "Aster & Co", "Maple Row", "Brightfold", "Oakhaven", "Lumen Works", "Tidewater",
    "Fernhill", "Copperline", "Harbor & Pine", "Quillon",
)

_CATEGORY_SYNONYMS: dict[str, tuple[str, ...]] = {
    "mug": ("coffee mug", "mug for tea and coffee", "stoneware mug", "mug"),
    "lamp": ("desk lamp", "table lamp", "reading lamp", "lamp"),
    "sneaker": ("sneaker", "running sneaker", "everyday sneaker", "low-top sneaker"),
    "backpack": ("backpack", "daypack backpack", "commuter backpack", "travel backpack"),
    "watch": ("wristwatch", "analogue watch", "watch", "everyday watch"),
    "chair": ("dining chair", "desk chair", "side chair", "chair"),
    "headphones": ("over-ear headphones", "wireless headphones", "headphones", "studio headphones"),
    "vase": ("flower vase", "ceramic vase", "vase", "table vase"),
}

_CATEGORY_FEATURES: dict[str, tuple[str, ...]] = {
    "mug": (
        "It holds 350 ml and is dishwasher safe.",
        "The wide handle fits two fingers comfortably.",
        "Keeps your morning coffee warm a little longer.",
        "Microwave safe and stackable.",
    ),
    "lamp": (
        "A warm LED bulb is included.",
        "The shade tilts to point the light where you read.",
        "Comes with a two-metre cable and an inline switch.",
        "Gives a soft glow for a bedside table or desk.",
    ),
    "sneaker": (
        "A cushioned sole makes long walks easy.",
        "Breathable mesh upper with a padded collar.",
        "Rubber outsole with a good grip on wet pavement.",
        "Lace-up fit, true to size.",
    ),
    "backpack": (
        "Has a padded sleeve for a 15-inch laptop.",
        "Holds 22 litres with two side pockets for bottles.",
        "Water-resistant fabric and padded shoulder straps.",
        "A hidden back pocket keeps your passport safe.",
    ),
    "watch": (
        "Quartz movement, water resistant to 50 metres.",
        "The strap is easy to swap without tools.",
        "Luminous hands are readable in the dark.",
        "A slim 38 mm case sits flat on the wrist.",
    ),
    "chair": (
        "Solid frame rated for 120 kg.",
        "The seat is padded and the backrest is curved for support.",
        "Felt pads on the legs protect wooden floors.",
        "Arrives flat-packed and assembles in ten minutes.",
    ),
    "headphones": (
        "Up to 30 hours of battery life on one charge.",
        "Soft ear cushions for long listening sessions.",
        "Folds flat into the included travel case.",
        "Active noise cancelling blocks out the commute.",
    ),
    "vase": (
        "Stands 25 cm tall and is watertight.",
        "The narrow neck holds a few stems upright.",
        "Looks good on a windowsill or a dining table.",
        "Glazed inside so it is easy to rinse clean.",
    ),
}

_COLOUR_SHADES: dict[str, tuple[str, ...]] = {
    "red": ("bright red", "deep red", "cherry red", "crimson red"),
    "blue": ("navy blue", "cobalt blue", "sky blue", "deep blue"),
    "green": ("forest green", "sage green", "emerald green", "bright green"),
    "yellow": ("lemon yellow", "mustard yellow", "sunny yellow", "golden yellow"),
    "purple": ("plum purple", "violet purple", "deep purple", "royal purple"),
    "orange": ("tangerine orange", "burnt orange", "bright orange", "amber orange"),
}

_STYLE_SENTENCES: dict[str, tuple[str, ...]] = {
    "minimalist": ("Clean lines and nothing extra.", "A simple, minimalist design that fits anywhere."),
    "vintage": ("Inspired by designs from the 1970s.", "A vintage look with a retro finish."),
    "sporty": ("Built for an active day outdoors.", "A sporty design that keeps up with you."),
    "rustic": ("Has a hand-made, countryside feel.", "A rustic finish with natural textures."),
    "modern": ("A sleek, contemporary take on a classic.", "Modern styling with crisp edges."),
}


def _capitalise_words(text: str) -> str:
    return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))


def _item_title(category: str, colour: str, style: str, brand: str, model_code: str, template: int) -> str:
    noun = _capitalise_words(category)
    colour_word = colour.capitalize()
    style_word = style.capitalize()
    titles = (
        f"{brand} {colour_word} {style_word} {noun}",
        f"{style_word} {noun} in {colour_word}",
        f"{colour_word} {noun} - {style_word} Edition",
        f"The {brand} {noun}, {colour_word}",
        f"{style_word} {colour_word} {noun} {model_code}",
    )
    return titles[template]


def _item_description(category: str, colour: str, style: str, draws: _UniformStream) -> str:
    synonym = draws.pick(_CATEGORY_SYNONYMS[category])
    shade = draws.pick(_COLOUR_SHADES[colour])
    openings = (
        f"A {style} {synonym} finished in {shade}.",
        f"This {synonym} comes in a {shade} colour.",
        f"{shade.capitalize()} {synonym} with a {style} look.",
        f"Our {synonym}, now in {shade}.",
    )
    sentences = [openings[draws.integer(0, len(openings))], draws.pick(_CATEGORY_FEATURES[category])]
    # Some descriptions leave the style sentence out, so that text is not a fixed template per attribute triple.
    if draws.uniform() < 0.7:
        sentences.append(draws.pick(_STYLE_SENTENCES[style]))
    return " ".join(sentences)


def _item_texts(
    categories: np.ndarray, colours: np.ndarray, styles: np.ndarray, seed: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    draws = _UniformStream(seed, _STREAM_TEXT)
    titles, descriptions = [], []
    for category_index, colour_index, style_index in zip(categories, colours, styles, strict=True):
        category, colour, style = CATEGORIES[category_index], COLOURS[colour_index], STYLES[style_index]
        brand = draws.pick(_BRANDS)
        model_code = f"{chr(ord('A') + draws.integer(0, 26))}{draws.integer(100, 1000)}"
        titles.append(_item_title(category, colour, style, brand, model_code, draws.integer(0, 5)))
        descriptions.append(_item_description(category, colour, style, draws))
    return tuple(titles), tuple(descriptions)


# ---------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------


def _darker(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(channel * 3 // 5 for channel in rgb)  # type: ignore[return-value]


def _draw_category_shape(
    draw: ImageDraw.ImageDraw, category: str, size: int, dx: int, dy: int, fill: tuple[int, int, int]
) -> None:
    """Draw the category's silhouette; shapes are designed on a unit square and scaled to ``size`` pixels."""

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        return (round(x0 * size) + dx, round(y0 * size) + dy, round(x1 * size) + dx, round(y1 * size) + dy)

    def points(*xy: tuple[float, float]) -> list[tuple[int, int]]:
        return [(round(x * size) + dx, round(y * size) + dy) for x, y in xy]

    accent = _darker(fill)
    stroke = max(1, size // 12)
    if category == "mug":
        draw.rectangle(box(0.22, 0.28, 0.64, 0.82), fill=fill)
        draw.ellipse(box(0.54, 0.38, 0.84, 0.70), outline=fill, width=stroke + 1)
        draw.rectangle(box(0.22, 0.28, 0.64, 0.34), fill=accent)
    elif category == "lamp":
        draw.polygon(points((0.34, 0.14), (0.66, 0.14), (0.84, 0.50), (0.16, 0.50)), fill=fill)
        draw.rectangle(box(0.46, 0.50, 0.54, 0.80), fill=accent)
        draw.rectangle(box(0.28, 0.78, 0.72, 0.86), fill=fill)
    elif category == "sneaker":
        draw.polygon(
            points((0.10, 0.50), (0.42, 0.50), (0.52, 0.32), (0.70, 0.38), (0.90, 0.62), (0.90, 0.74), (0.10, 0.74)),
            fill=fill,
        )
        draw.rectangle(box(0.10, 0.72, 0.90, 0.80), fill=accent)
    elif category == "backpack":
        draw.rounded_rectangle(box(0.24, 0.20, 0.76, 0.88), radius=max(2, size // 8), fill=fill)
        draw.rectangle(box(0.34, 0.56, 0.66, 0.78), fill=accent)
        draw.arc(box(0.38, 0.08, 0.62, 0.32), start=180, end=360, fill=accent, width=stroke)
    elif category == "watch":
        draw.rectangle(box(0.40, 0.04, 0.60, 0.96), fill=accent)
        draw.ellipse(box(0.22, 0.22, 0.78, 0.78), fill=fill)
        draw.line(points((0.50, 0.50), (0.50, 0.30)), fill=accent, width=stroke)
        draw.line(points((0.50, 0.50), (0.64, 0.50)), fill=accent, width=stroke)
    elif category == "chair":
        draw.rectangle(box(0.26, 0.10, 0.74, 0.48), fill=fill)
        draw.rectangle(box(0.20, 0.48, 0.80, 0.60), fill=accent)
        draw.rectangle(box(0.22, 0.60, 0.30, 0.90), fill=fill)
        draw.rectangle(box(0.70, 0.60, 0.78, 0.90), fill=fill)
    elif category == "headphones":
        draw.arc(box(0.18, 0.12, 0.82, 0.76), start=180, end=360, fill=accent, width=stroke + 1)
        draw.ellipse(box(0.10, 0.40, 0.36, 0.80), fill=fill)
        draw.ellipse(box(0.64, 0.40, 0.90, 0.80), fill=fill)
    elif category == "vase":
        draw.ellipse(box(0.22, 0.38, 0.78, 0.92), fill=fill)
        draw.rectangle(box(0.40, 0.14, 0.60, 0.46), fill=fill)
        draw.rectangle(box(0.32, 0.10, 0.68, 0.16), fill=accent)
    else:
        raise ValueError(f"no shape for category {category!r}")


def _style_background(style: str, size: int) -> np.ndarray:
    """(size, size, 3) uint8 background whose texture encodes the style."""
    rows, cols = np.mgrid[0:size, 0:size]
    period = max(4, size // 8)
    if style == "minimalist":
        pattern = np.zeros((size, size), dtype=bool)
    elif style == "vintage":
        pattern = (rows + cols) % period < period // 2
    elif style == "sporty":
        pattern = rows % period < period // 2
    elif style == "rustic":
        pattern = ((rows // (period // 2)) + (cols // (period // 2))) % 2 == 0
    elif style == "modern":
        pattern = (rows % period == period // 2) & (cols % period == period // 2)
    else:
        raise ValueError(f"no background for style {style!r}")
    background = np.empty((size, size, 3), dtype=np.int16)
    background[...] = _BACKGROUND_RGB
    background[pattern] = _STYLE_PATTERN_RGB[style]
    return background.astype(np.uint8)


def render_item_image(category: str, colour: str, style: str, size: int, draws: _UniformStream) -> Image.Image:
    """One item picture: style texture as background, the category shape in the item colour, pixel noise."""
    max_shift = max(1, size // 16)
    dx, dy = (int(v) for v in draws.integers(-max_shift, max_shift + 1, 2))
    shade = draws.integers(-18, 19, 3)
    fill = tuple(int(np.clip(c + s, 0, 255)) for c, s in zip(COLOUR_RGB[colour], shade, strict=True))
    image = Image.fromarray(_style_background(style, size), mode="RGB")
    _draw_category_shape(ImageDraw.Draw(image), category, size, dx, dy, fill)  # type: ignore[arg-type]
    noise = draws.integers(-8, 9, size * size * 3).reshape(size, size, 3)
    pixels = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode="RGB")


# ---------------------------------------------------------------------------------------------------------------
# Interactions
# ---------------------------------------------------------------------------------------------------------------


def _user_preferences(n_users: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    draws = _UniformStream(seed, _STREAM_USERS)
    favourite_categories, favourite_colours = [], []
    favourite_styles = np.empty(n_users, dtype=np.int64)
    for user in range(n_users):
        favourite_categories.append(draws.distinct(1 + int(draws.uniform() < 0.5), len(CATEGORIES)))
        favourite_colours.append(draws.distinct(1 + int(draws.uniform() < 0.5), len(COLOURS)))
        favourite_styles[user] = draws.integer(0, len(STYLES))
    return favourite_categories, favourite_colours, favourite_styles


def _preference_scores(
    spec: SampleCatalogSpec,
    categories: np.ndarray,
    colours: np.ndarray,
    styles: np.ndarray,
    log_popularity: np.ndarray,
    favourite_categories: np.ndarray,
    favourite_colours: np.ndarray,
    favourite_style: int,
) -> np.ndarray:
    """Noise-free score v_ui of one user for every item."""
    return (
        log_popularity
        + spec.category_weight * np.isin(categories, favourite_categories)
        + spec.colour_weight * np.isin(colours, favourite_colours)
        + spec.style_weight * (styles == favourite_style)
    )


def _split_labels(n_items_of_user: int, draws: _UniformStream) -> np.ndarray:
    """Random 8:1:1 split of one user's items; one valid and one test item at least when there are >= 3."""
    n_held_out = max(1, int(np.floor(0.1 * n_items_of_user + 0.5))) if n_items_of_user >= 3 else 0
    labels = np.full(n_items_of_user, TRAIN, dtype=np.int64)
    order = draws.permutation(n_items_of_user)
    labels[order[:n_held_out]] = TEST
    labels[order[n_held_out : 2 * n_held_out]] = VALID
    return labels


def _give_every_item_a_train_interaction(
    user_items: list[np.ndarray], user_labels: list[np.ndarray], n_items: int
) -> None:
    """Swap labels, within one user, so that each item has a train row; each user keeps its label counts."""
    train_counts = np.zeros(n_items, dtype=np.int64)
    for items, labels in zip(user_items, user_labels, strict=True):
        np.add.at(train_counts, items[labels == TRAIN], 1)
    for items, labels in zip(user_items, user_labels, strict=True):
        for position in np.flatnonzero(labels != TRAIN):
            item = items[position]
            if train_counts[item] > 0:
                continue
            donors = [p for p in np.flatnonzero(labels == TRAIN) if train_counts[items[p]] >= 2]
            if not donors:
                continue
            donor = donors[0]
            labels[position], labels[donor] = TRAIN, labels[position]
            train_counts[item] += 1
            train_counts[items[donor]] -= 1


def generate_sample_catalog(spec: SampleCatalogSpec = SampleCatalogSpec()) -> SampleCatalog:
    """Draw the whole catalog (attributes, texts, interactions with split and timestamps) for ``spec``."""
    if spec.n_users < 1 or spec.n_items < len(CATEGORIES):
        raise ValueError(f"need at least 1 user and {len(CATEGORIES)} items, got {spec.n_users} and {spec.n_items}")
    if spec.min_user_items < 3 or spec.max_user_items > spec.n_items or spec.min_user_items > spec.max_user_items:
        raise ValueError("need 3 <= min_user_items <= max_user_items <= n_items")

    item_draws = _UniformStream(spec.seed, _STREAM_ITEMS)
    categories = item_draws.integers(0, len(CATEGORIES), spec.n_items)
    colours = item_draws.integers(0, len(COLOURS), spec.n_items)
    styles = item_draws.integers(0, len(STYLES), spec.n_items)
    popularity_rank = item_draws.permutation(spec.n_items) + 1
    log_popularity = -spec.zipf_exponent * np.log(popularity_rank + spec.zipf_offset)
    item_original_ids = tuple(f"sku-{number:04d}" for number in np.sort(item_draws.distinct(spec.n_items, 10_000)))

    favourite_categories, favourite_colours, favourite_styles = _user_preferences(spec.n_users, spec.seed)
    user_draws = _UniformStream(spec.seed, _STREAM_USERS + 100)
    user_original_ids = tuple(f"u{number:04d}" for number in np.sort(user_draws.distinct(spec.n_users, 10_000)))

    interaction_draws = _UniformStream(spec.seed, _STREAM_INTERACTIONS)
    geometric_p = 1.0 / (1.0 + spec.mean_extra_items)
    user_items: list[np.ndarray] = []
    noise_free_scores = []
    for user in range(spec.n_users):
        extra = int(np.floor(np.log(1.0 - interaction_draws.uniform()) / np.log(1.0 - geometric_p)))
        n_user_items = min(spec.min_user_items + extra, spec.max_user_items)
        scores = _preference_scores(
            spec, categories, colours, styles, log_popularity,
            favourite_categories[user], favourite_colours[user], int(favourite_styles[user]),
        )
        noisy = scores + interaction_draws.gumbel(spec.n_items)
        user_items.append(np.argsort(-noisy, kind="stable")[:n_user_items])
        noise_free_scores.append(scores)

    # Items nobody picked go to the user who likes them most (ties broken by a random jitter), so every item has data.
    picked = np.zeros(spec.n_items, dtype=bool)
    for items in user_items:
        picked[items] = True
    for item in np.flatnonzero(~picked):
        affinity = np.array([scores[item] for scores in noise_free_scores]) + 1e-3 * interaction_draws.uniform(
            spec.n_users
        )
        user = int(np.argmax(affinity))
        user_items[user] = np.append(user_items[user], item)

    split_draws = _UniformStream(spec.seed, _STREAM_SPLIT)
    user_labels = [_split_labels(len(items), split_draws) for items in user_items]
    _give_every_item_a_train_interaction(user_items, user_labels, spec.n_items)

    # Timestamps: a random order of each user's items over a random stretch of 2021-2022, one to thirty days apart.
    rows = []
    start_of_2021, two_years = 1_609_459_200, 2 * 365 * 86_400
    for user, (items, labels) in enumerate(zip(user_items, user_labels, strict=True)):
        order = split_draws.permutation(len(items))
        gaps = split_draws.integers(3_600, 30 * 86_400, len(items))
        timestamps = start_of_2021 + split_draws.integer(0, two_years) + np.cumsum(gaps)
        for position, timestamp in zip(order, timestamps, strict=True):
            rows.append((user, int(items[position]), int(labels[position]), int(timestamp)))
    interactions = np.array(rows, dtype=np.int64)

    titles, descriptions = _item_texts(categories, colours, styles, spec.seed)
    return SampleCatalog(
        spec=spec,
        item_category=categories,
        item_colour=colours,
        item_style=styles,
        item_popularity_rank=popularity_rank,
        item_original_ids=item_original_ids,
        user_original_ids=user_original_ids,
        titles=titles,
        descriptions=descriptions,
        interactions=interactions,
    )


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------


def _write_lines(path: Path, header: str, lines: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(header + "\n")
        for line in lines:
            handle.write(line + "\n")


def _catalog_readme(catalog: SampleCatalog, data_bytes: int) -> str:
    spec = catalog.spec
    labels = catalog.interactions[:, 2]
    item_counts = np.bincount(catalog.interactions[:, 1], minlength=spec.n_items)
    user_counts = np.bincount(catalog.interactions[:, 0], minlength=spec.n_users)
    n_train, n_valid, n_test = (int((labels == label).sum()) for label in (TRAIN, VALID, TEST))
    return f"""# sample_data: a synthetic multimodal shop catalog

Made by this project, for this project: no third-party data. Licence: MIT, the same as the repository.

Regenerate it (byte-identical for the same seed, NumPy's PCG64 stream and zlib version) with

    python tools/sample_catalog.py --out sample_data --seed {spec.seed}

## Sizes

| users | items | interactions | train / valid / test | interactions per user | interactions per item |
|---|---|---|---|---|---|
| {spec.n_users} | {spec.n_items} | {len(labels)} | {n_train} / {n_valid} / {n_test} | {user_counts.min()} to {user_counts.max()} (median {int(np.median(user_counts))}) | {item_counts.min()} to {item_counts.max()} (median {int(np.median(item_counts))}) |

{int((item_counts <= 5).sum())} of the {spec.n_items} items have 5 interactions or fewer: a long tail that an ID-only
model learns little about, while the item's text and picture still show its attributes.
The data files (everything but this README) take {data_bytes / 1e6:.2f} MB.

## Files (MMRec layout)

- `sample.inter`: tab separated, header `userID	itemID	x_label	timestamp`. Ids are contiguous from 0. `x_label` 0 =
  train, 1 = valid, 2 = test: a per-user random 8:1:1 split (every user has at least one item of each label).
  `timestamp` is Unix seconds, increasing along each user's rows; the split does not follow it.
  No (user, item) pair occurs twice.
- `items.tsv`: tab separated, header `itemID	title	description`, one row per item id, UTF-8, no tabs, newlines or
  double quotes inside fields.
- `images/<itemID>.png`: {spec.image_size}x{spec.image_size} RGB picture of every item.
- `u_id_mapping.csv` (`user_id,userID`, original ids like `u0007`) and `i_id_mapping.csv` (`item_id,itemID`,
  original ids like `sku-0042`): comma separated.
- `attributes.tsv`: `itemID	category	colour	style`, the GROUND TRUTH latent attributes. Tests use it to check that
  the signal is real; the pipeline must not read it.

## How it was made

Every item has a category (one of {len(CATEGORIES)}: {", ".join(CATEGORIES)}),
a colour (one of {len(COLOURS)}: {", ".join(COLOURS)}) and a style (one of {len(STYLES)}: {", ".join(STYLES)}),
drawn uniformly and independently. They are visible in

- the text: the title always names the category, and most title templates also name the colour and style; the
  description names a shade of the colour (e.g. "navy blue"), a category synonym, a category-specific feature and,
  in 70% of items, a style sentence. Brands and model codes are random and carry no signal.
- the image: the category is a drawn silhouette (mug, lamp, ...) filled with the item colour (plus a per-item shade
  shift of up to 18 per channel and a shift of a pixel or two), the style is the background texture (plain,
  diagonal stripes, horizontal stripes, checks, dots), and every pixel gets uniform noise of up to 8 per channel.

Each item i has a popularity rank r_i (a random permutation of 1..{spec.n_items}) and
log pop_i = -{spec.zipf_exponent:g} log(r_i + {spec.zipf_offset:g}) (Zipf-Mandelbrot: a long tail without one item
that every user takes). Each user u has 1 or 2 favourite categories C_u, 1 or 2 favourite colours K_u and one
favourite style S_u, and interacts with n_u = min({spec.min_user_items} + Geometric(mean {spec.mean_extra_items:g}), {spec.max_user_items}) items: the n_u largest z_ui of

    v_ui = log pop_i + {spec.category_weight:g} [c_i in C_u] + {spec.colour_weight:g} [k_i in K_u] + {spec.style_weight:g} [s_i = S_u]
    z_ui = v_ui + g_ui,   g_ui ~ Gumbel(0, 1)

(Gumbel top-k: n_u draws without replacement, each with probability proportional to exp(v_ui) among the items
left). An item nobody picked is given to the user with the highest noise-free score for it. Each user's items are then split at random 8:1:1, and
an item left without a train interaction swaps labels with a train interaction of the same user whose item has
other train interactions, so every item has at least one train interaction.

The generator is `tools/sample_catalog.py`; its tests are `tests/data/test_sample_catalog.py`.
"""


def write_sample_catalog(catalog: SampleCatalog, out_dir: Path) -> None:
    """Write ``catalog`` into the empty or missing directory ``out_dir`` (not atomic; see ``generate_into``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images_dir = out_dir / IMAGES_DIR
    images_dir.mkdir(exist_ok=True)
    spec = catalog.spec

    _write_lines(
        out_dir / INTERACTIONS_FILE,
        "\t".join((*REQUIRED_COLUMNS, TIMESTAMP_COLUMN)),
        ["\t".join(str(value) for value in row) for row in catalog.interactions.tolist()],
    )
    _write_lines(
        out_dir / ITEMS_FILE,
        f"{ITEM_COLUMN}\ttitle\tdescription",
        [f"{item}\t{title}\t{text}" for item, (title, text) in enumerate(zip(catalog.titles, catalog.descriptions, strict=True))],
    )
    _write_lines(
        out_dir / ATTRIBUTES_FILE,
        f"{ITEM_COLUMN}\tcategory\tcolour\tstyle",
        [
            f"{item}\t{CATEGORIES[c]}\t{COLOURS[k]}\t{STYLES[s]}"
            for item, (c, k, s) in enumerate(zip(catalog.item_category, catalog.item_colour, catalog.item_style, strict=True))
        ],
    )
    _write_lines(
        out_dir / USER_MAPPING_FILE,
        ",".join(USER_MAPPING_HEADER),
        [f"{original},{user}" for user, original in enumerate(catalog.user_original_ids)],
    )
    _write_lines(
        out_dir / ITEM_MAPPING_FILE,
        ",".join(ITEM_MAPPING_HEADER),
        [f"{original},{item}" for item, original in enumerate(catalog.item_original_ids)],
    )

    image_draws = _UniformStream(spec.seed, _STREAM_IMAGES)
    for item in range(spec.n_items):
        image = render_item_image(
            CATEGORIES[catalog.item_category[item]],
            COLOURS[catalog.item_colour[item]],
            STYLES[catalog.item_style[item]],
            spec.image_size,
            image_draws,
        )
        # A fixed compression level and no pnginfo: Pillow then writes no time or text chunks, so bytes repeat.
        image.save(images_dir / f"{item}.png", format="PNG", compress_level=9)

    data_bytes = sum(path.stat().st_size for path in out_dir.rglob("*") if path.is_file())
    (out_dir / README_FILE).write_text(_catalog_readme(catalog, data_bytes), encoding="utf-8", newline="\n")


def generate_into(out_dir: Path, spec: SampleCatalogSpec = SampleCatalogSpec()) -> SampleCatalog:
    """Generate the catalog and replace ``out_dir`` with it atomically (temp dir next to it, then rename).

    An existing ``out_dir`` is replaced only when it is empty or an earlier sample catalog (it holds
    ``sample.inter``), so a mistyped ``--out`` cannot wipe unrelated files.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UserError(f"--out {out_dir} is a file; pass a directory path for the sample catalog.")
        if any(out_dir.iterdir()) and not (out_dir / INTERACTIONS_FILE).is_file():
            raise UserError(
                f"--out {out_dir} is a non-empty directory without {INTERACTIONS_FILE}; pass an empty or new directory."
            )
    catalog = generate_sample_catalog(spec)
    with publish_folder(out_dir, replace=True) as staging:
        write_sample_catalog(catalog, staging)
    logger.info("wrote %d users, %d items, %d interactions to %s", spec.n_users, spec.n_items,
                len(catalog.interactions), out_dir)
    return catalog


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/sample_catalog.py",
        description="Write the deterministic synthetic sample catalog (MMRec layout, with texts and images).",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to create or replace, e.g. sample_data")
    parser.add_argument("--seed", type=int, default=0, help="random seed (the shipped catalog uses 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        generate_into(args.out, SampleCatalogSpec(seed=args.seed))
    except UserError as error:
        parser.exit(2, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
