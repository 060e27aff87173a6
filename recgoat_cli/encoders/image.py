"""Image encoders for ``recgoat embed``: open_clip vision towers with real weights, and a safe image reader.

``load_image_model`` takes an open_clip architecture name (``open_clip.list_models()``) and weights that are
either an open_clip pretrained tag (fetched from the Hugging Face hub into its cache on first use, as open_clip
itself does, unless ``--offline``/``HF_HUB_OFFLINE=1``) or a local ``.safetensors``/``.bin``/``.pt``/``.pth``
file; or an ``hf-hub:org/name`` model (its ``open_clip_config.json`` and weights, from the hub). There is no
default: an untrained encoder's features are noise, and recgoat never presents noise as an image
representation (the classical descriptor in ``descriptor.py`` is the documented alternative).

Unreadable images (missing, empty, truncated, not an image) never crash a batch: ``encode_images`` records each
one with its reason and leaves a zero row; the caller fills those rows by the documented rule (the mean of the
other items, ``text.fill_missing_rows``) and counts them in the manifest.
"""

from __future__ import annotations

import contextlib
import json
import os
import logging
import pickle  # only for its exception type: torch.load(weights_only=True) raises it
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError

from recgoat_cli.artifacts.manifest import sha256_file
from recgoat_cli.errors import UserError
from recgoat_cli.limits import image_too_large

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

WEIGHT_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
OPEN_CLIP_URL_CACHE = "~/.cache/clip"  # where open_clip stores weights it fetched by URL (not via the hub)
HF_HUB_PREFIX = "hf-hub:"  # open_clip's own prefix for a model whose config and weights live in a hub repo
OPEN_CLIP_CONFIG = "open_clip_config.json"
OPEN_CLIP_HUB_WEIGHTS = ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin"]
IMAGE_READ_ERRORS = (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)
# Pillow only warns when an image declares more than MAX_IMAGE_PIXELS (it refuses twice that); read_rgb_image refuses
# such an image itself, with its name, before decoding, so the warning would only repeat it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def read_rgb_image(path: str | os.PathLike[str] | None) -> tuple[Image.Image | None, str]:
    """Decode ``path`` fully into an RGB image, or return ``(None, reason)``.

    ``img.load()`` forces the whole decode here, so a truncated file fails now rather than later inside a batch.
    """
    if path is None:
        return None, "no image path"
    path = Path(path)
    if not path.is_file():
        return None, f"file not found: {path}"
    if path.stat().st_size == 0:
        return None, f"empty file (0 bytes): {path}"
    try:
        with Image.open(path) as opened:
            # the header's size, checked before the decode allocates width x height pixels
            if (too_large := image_too_large(opened.size)) is not None:
                return None, f"unreadable image {path}: {too_large}"
            opened.load()
            return opened.convert("RGB"), ""
    except IMAGE_READ_ERRORS as err:
        return None, f"unreadable image {path}: {type(err).__name__}: {err}"


def oversized_image(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is refused for its declared pixel count (read from the header only), or None."""
    try:
        with Image.open(path) as opened:
            return image_too_large(opened.size)
    except Image.DecompressionBombError as err:  # Pillow refuses twice its limit already when opening
        return str(err).rstrip(".")
    except IMAGE_READ_ERRORS:
        return None


def _is_weights_path(weights: str) -> bool:
    has_separator = os.sep in weights or "/" in weights
    return weights.lower().endswith(WEIGHT_FILE_SUFFIXES) or has_separator or Path(weights).exists()


def find_cached_tag_weights(
    arch: str, tag: str, *, hub_cache_dir: str | os.PathLike[str] | None = None
) -> tuple[str | None, list[str]]:
    """The cached weights file of open_clip tag ``arch``/``tag``, or None, and the places looked in.

    Looks where open_clip's downloader would have put the file (the Hugging Face hub cache, or
    ``~/.cache/clip`` for URL-only tags) without touching the network.
    """
    from huggingface_hub import constants, try_to_load_from_cache
    from open_clip.pretrained import get_pretrained_cfg

    pretrained_cfg = get_pretrained_cfg(arch, tag)
    hub_cache = str(hub_cache_dir) if hub_cache_dir is not None else constants.HF_HUB_CACHE
    looked: list[str] = []
    if pretrained_cfg.get("file"):
        looked.append(pretrained_cfg["file"])
        if Path(pretrained_cfg["file"]).is_file():
            return pretrained_cfg["file"], looked
    hub_files = tag_hub_files(arch, tag)  # the same names, in the same order, that open_clip would fetch
    if hub_files is not None:
        model_id, candidates = hub_files
        looked.append(f"{hub_cache} (repo {model_id}, files {', '.join(candidates)})")
        for candidate in candidates:
            cached = try_to_load_from_cache(model_id, candidate, cache_dir=hub_cache)
            if isinstance(cached, str):
                return cached, looked
    url = pretrained_cfg.get("url", "")
    if url:
        target = Path(OPEN_CLIP_URL_CACHE).expanduser() / os.path.basename(url)
        looked.append(str(target))
        if target.is_file():
            return str(target), looked
    return None, looked


def _download_hint(pretrained_cfg: dict[str, Any]) -> str:
    hub_entry = pretrained_cfg.get("hf_hub", "")
    if hub_entry:
        model_id, filename = os.path.split(hub_entry)
        return f"the weights file of https://huggingface.co/{model_id} ({filename or 'open_clip_model.safetensors'})"
    if pretrained_cfg.get("url"):
        return pretrained_cfg["url"]
    return "the weights file"


@dataclass(frozen=True)
class ImageWeightsSource:
    """What ``load_image_model`` hands to open_clip, found (or fetched) by ``resolve_image_weights``.

    ``model_name`` is the architecture, or ``local-dir:<folder>`` for an ``hf-hub:`` model (its config and weights
    in one cached folder). ``fingerprint`` (sha256 of the weights file and, for ``hf-hub:``, of the config) enters
    the embed artifact id, so changed weights never reuse old embeddings.
    """

    model_name: str
    weights_file: Path
    fingerprint: str
    preprocess_overrides: dict[str, Any] = field(default_factory=dict)
    force_quick_gelu: bool = False
    hub_repo: str | None = None
    commit: str | None = None


def tag_hub_files(arch: str, tag: str) -> tuple[str, list[str]] | None:
    """The hub repo and the file names (preferred first) open_clip downloads for ``arch``/``tag``, or None.

    open_clip's rule: a ``.safetensors`` twin of a ``.bin``/``.pth`` weights file is tried first.
    """
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
    from open_clip.pretrained import get_pretrained_cfg

    hub_entry = (get_pretrained_cfg(arch, tag) or {}).get("hf_hub", "")
    if not hub_entry:
        return None
    model_id, filename = os.path.split(hub_entry)
    filename = filename or HF_WEIGHTS_NAME
    candidates = [filename]
    if filename == HF_WEIGHTS_NAME:
        candidates.insert(0, HF_SAFE_WEIGHTS_NAME)
    elif filename.endswith((".bin", ".pth")):
        candidates.insert(0, filename[:-4] + ".safetensors")
    return model_id, candidates


def resolve_image_weights(
    arch: str,
    weights: str | None,
    *,
    offline: bool = False,
    hub_cache_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = lambda message: None,
    progress: bool = True,
) -> ImageWeightsSource:
    """Find or fetch the weights of ``arch`` (an open_clip architecture, or ``hf-hub:org/name``).

    Raises:
        UserError: no weights, unknown architecture or tag, a missing weights file, or a hub file that is not cached
            while offline or cannot be downloaded.
    """
    import open_clip
    from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

    from recgoat_cli.encoders.hub import fetch_file

    if arch.startswith(HF_HUB_PREFIX):
        if weights:
            raise UserError(
                f"--image-model {arch} brings its own weights from the hub; drop --image-weights {weights}, or pass an "
                "open_clip architecture name with it."
            )
        repo_id = arch[len(HF_HUB_PREFIX):]
        common = dict(what=f"open_clip model {repo_id}", local_hint="pass --image-model an open_clip architecture with --image-weights a local weights file", offline_flag=offline, cache_dir=hub_cache_dir, log=log, progress=progress)
        config_file, commit = fetch_file(repo_id, [OPEN_CLIP_CONFIG], **common)
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise UserError(f"{config_file} of hub model {repo_id} is not readable JSON ({err}); delete it so it is downloaded again.") from None
        if not isinstance(config, dict) or "model_cfg" not in config:
            raise UserError(f"{config_file} of hub model {repo_id} has no model_cfg, so it is not an open_clip model; check --image-model.")
        weights_file, _ = fetch_file(repo_id, OPEN_CLIP_HUB_WEIGHTS, **common)
        if weights_file.parent != config_file.parent:
            raise UserError(
                f"hub model {repo_id} has its config and weights cached under different commits ({config_file.parent.name[:12]} "
                f"and {weights_file.parent.name[:12]}); run again online so both come from one commit."
            )
        fingerprint = sha256_file(weights_file) + ":" + sha256_file(config_file)
        return ImageWeightsSource(f"local-dir:{config_file.parent}", weights_file, fingerprint, hub_repo=repo_id, commit=commit)

    if not weights:
        raise UserError(
            "--image-weights is required; recgoat never uses a randomly initialised encoder as a representation "
            "(pass a weights file, an open_clip pretrained tag or --image-model hf-hub:ORG/NAME, or use the "
            "colour-histogram+HOG descriptor)."
        )
    known = open_clip.list_models()
    if arch not in known:
        examples = [name for name in ("ViT-B-32", "ViT-B-16", "ViT-L-14", "RN50", "convnext_base_w") if name in known]
        raise UserError(
            f"--image-arch {arch!r} is not an open_clip architecture; use one of {', '.join(examples)} "
            f"(all {len(known)}: `python -c \"import open_clip; print(open_clip.list_models())\"`), or hf-hub:ORG/NAME."
        )
    if _is_weights_path(weights):
        weights_file = Path(weights).expanduser()
        if not weights_file.is_file():
            raise UserError(f"--image-weights file {weights_file} does not exist; pass the path of a weights file.")
        if weights_file.suffix.lower() not in WEIGHT_FILE_SUFFIXES:
            raise UserError(
                f"--image-weights file {weights_file} is not a {'/'.join(WEIGHT_FILE_SUFFIXES)} weights file."
            )
        weights_file = weights_file.resolve()
        return ImageWeightsSource(arch, weights_file, sha256_file(weights_file))

    pretrained_cfg = get_pretrained_cfg(arch, weights)
    if not pretrained_cfg:
        tags = list_pretrained_tags_by_model(arch)
        shown = ", ".join(tags[:5]) + (f" and {len(tags) - 5} more" if len(tags) > 5 else "") if tags else "(none)"
        raise UserError(
            f"--image-weights {weights!r} is neither a file nor an open_clip pretrained tag of {arch} "
            f"(its tags: {shown}); pass a weights file path or one of those tags."
        )
    hub_files = tag_hub_files(arch, weights)
    commit = None
    if hub_files is not None:
        from recgoat_cli.encoders.hub import hub_cache, offline_reason, offline_requested

        repo_id, candidates = hub_files
        cached, looked = find_cached_tag_weights(arch, weights, hub_cache_dir=hub_cache_dir)
        if cached is None and offline_requested(offline):
            raise UserError(
                f"open_clip weights {arch}/{weights} are not in the local cache (looked in {'; '.join(looked)}) and "
                f"{offline_reason(offline)} forbids downloads; run once without {offline_reason(offline)}, or on a machine "
                f"with internet download {_download_hint(pretrained_cfg)}, copy it here and pass `--image-weights /path/to/file`."
            )
        path, commit = fetch_file(
            repo_id, candidates, what=f"open_clip weights {arch}/{weights} ({repo_id})",
            local_hint=f"download {_download_hint(pretrained_cfg)} elsewhere, copy it here and pass `--image-weights /path/to/file`",
            offline_flag=offline, cache_dir=hub_cache_dir or hub_cache(), log=log, progress=progress,
        )
        weights_file = path  # the snapshot path (a link into blobs/), as open_clip itself would load it
    else:
        cached, looked = find_cached_tag_weights(arch, weights, hub_cache_dir=hub_cache_dir)
        if cached is None:
            raise UserError(
                f"open_clip weights {arch}/{weights} are not in the local cache (looked in {'; '.join(looked)}) and have "
                f"no hub copy; download {_download_hint(pretrained_cfg)}, copy it here and pass `--image-weights /path/to/file`."
            )
        weights_file = Path(cached).resolve()
    # Loading the cached file by path skips open_clip's downloader; keep the tag's own preprocessing
    # and activation, which open_clip would otherwise have taken from the tag.
    overrides = {f"image_{key}": pretrained_cfg[key] for key in ("mean", "std", "interpolation", "resize_mode") if pretrained_cfg.get(key) is not None}
    return ImageWeightsSource(
        arch, weights_file, sha256_file(weights_file), overrides, bool(pretrained_cfg.get("quick_gelu", False)),
        hub_repo=hub_files[0] if hub_files else None, commit=commit,
    )


def load_image_model(
    arch: str,
    weights: str | None,
    device: str = "cpu",
    *,
    hub_cache_dir: str | os.PathLike[str] | None = None,
    offline: bool = False,
    source: ImageWeightsSource | None = None,
    log: Callable[[str], None] = lambda message: None,
    progress: bool = True,
) -> tuple[torch.nn.Module, Callable[[Image.Image], torch.Tensor], dict[str, Any]]:
    """Load an open_clip model in eval mode with its inference transform.

    Args:
        arch: an open_clip architecture name (``open_clip.list_models()``), e.g. ``ViT-B-32``, or
            ``hf-hub:org/name`` (config and weights from that hub repo).
        weights: an open_clip pretrained tag (e.g. ``laion2b_s34b_b79k``; fetched into the hub cache on first use
            unless offline) or the path of a weights file (``.safetensors``, or a ``.bin``/``.pt``/``.pth`` state
            dict read with ``weights_only=True``); None with ``hf-hub:``.
        device: torch device string.
        hub_cache_dir: the Hugging Face hub cache (default: ``HF_HUB_CACHE``).
        offline: never touch the network (``HF_HUB_OFFLINE=1`` does the same).
        source: the weights already found by ``resolve_image_weights``.
        log: one-line notices (a download starting).
        progress: huggingface_hub's download progress bars.

    Returns:
        ``(model, preprocess, info)``; ``info`` has ``arch``, ``weights`` (as given), ``weights_file``,
        ``weights_sha256``, ``fingerprint``, ``dim``, ``preprocess`` (size, mean, std, interpolation, resize mode)
        and the open_clip version.

    Raises:
        UserError: no weights, unknown architecture, tag not cached while offline, missing or mismatched weights.
    """
    import open_clip

    if source is None:
        source = resolve_image_weights(arch, weights, offline=offline, hub_cache_dir=hub_cache_dir, log=log, progress=progress)
    weights_file = source.weights_file
    hub_model = source.model_name.startswith("local-dir:")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            source.model_name,
            pretrained=None if hub_model else str(weights_file),
            device=device,
            force_quick_gelu=source.force_quick_gelu,
            weights_only=True,
            **source.preprocess_overrides,
        )
    except pickle.UnpicklingError as err:
        raise UserError(
            f"--image-weights file {weights_file} is not a plain tensor state dict (torch.load with weights_only=True "
            f"refused it and recgoat never unpickles arbitrary objects); convert it to .safetensors."
        ) from err
    # open_clip reports a weights/architecture mismatch as RuntimeError (load_state_dict) or AssertionError
    # (positional-embedding resize); a corrupt file as OSError/ValueError from torch.load or SafetensorError.
    except (RuntimeError, AssertionError, KeyError, ValueError, OSError, SafetensorError) as err:
        detail = " ".join(str(err).split())[:240] or type(err).__name__
        raise UserError(
            f"--image-weights file {weights_file} could not be loaded into open_clip {arch} ({detail}); "
            f"check that the file holds weights of that architecture."
        ) from err
    model.eval()

    if hub_model:
        config = json.loads((weights_file.parent / OPEN_CLIP_CONFIG).read_text(encoding="utf-8"))["model_cfg"]
    else:
        config = open_clip.get_model_config(arch) or {}
    preprocess_cfg = getattr(model.visual, "preprocess_cfg", None) or {}
    info: dict[str, Any] = {
        "arch": arch,
        "weights": weights,
        "weights_file": str(weights_file),
        "weights_sha256": source.fingerprint.split(":")[0],  # the weights file's sha256, computed once
        "fingerprint": source.fingerprint,
        "hub_repo": source.hub_repo,
        "revision": source.commit,
        "dim": int(config.get("embed_dim", 0)),
        "preprocess": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(preprocess_cfg).items()},
        "quick_gelu": source.force_quick_gelu or bool(config.get("quick_gelu", False)),
        "open_clip_version": open_clip.__version__,
    }
    return model, preprocess, info


def encode_images(
    model: torch.nn.Module,
    preprocess: Callable[[Image.Image], torch.Tensor],
    paths: Sequence[str | os.PathLike[str] | None],
    batch_size: int = 64,
    device: str = "cpu",
    *,
    decode_threads: int = 4,
    fp16_on_cuda: bool = True,
    progress: bool = False,
) -> tuple[np.ndarray, list[int], list[str]]:
    """L2-normalised image embeddings, float32 ``[n, d]``, row ``i`` for ``paths[i]``.

    Images are decoded in ``decode_threads`` threads (Pillow releases the GIL while decoding). A path that is
    ``None``, missing, empty, truncated or not an image is recorded and its row left at zero.

    Returns:
        ``(embeddings, bad, reasons)``: ``bad`` the ascending indices of unreadable images, ``reasons[k]`` why
        ``bad[k]`` was unreadable.
    """
    import torch
    from tqdm.auto import tqdm

    n_images = len(paths)
    embeddings: np.ndarray | None = None
    bad: list[int] = []
    reasons: list[str] = []
    use_fp16 = fp16_on_cuda and torch.device(device).type == "cuda"

    def decode(index: int) -> tuple[int, torch.Tensor | None, str]:
        image, reason = read_rgb_image(paths[index])
        if image is None:
            return index, None, reason
        return index, preprocess(image), ""

    def embed(pixels: torch.Tensor) -> np.ndarray:
        autocast = torch.autocast("cuda", dtype=torch.float16) if use_fp16 else contextlib.nullcontext()
        with autocast:
            features = model.encode_image(pixels.to(device))
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()

    with ThreadPoolExecutor(max_workers=max(1, decode_threads)) as pool, torch.inference_mode():
        for start in tqdm(range(0, n_images, batch_size), desc="images", disable=not progress):
            batch_index, batch_pixels = [], []
            for index, pixels, reason in pool.map(decode, range(start, min(start + batch_size, n_images))):
                if pixels is None:
                    bad.append(index)
                    reasons.append(reason)
                    logger.warning("skipping image %d: %s", index, reason)
                else:
                    batch_index.append(index)
                    batch_pixels.append(pixels)
            if not batch_pixels:
                continue
            features = embed(torch.stack(batch_pixels))
            if embeddings is None:
                embeddings = np.zeros((n_images, features.shape[1]), dtype=np.float32)
            embeddings[batch_index] = features
        if embeddings is None:
            # No readable image: one forward pass on a blank image gives the width of the all-zero result.
            width = embed(preprocess(Image.new("RGB", (8, 8)))[None]).shape[1]
            embeddings = np.zeros((n_images, width), dtype=np.float32)
    return embeddings, bad, reasons
