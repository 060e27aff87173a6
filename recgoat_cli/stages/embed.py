"""``recgoat embed``: LM representations of items, one matrix per modality, and of users.

Modalities:
- ``text``: a sentence-transformers model over a template of the dataset's ``items.tsv`` columns;
- ``image``: open_clip with real weights (``--image-encoder clip``), or, when no weights are given, the
  documented colour-histogram + gradient-orientation descriptor (``descriptor``), said so in the manifest;
- any precomputed ``*_feat.npy`` of the dataset, and files given with ``--feature NAME=path`` (a dataset file whose
  name is already an encoded modality, e.g. MMRec's ``text_feat.npy`` next to ``items.tsv``, becomes ``text_feat``).

The models are found before the cache check (a hub model is downloaded into the Hugging Face cache on first
use, unless ``--offline``), and their fingerprints (hub commit, hashes of a local folder's or weights file's
bytes) enter the artifact id next to the input hashes: a changed model is a new artifact.

Users: from each user's **train** items only, either the mean of their item text rows (``mean``; the first
modality when there is no text) or a text profile of their last N train items encoded as a query (``profile``).

Files: ``item_<modality>.npy`` (float32 ``[n_items, d]``), ``users.npy`` (float32 ``[n_users, d]``) and
``modalities.json`` (what each matrix is). Items without text or without an image file are filled with the
mean row of the modality, counted and listed in the manifest. An image file that exists but does not decode
(empty, truncated, not an image) stops the stage with its name, unless ``--skip-unreadable-images`` asks for
the same mean-row fill.

Under torchrun each rank encodes a contiguous chunk of the item texts, images and user profiles
(``distributed.shard_range``); the chunks are gathered in order and rank 0 writes the artifact.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recgoat_cli.artifacts.manifest import compute_artifact_id, sha256_file, sha256_json
from recgoat_cli.artifacts.store import Artifact, write_manifest
from recgoat_cli.config import EmbedConfig
from recgoat_cli.data.dataset import Dataset, first_malformed_line
from recgoat_cli.data.layout import IMAGE_SUFFIXES, IMAGES_DIR, ITEM_COLUMN, ITEMS_FILE, is_preferred_image
from recgoat_cli.errors import UserError
from recgoat_cli.limits import check_encoder_batch
from recgoat_cli.stages.common import StageContext, resolve_device, split_csr

STAGE = "embed"
TITLE_COLUMNS = ("title", "movie_title", "name", "item_name")
GENRE_COLUMNS = ("genres", "genre", "class", "category", "categories")
DESCRIPTION_COLUMNS = ("description", "plot", "overview", "summary")
DESCRIPTOR_NAME = "colour-histogram+HOG descriptor (classical, no learned weights)"
LISTED_MISSING = 50


def read_item_table(dataset: Dataset):
    """``items.tsv`` as a polars frame with one row per item id (absent ids get empty fields)."""
    import polars as pl

    path = dataset.item_table
    try:
        frame = pl.read_csv(path, separator="\t", infer_schema_length=0, quote_char=None, encoding="utf8")
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        with open(path, "rb") as handle:
            n_fields = handle.readline().count(b"\t") + 1
        problem = first_malformed_line(path, n_fields) or f"cannot be read as UTF-8 tab-separated text ({str(exc).splitlines()[0]})"
        raise UserError(f"{path} {problem}; fix that row or regenerate the file with `recgoat prepare`.") from None
    if ITEM_COLUMN not in frame.columns:
        raise UserError(f"{path} has no itemID column (header: {', '.join(frame.columns)}).")
    ids = frame[ITEM_COLUMN].cast(pl.Int64, strict=False)
    if ids.null_count() or (ids >= dataset.n_items).any() or (ids < 0).any():
        raise UserError(f"{path} column itemID holds an id that is not an item of {dataset.inter_file.name}; regenerate it with `recgoat prepare`.")
    frame = frame.with_columns(ids.alias(ITEM_COLUMN)).unique(ITEM_COLUMN, keep="first")
    full = pl.DataFrame({ITEM_COLUMN: np.arange(dataset.n_items, dtype=np.int64)})
    return full.join(frame, on=ITEM_COLUMN, how="left").sort(ITEM_COLUMN)


def _first(columns: list[str], wanted: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[w] for w in wanted if w in lower), None)


def default_text_template(columns: list[str]) -> str:
    """Title, genres and description, when the table has columns that look like them."""
    title, genre, description = (_first(columns, w) for w in (TITLE_COLUMNS, GENRE_COLUMNS, DESCRIPTION_COLUMNS))
    parts = []
    if title:
        parts.append("{" + title + "}.")
    if genre:
        parts.append("Genres: {" + genre + "}.")
    if description:
        parts.append("{" + description + "}")
    if not parts:
        raise UserError(
            f"cannot guess a text template from the item columns ({', '.join(columns)}); pass --text-template, e.g. '{{{columns[0]}}}'."
        )
    return " ".join(parts)


def image_paths(dataset: Dataset) -> list[Path | None]:
    """The image file of each item (``images/<itemID>.<ext>`` for any suffix of ``IMAGE_SUFFIXES``), or None.

    An item with several files gets the one whose suffix comes first in ``IMAGE_SUFFIXES``, as in ``prepare``.
    """
    paths: list[Path | None] = [None] * dataset.n_items
    if dataset.image_dir is None:
        return paths
    for path in sorted(dataset.image_dir.iterdir()):
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES and path.stem.isdigit() and int(path.stem) < dataset.n_items and not path.name.startswith("."):
            item = int(path.stem)
            if is_preferred_image(path, paths[item]):
                paths[item] = path
    return paths


def input_fingerprint(dataset: Dataset, config: EmbedConfig) -> dict[str, str]:
    """Hashes of everything an embedding depends on: interactions, item table, images, feature files."""
    hashes = dataset.input_hashes()
    if dataset.item_table is not None and config.text_model:
        hashes[ITEMS_FILE] = sha256_file(dataset.item_table)
    if dataset.image_dir is not None and config.image_encoder != "none":
        hashes[f"{IMAGES_DIR}/"] = sha256_json(
            [(p.name, sha256_file(p)) for p in sorted(dataset.image_dir.iterdir()) if p.is_file()]
        )
    if config.dataset_features:
        hashes.update({path.name: sha256_file(path) for path in dataset.feature_files.values()})
    for name, path in config.features:
        if not Path(path).is_file():
            raise UserError(f"--feature {name}={path}: the file does not exist.")
        hashes[f"feature:{name}"] = sha256_file(Path(path))
    return hashes


def _train_items_in_time_order(dataset: Dataset) -> list[list[int]]:
    users, items = dataset.split("train")
    stamps = dataset.timestamps["train"] if dataset.timestamps is not None else np.zeros(len(users))
    order = np.lexsort((np.arange(len(users)), stamps, users))
    per_user: list[list[int]] = [[] for _ in range(dataset.n_users)]
    for u, i in zip(users[order].tolist(), items[order].tolist()):
        per_user[u].append(i)
    return per_user


def _missing_record(indices: list[int], rule: str, reasons: list[str] | None = None) -> dict:
    record = {"count": len(indices), "items": indices[:LISTED_MISSING], "fill": rule}
    if reasons:
        record["reasons"] = reasons[:LISTED_MISSING]
    return record


def _quiet_transformers() -> None:
    """No model-loading progress bars or notices when the caller asked for --json or --quiet output."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def sharded_rows(encode, inputs: list) -> np.ndarray:
    """``encode`` (inputs -> rows) over this rank's chunk of ``inputs``; all rows, in input order, on every rank."""
    from recgoat_cli import distributed

    part = distributed.shard_range(len(inputs))
    return distributed.gather_rows(encode(inputs[part.start : part.stop]))


def sharded_images(describe, paths: list) -> tuple[np.ndarray, list[int], list[str]]:
    """``describe`` (paths -> rows, bad indices, reasons) over this rank's chunk of ``paths``, joined in path order."""
    from recgoat_cli import distributed

    part = distributed.shard_range(len(paths))
    rows, bad, reasons = describe(paths[part.start : part.stop])
    pieces = distributed.all_gather_objects((part.start, rows, bad, reasons))
    return (
        np.concatenate([piece[1] for piece in pieces]),
        [start + index for start, _, bad, _ in pieces for index in bad],
        [reason for piece in pieces for reason in piece[3]],
    )


def run_embed(ctx: StageContext, config: EmbedConfig, *, log=lambda message: None) -> tuple[Artifact, bool]:
    from recgoat_cli.encoders.text import fill_missing_rows

    dataset = ctx.dataset
    hashes = input_fingerprint(dataset, config)
    # The models are found (hub models fetched) before the cache check: the id includes what would be loaded.
    text_source, image_source = resolve_models(ctx, config, log)
    if text_source is not None:
        hashes["text_model"] = text_source.fingerprint
    if image_source is not None:
        hashes["image_weights"] = image_source.fingerprint
    artifact_id = compute_artifact_id(STAGE, config.semantic_dump(), [], hashes)
    if (cached := ctx.cached(STAGE, artifact_id)) is not None:
        return cached, True
    device = str(resolve_device(config.device))
    check_encoder_batch(config.batch_size, max(dataset.n_items, dataset.n_users))
    if config.user_mode == "profile":
        require_train_items_for_profiles(dataset)
    modalities: dict[str, np.ndarray] = {}
    described: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    text_encoder = None  # (model, spec, item table) once text is encoded, reused for user profiles

    if config.text_model:
        if dataset.item_table is None:
            skipped["text"] = f"{dataset.root} has no items.tsv"
        else:
            from recgoat_cli.encoders.text import encode_texts, load_text_model, render_item_texts

            if not ctx.progress:
                _quiet_transformers()
            table = read_item_table(dataset)
            template = config.text_template or default_text_template([c for c in table.columns if c != ITEM_COLUMN])
            texts, missing = render_item_texts(table.drop(ITEM_COLUMN), template, dataset.n_items)
            text_model, spec, info = load_text_model(config.text_model, device, source=text_source)
            text_encoder = (text_model, spec, table)
            log(f"text: {info['name']} ({info['dim']}-d) over {dataset.n_items} items")
            present = [i for i, t in enumerate(texts) if t]
            matrix = np.zeros((dataset.n_items, info["dim"]), dtype=np.float32)
            if present:
                matrix[present] = sharded_rows(
                    lambda chunk: encode_texts(
                        text_model, chunk, batch_size=config.batch_size, prefix=spec.passage_prefix,
                        normalize=spec.normalize, device=device, progress=ctx.progress,
                    ),
                    [texts[i] for i in present],
                )
            modalities["text"] = fill_missing_rows(matrix, missing, config.missing_rule, what="item texts")
            described["text"] = {"kind": "text", "template": template, "missing": _missing_record(missing, config.missing_rule), **info}

    if config.image_encoder != "none":
        paths = image_paths(dataset)
        have_images = any(p is not None for p in paths)
        encoder = image_encoder_choice(config)
        if not have_images:
            if config.image_encoder in ("clip", "descriptor"):
                raise UserError(f"--image-encoder {config.image_encoder}: {dataset.root} has no images/ folder with <itemID>.<ext> files ({', '.join(IMAGE_SUFFIXES)}).")
            skipped["image"] = f"{dataset.root} has no images"
        elif encoder == "clip":
            from recgoat_cli.encoders.image import encode_images, load_image_model

            model, preprocess, info = load_image_model(config.image_model, config.image_weights, device, source=image_source)
            log(f"image: open_clip {config.image_model} over {sum(p is not None for p in paths)} images")
            matrix, bad, reasons = sharded_images(
                lambda chunk: encode_images(model, preprocess, chunk, config.batch_size, device, progress=ctx.progress), paths
            )
            refuse_unreadable_images(paths, bad, config.skip_unreadable_images)
            modalities["image"] = fill_missing_rows(matrix, bad, config.missing_rule, what="item images")
            described["image"] = {"kind": "image", "encoder": "open_clip", "missing": _missing_record(bad, config.missing_rule, reasons), **info}
        else:
            from recgoat_cli.encoders.descriptor import describe_images

            log(f"image: no CLIP weights given, using the {DESCRIPTOR_NAME}")
            matrix, bad, reasons = sharded_images(describe_images, paths)
            refuse_unreadable_images(paths, bad, config.skip_unreadable_images)
            modalities["image"] = fill_missing_rows(matrix, bad, config.missing_rule, what="item images")
            described["image"] = {
                "kind": "image", "encoder": DESCRIPTOR_NAME, "dim": int(matrix.shape[1]),
                "missing": _missing_record(bad, config.missing_rule, reasons),
            }

    from recgoat_cli.encoders.features import load_feature_file, parse_feature_spec

    feature_files = dict(dataset.feature_files) if config.dataset_features else {}
    explicit = {name for name, _ in config.features}
    for name, path in config.features:
        feature_files[name] = Path(path)
    for name, path in feature_files.items():
        if name in modalities and name not in explicit and f"{name}_feat" not in feature_files:
            # An MMRec folder's text_feat.npy next to raw text in items.tsv: keep both, the file's as text_feat.
            log(f"{path.name}: a {name} modality is encoded already (from items.tsv or images/), so this file becomes the {name}_feat modality")
            name = f"{name}_feat"
        if name in modalities:
            raise UserError(f"--feature {name}: a modality named {name} exists already; pick another name.")
        parse_feature_spec(f"{name}={path}")  # the same name rules for the dataset's own files
        modalities[name] = load_feature_file(path, dataset.n_items, name)
        described[name] = {"kind": "precomputed", "path": str(path), "sha256": sha256_file(path), "dim": int(modalities[name].shape[1])}

    skipped = {name: reason for name, reason in skipped.items() if name not in modalities}
    if not modalities:
        raise UserError(
            f"{dataset.root} gives nothing to embed (no items.tsv, images or *_feat.npy, and no --feature); "
            "train with --model lightgcn, which needs no embed artifact."
        )
    users, user_info = user_representations(ctx, config, modalities, text_encoder, device)

    def write(out: Path) -> None:
        shapes = {}
        for name, matrix in modalities.items():
            np.save(out / f"item_{name}.npy", matrix.astype(np.float32))
            shapes[f"item_{name}.npy"] = list(matrix.shape)
            described[name]["normalized"] = bool(np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-3))
        np.save(out / "users.npy", users)
        shapes["users.npy"] = list(users.shape)
        (out / "modalities.json").write_text(json.dumps({"items": described, "users": user_info, "skipped": skipped}, indent=2, default=str) + "\n")
        write_manifest(
            out, stage=STAGE, artifact_id=artifact_id, dataset=ctx.key, config=config.model_dump(mode="json"),
            inputs=hashes, shapes=shapes,
            summary={"modalities": {n: list(m.shape) for n, m in modalities.items()}, "users": list(users.shape), "skipped": skipped,
                     "missing": {n: d["missing"]["count"] for n, d in described.items() if "missing" in d}},
        )

    return ctx.publish(STAGE, artifact_id, write), False


def image_encoder_choice(config: EmbedConfig) -> str:
    """``--image-encoder auto`` is clip when weights are given (a file, a tag, or an ``hf-hub:`` model), else descriptor."""
    if config.image_encoder != "auto":
        return config.image_encoder
    return "clip" if config.image_weights or config.image_model.startswith("hf-hub:") else "descriptor"


def resolve_models(ctx: StageContext, config: EmbedConfig, log):
    """(text model source, open_clip weights source) this run will load, each None when that model is not used.

    A hub model is downloaded into the Hugging Face cache here on first use (unless ``--offline``), so that its
    resolved commit, like a local folder's file hashes, can enter the artifact id.
    """
    dataset = ctx.dataset
    text_source = image_source = None
    if config.text_model and dataset.item_table is not None:
        from recgoat_cli.encoders.text import resolve_text_model

        text_source = resolve_text_model(config.text_model, offline=config.offline, log=log, progress=ctx.progress)
    if config.image_encoder != "none" and image_encoder_choice(config) == "clip" and any(p is not None for p in image_paths(dataset)):
        from recgoat_cli.encoders.image import resolve_image_weights

        image_source = resolve_image_weights(config.image_model, config.image_weights, offline=config.offline, log=log, progress=ctx.progress)
    return text_source, image_source


def require_train_items_for_profiles(dataset: Dataset) -> None:
    """A text profile lists a user's train items; a user without any has no profile, which is not filled in silently."""
    indptr, _ = split_csr(dataset, "train")
    without = np.flatnonzero(np.diff(indptr) == 0)
    if len(without):
        raise UserError(
            f"user {int(without[0])} has no train interactions in {dataset.inter_file} ({len(without)} such users), so "
            "--user-mode profile has no items to describe them with; use --user-mode mean (it gives them the mean item row)."
        )


def refuse_unreadable_images(paths: list[Path | None], bad: list[int], skip: bool) -> None:
    """An image file that exists but does not decode is damage to report, unlike an item that has no image file."""
    unreadable = [i for i in bad if paths[i] is not None]
    if not unreadable or skip:
        return
    path = paths[unreadable[0]]
    from recgoat_cli.encoders.image import oversized_image

    what = "is empty (0 bytes)" if path.stat().st_size == 0 else "cannot be decoded as an image (truncated or not an image)"
    if (too_large := oversized_image(path)) is not None:
        what = f"is refused before decoding: {too_large}"
    raise UserError(
        f"{path} {what}, and {len(unreadable) - 1} more image files are unreadable; replace or delete them (an item "
        "without an image file gets the mean image row), or pass --skip-unreadable-images to fill them the same way."
    )


def user_representations(ctx: StageContext, config: EmbedConfig, modalities: dict, text_encoder, device: str) -> tuple[np.ndarray, dict]:
    """User rows from train interactions only (never valid or test).

    ``text_encoder`` is the ``(model, spec, item table)`` the item texts were encoded with, or None.
    """
    from recgoat_cli.encoders.text import mean_user_embeddings

    dataset = ctx.dataset
    if config.user_mode == "profile":
        if text_encoder is None:
            raise UserError("--user-mode profile needs a text modality (items.tsv and --text-model); use --user-mode mean.")
        from recgoat_cli.encoders.text import encode_texts, user_profile_texts

        text_model, spec, table = text_encoder
        title = _first([c for c in table.columns if c != ITEM_COLUMN], TITLE_COLUMNS)
        if title is None:
            raise UserError(f"{dataset.item_table} has no title column ({', '.join(TITLE_COLUMNS)}) for --user-mode profile.")
        titles = table[title].fill_null("").to_list()
        texts = user_profile_texts(_train_items_in_time_order(dataset), titles, config.profile_template, config.profile_last_n)
        users = sharded_rows(
            lambda chunk: encode_texts(
                text_model, chunk, batch_size=config.batch_size, prefix=spec.query_prefix, normalize=spec.normalize, device=device,
                progress=ctx.progress,
            ),
            texts,
        )
        return users, {"mode": "profile", "template": config.profile_template, "last_n": config.profile_last_n, "source": "text"}
    source = "text" if "text" in modalities else next(iter(modalities))
    indptr, indices = split_csr(dataset, "train")
    users, without = mean_user_embeddings(modalities[source], indptr, indices)
    return users, {"mode": "mean", "source": source, "users_without_train": without, "fill": "mean of all items"}


def load_modalities(artifact: Artifact) -> tuple[dict[str, np.ndarray], np.ndarray]:
    info = json.loads(artifact.file("modalities.json").read_text())
    items = {name: np.load(artifact.file(f"item_{name}.npy"), allow_pickle=False) for name in info["items"]}
    return items, np.load(artifact.file("users.npy"), allow_pickle=False)
