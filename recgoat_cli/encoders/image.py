"""Image encoders for ``recgoat embed``: open_clip vision towers loaded from disk only, and a safe image reader.

``load_image_model`` takes an open_clip architecture name (``open_clip.list_models()``) and weights that are
either an open_clip pretrained tag already in the local cache, or a local ``.safetensors``/``.bin``/``.pt``/
``.pth`` file. There is no default: an untrained encoder's features are noise, and recgoat never presents noise
as an image representation (the classical descriptor in ``descriptor.py`` is the documented alternative).

Unreadable images (missing, empty, truncated, not an image) never crash a batch: ``encode_images`` records each
one with its reason and leaves a zero row; the caller fills those rows by the documented rule (the mean of the
other items, ``text.fill_missing_rows``) and counts them in the manifest.
"""

from __future__ import annotations

import os

# Set before huggingface_hub is imported anywhere: it reads this once, at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import contextlib
import logging
import pickle  # only for its exception type: torch.load(weights_only=True) raises it
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
    from open_clip.pretrained import get_pretrained_cfg

    pretrained_cfg = get_pretrained_cfg(arch, tag)
    hub_cache = str(hub_cache_dir) if hub_cache_dir is not None else constants.HF_HUB_CACHE
    looked: list[str] = []
    if pretrained_cfg.get("file"):
        looked.append(pretrained_cfg["file"])
        if Path(pretrained_cfg["file"]).is_file():
            return pretrained_cfg["file"], looked
    hub_entry = pretrained_cfg.get("hf_hub", "")
    if hub_entry:
        model_id, filename = os.path.split(hub_entry)
        filename = filename or HF_WEIGHTS_NAME
        # open_clip prefers a safetensors twin of a .bin/.pth file; look for the same names it would fetch.
        candidates = [filename]
        if filename == HF_WEIGHTS_NAME:
            candidates.insert(0, HF_SAFE_WEIGHTS_NAME)
        elif filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
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


def load_image_model(
    arch: str, weights: str | None, device: str = "cpu", *, hub_cache_dir: str | os.PathLike[str] | None = None
) -> tuple[torch.nn.Module, Callable[[Image.Image], torch.Tensor], dict[str, Any]]:
    """Load an open_clip model in eval mode with its inference transform, from disk only.

    Args:
        arch: an open_clip architecture name (``open_clip.list_models()``), e.g. ``ViT-B-32``.
        weights: an open_clip pretrained tag already in the local cache (e.g. ``laion2b_s34b_b79k``) or the path
            of a weights file (``.safetensors``, or a ``.bin``/``.pt``/``.pth`` state dict read with
            ``weights_only=True``).
        device: torch device string.
        hub_cache_dir: the Hugging Face hub cache to look in for a tag (default: ``HF_HUB_CACHE``).

    Returns:
        ``(model, preprocess, info)``; ``info`` has ``arch``, ``weights`` (as given), ``weights_file``,
        ``weights_sha256``, ``dim``, ``preprocess`` (size, mean, std, interpolation, resize mode) and the
        open_clip version.

    Raises:
        UserError: no weights, unknown architecture, tag not cached, missing or mismatched weights file.
    """
    import open_clip
    from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

    if not weights:
        raise UserError(
            "--image-weights is required; recgoat never uses a randomly initialised encoder as a representation "
            "(pass a local weights file or a cached open_clip tag, or use the colour-histogram+HOG descriptor)."
        )
    known = open_clip.list_models()
    if arch not in known:
        examples = [name for name in ("ViT-B-32", "ViT-B-16", "ViT-L-14", "RN50", "convnext_base_w") if name in known]
        raise UserError(
            f"--image-arch {arch!r} is not an open_clip architecture; use one of {', '.join(examples)} "
            f"(all {len(known)}: `python -c \"import open_clip; print(open_clip.list_models())\"`)."
        )

    preprocess_overrides: dict[str, Any] = {}
    force_quick_gelu = False
    if _is_weights_path(weights):
        weights_file = Path(weights).expanduser()
        if not weights_file.is_file():
            raise UserError(f"--image-weights file {weights_file} does not exist; pass the path of a weights file.")
        if weights_file.suffix.lower() not in WEIGHT_FILE_SUFFIXES:
            raise UserError(
                f"--image-weights file {weights_file} is not a {'/'.join(WEIGHT_FILE_SUFFIXES)} weights file."
            )
        weights_file = weights_file.resolve()
    else:
        pretrained_cfg = get_pretrained_cfg(arch, weights)
        if not pretrained_cfg:
            tags = list_pretrained_tags_by_model(arch)
            shown = ", ".join(tags[:5]) + (f" and {len(tags) - 5} more" if len(tags) > 5 else "") if tags else "(none)"
            raise UserError(
                f"--image-weights {weights!r} is neither a file nor an open_clip pretrained tag of {arch} "
                f"(its tags: {shown}); pass a weights file path or one of those tags."
            )
        cached, looked = find_cached_tag_weights(arch, weights, hub_cache_dir=hub_cache_dir)
        if cached is None:
            raise UserError(
                f"open_clip weights {arch}/{weights} are not in the local cache (looked in {'; '.join(looked)}) and "
                f"recgoat never downloads models; on a machine with internet download "
                f"{_download_hint(pretrained_cfg)}, copy it here and pass `--image-weights /path/to/file`."
            )
        weights_file = Path(cached).resolve()
        # Loading the cached file by path skips open_clip's downloader; keep the tag's own preprocessing
        # and activation, which open_clip would otherwise have taken from the tag.
        for key in ("mean", "std", "interpolation", "resize_mode"):
            if pretrained_cfg.get(key) is not None:
                preprocess_overrides[f"image_{key}"] = pretrained_cfg[key]
        force_quick_gelu = bool(pretrained_cfg.get("quick_gelu", False))

    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch,
            pretrained=str(weights_file),
            device=device,
            force_quick_gelu=force_quick_gelu,
            weights_only=True,
            **preprocess_overrides,
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

    config = open_clip.get_model_config(arch) or {}
    preprocess_cfg = getattr(model.visual, "preprocess_cfg", None) or {}
    info: dict[str, Any] = {
        "arch": arch,
        "weights": weights,
        "weights_file": str(weights_file),
        "weights_sha256": sha256_file(weights_file),
        "dim": int(config.get("embed_dim", 0)),
        "preprocess": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(preprocess_cfg).items()},
        "quick_gelu": force_quick_gelu or bool(config.get("quick_gelu", False)),
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
