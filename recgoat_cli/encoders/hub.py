"""Models from the Hugging Face hub, fetched the way the ecosystem does it: into the standard cache, once.

``fetch_snapshot`` (a sentence-transformers model: its configs, tokenizer and one copy of the weights) and
``fetch_file`` (one open_clip weights or config file) download on first use into the Hugging Face hub cache
(``HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``; ``HF_HOME`` moves it) with huggingface_hub's progress
bars, and reuse it afterwards. open_clip fetches its pretrained tags from the same hub, so both share one cache.

- **Offline** (``--offline`` or ``HF_HUB_OFFLINE=1``): the network is never touched; a model that is not in the
  cache is a user error that says where we looked and how to pre-fetch it.
- **Network failures**: when the hub cannot be reached and a complete copy is cached, that copy is used (as
  huggingface_hub itself does) and the caller is told; otherwise a user error names the model, the endpoint,
  the cause and the ways out (``--offline``, a local folder). Every request has a bounded connect timeout
  (``HF_HUB_ETAG_TIMEOUT``, 10 s by default): huggingface_hub passes ``timeout=None`` on its API calls, which
  would let a connect to a black-holed address hang for minutes.
- **Partial downloads** are never used: huggingface_hub writes each file under ``blobs/*.incomplete`` and links
  it into the snapshot only when complete, and a snapshot whose cached file listing names a file that is not
  there is refused (``IncompleteSnapshotError``) instead of loaded.

Which files a snapshot takes is decided from the repo's file list alone (``snapshot_patterns``), so that an
offline run checks completeness against the same list the download used.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from recgoat_cli.errors import UserError

#: files a sentence-transformers / transformers model loads from (configs, tokenizers, weights)
SNAPSHOT_ALLOW = ["*.json", "*.txt", "*.model", "*.safetensors", "*.bin", "*.tiktoken", "*.spm"]
#: exported copies that PyTorch loading never reads (ONNX, OpenVINO, TF, Flax, Core ML, ...)
SNAPSHOT_IGNORE = [
    "onnx/*", "openvino/*", "coreml/*", "*.onnx", "*.onnx_data", "*.h5", "*.msgpack", "*.ot", "*.tflite",
    "tf_model*", "flax_model*", "rust_model*", "training_args.bin",
]
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 60.0
_TIMEOUT_HOOK_FLAG = "_recgoat_bounded_timeouts"


@dataclass(frozen=True)
class HubModel:
    """A model folder in the hub cache: ``folder`` is ``.../snapshots/<commit>``, ``downloaded`` whether files
    were fetched by this call, ``stale`` the reason when the hub could not be asked and the cached copy was used."""

    repo_id: str
    folder: Path
    commit: str
    downloaded: bool = False
    stale: str | None = None


def offline_requested(flag: bool = False) -> bool:
    """``--offline``, or ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` set to a true value (now or at import)."""
    if flag:
        return True
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def offline_reason(flag: bool) -> str:
    return "--offline" if flag else "HF_HUB_OFFLINE=1"


def hub_cache(cache_dir: str | os.PathLike[str] | None = None) -> str:
    from huggingface_hub import constants

    return str(cache_dir) if cache_dir is not None else constants.HF_HUB_CACHE


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def connect_timeout_s() -> float:
    try:
        return float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or DEFAULT_CONNECT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_CONNECT_TIMEOUT_S


def bound_hub_timeouts() -> None:
    """Give every request of huggingface_hub's shared HTTP client a connect (and read) timeout.

    huggingface_hub sends its API calls with ``timeout=None`` (no limit at all); this request hook fills in the
    limits a request left open, and keeps the ones it set itself (its download and HEAD timeouts).
    """
    from huggingface_hub import get_session

    client = get_session()
    if getattr(client, _TIMEOUT_HOOK_FLAG, False):
        return
    connect = connect_timeout_s()

    def bound(request) -> None:
        timeout = dict(request.extensions.get("timeout") or {})
        for key, limit in (("connect", connect), ("pool", connect), ("read", DEFAULT_READ_TIMEOUT_S), ("write", DEFAULT_READ_TIMEOUT_S)):
            if timeout.get(key) is None:
                timeout[key] = limit
        request.extensions["timeout"] = timeout

    hooks = client.event_hooks
    hooks["request"] = [*hooks["request"], bound]
    client.event_hooks = hooks
    setattr(client, _TIMEOUT_HOOK_FLAG, True)


def snapshot_patterns(files: list[str] | None) -> tuple[list[str], list[str]]:
    """(allow, ignore) patterns of a sentence-transformers snapshot, decided from the repo's file list.

    A repo that ships root ``*.safetensors`` weights also often ships the same weights as ``pytorch_model*.bin``;
    only the safetensors copy is fetched then (transformers prefers it), which halves the download.
    """
    ignore = list(SNAPSHOT_IGNORE)
    if files is not None and any("/" not in f and f.endswith(".safetensors") for f in files):
        ignore.append("pytorch_model*.bin")
    return list(SNAPSHOT_ALLOW), ignore


def _cause(error: BaseException) -> str:
    """A short cause: the innermost exception that says something (``ConnectError: [Errno 111] ...``)."""
    seen = error
    while seen.__cause__ is not None and seen.__cause__ is not seen:
        seen = seen.__cause__
    text = " ".join(str(seen).split()) or type(seen).__name__
    return f"{type(seen).__name__}: {text[:200]}"


def _network_errors() -> tuple[type[BaseException], ...]:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, RevisionResolutionError

    return (httpx2.TransportError, HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, RevisionResolutionError)


def _not_found(error: BaseException) -> bool:
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(error, GatedRepoError):
        return False
    if isinstance(error, (RepositoryNotFoundError, RevisionNotFoundError)):
        return True
    return isinstance(error, HfHubHTTPError) and error.response is not None and error.response.status_code == 404


def _raise_for_hub_error(error: BaseException, what: str, repo_id: str, local_hint: str) -> None:
    """Turn an error of the hub into one sentence (UserError) naming the model, the endpoint and the fixes."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    endpoint = hub_endpoint()
    if _not_found(error):
        raise UserError(
            f"{what} was not found on {endpoint} (a typo, or a private repo: log in with `hf auth login`); "
            f"check the name, or {local_hint}."
        ) from None
    if isinstance(error, GatedRepoError) or (
        isinstance(error, HfHubHTTPError) and error.response is not None and error.response.status_code in (401, 403)
    ):
        raise UserError(
            f"{what} on {endpoint} needs an access token ({_cause(error)}); accept its licence on the hub and "
            f"run `hf auth login`, or {local_hint}."
        ) from None
    raise UserError(
        f"could not download {what} from {endpoint} ({_cause(error)}); check the network or the proxy "
        f"(HTTPS_PROXY), pass --offline to use only the local cache {hub_cache()}, or {local_hint}."
    ) from None


def _offline_missing(what: str, repo_id: str, cache: str, offline_flag: bool, local_hint: str, detail: str = "") -> UserError:
    detail = f" ({detail})" if detail else ""
    return UserError(
        f"{what} is not in the local Hugging Face cache {cache}{detail} and {offline_reason(offline_flag)} "
        f"forbids downloads; run once without {offline_reason(offline_flag)} to download it, or on a machine with "
        f"internet run `hf download {repo_id}` and copy its cache folder here (same path, or set HF_HOME), or "
        f"{local_hint}."
    )


def _cached_snapshot(repo_id: str, cache: str) -> Path | None:
    """The complete cached snapshot of ``repo_id``'s default branch, or None; never touches the network.

    Raises huggingface_hub's ``IncompleteSnapshotError`` for a snapshot with files missing (an interrupted download).
    """
    from huggingface_hub import get_cached_repo_tree, snapshot_download
    from huggingface_hub.errors import CachedRepoTreeNotFoundError, IncompleteSnapshotError, LocalEntryNotFoundError

    try:
        files = [f.path for f in get_cached_repo_tree(repo_id, cache_dir=cache)]
    except (CachedRepoTreeNotFoundError, OSError, ValueError):
        files = None  # e.g. a snapshot written file by file: completeness cannot be checked, as before
    allow, ignore = snapshot_patterns(files)
    try:
        folder = snapshot_download(repo_id, cache_dir=cache, local_files_only=True, allow_patterns=allow, ignore_patterns=ignore)
    except IncompleteSnapshotError:
        raise
    except LocalEntryNotFoundError:
        return None
    return Path(folder)


def fetch_snapshot(
    repo_id: str,
    *,
    what: str,
    local_hint: str,
    offline_flag: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = lambda message: None,
    progress: bool = True,
) -> HubModel:
    """The cached snapshot of ``repo_id`` (default branch), downloading what is missing unless offline.

    Args:
        repo_id: ``org/name`` on the hub (``HF_ENDPOINT`` decides which hub).
        what: the model as messages name it, with its repo id (``"text model BAAI/bge-base-en-v1.5 (bge-base)"``).
        local_hint: the way to use a local copy instead, for messages (``"pass --text-model DIR"``).
        offline_flag: ``--offline`` was given (``HF_HUB_OFFLINE=1`` is read here too).
        cache_dir: the hub cache (default ``HF_HUB_CACHE``).
        log: one-line notices (a download starting, a cached copy used because the hub was unreachable).
        progress: show huggingface_hub's progress bars while downloading.

    Raises:
        UserError: not cached and offline, not found, access denied, network failure with nothing cached, or an
            incomplete cached copy that cannot be completed.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import IncompleteSnapshotError
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    cache = hub_cache(cache_dir)
    offline = offline_requested(offline_flag)

    def cached_or_none() -> Path | None:
        try:
            return _cached_snapshot(repo_id, cache)
        except IncompleteSnapshotError:
            if offline:
                raise UserError(
                    f"the cached copy of {what} in {cache} is incomplete (an interrupted download) and "
                    f"{offline_reason(offline_flag)} forbids finishing it; run once without "
                    f"{offline_reason(offline_flag)}, or {local_hint}."
                ) from None
            return None

    if offline:
        folder = cached_or_none()
        if folder is None:
            raise _offline_missing(what, repo_id, cache, offline_flag, local_hint)
        return HubModel(repo_id, folder, folder.name)

    bound_hub_timeouts()
    try:
        info = HfApi().repo_info(repo_id, timeout=connect_timeout_s())
    except _network_errors() as error:
        if _not_found(error) or not _is_unreachable(error):
            _raise_for_hub_error(error, what, repo_id, local_hint)
        folder = cached_or_none()
        if folder is None:
            _raise_for_hub_error(error, what, repo_id, local_hint)
        return HubModel(repo_id, folder, folder.name, stale=f"{hub_endpoint()} unreachable ({_cause(error)})")
    files = [s.rfilename for s in (info.siblings or [])]
    allow, ignore = snapshot_patterns(files)
    wanted = [f for f in files if _matches(f, allow) and not _matches(f, ignore)]
    snapshot = Path(cache) / f"models--{repo_id.replace('/', '--')}" / "snapshots" / str(info.sha)
    missing = [f for f in wanted if not (snapshot / f).exists()]
    if missing:
        log(f"downloading {what} ({len(missing)} files) from {hub_endpoint()} into {cache}; later runs reuse it")
    if not progress:
        disable_progress_bars()
    try:
        folder = Path(snapshot_download(repo_id, cache_dir=cache, allow_patterns=allow, ignore_patterns=ignore, etag_timeout=connect_timeout_s()))
    except _network_errors() as error:
        _raise_for_hub_error(error, what, repo_id, local_hint)
    finally:
        if not progress:
            enable_progress_bars()
    return HubModel(repo_id, folder, folder.name, downloaded=bool(missing))


def fetch_file(
    repo_id: str,
    filenames: list[str],
    *,
    what: str,
    local_hint: str,
    offline_flag: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = lambda message: None,
    progress: bool = True,
) -> tuple[Path, str]:
    """The cached path of the first of ``filenames`` that ``repo_id`` has, and its commit; downloads unless offline.

    open_clip's own rule: the first name that exists wins (a ``.safetensors`` twin before a ``.bin``). The hub is
    asked once, with the connect timeout and no retries, which files the repo has and at which commit; only then
    is the file fetched (huggingface_hub retries a file request 5 times, which is right once the hub answered).
    """
    from huggingface_hub import HfApi, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    cache = hub_cache(cache_dir)
    offline = offline_requested(offline_flag)
    cached = [try_to_load_from_cache(repo_id, name, cache_dir=cache) for name in filenames]
    first_cached = next((Path(path) for path in cached if isinstance(path, str)), None)
    if offline:
        if first_cached is None:
            raise _offline_missing(what, repo_id, cache, offline_flag, local_hint, f"files {', '.join(filenames)}")
        return first_cached, first_cached.parent.name
    bound_hub_timeouts()
    try:
        info = HfApi().repo_info(repo_id, timeout=connect_timeout_s())
    except _network_errors() as error:
        if first_cached is not None and _is_unreachable(error) and not _not_found(error):
            log(f"{what}: {hub_endpoint()} unreachable ({_cause(error)}); using the cached {first_cached}")
            return first_cached, first_cached.parent.name
        _raise_for_hub_error(error, what, repo_id, local_hint)
    present = {s.rfilename for s in (info.siblings or [])}
    name = next((n for n in filenames if n in present), None)
    if name is None:
        raise UserError(
            f"{what} on {hub_endpoint()} has none of the files {', '.join(filenames)}; check the name, or {local_hint}."
        )
    snapshot_file = Path(cache) / f"models--{repo_id.replace('/', '--')}" / "snapshots" / str(info.sha) / name
    if not snapshot_file.exists():
        log(f"downloading {what} (file {name}) from {hub_endpoint()} into {cache}; later runs reuse it")
    if not progress:
        disable_progress_bars()
    try:
        path = Path(hf_hub_download(repo_id, name, cache_dir=cache, etag_timeout=connect_timeout_s()))
    except _network_errors() as error:
        _raise_for_hub_error(error, what, repo_id, local_hint)
    finally:
        if not progress:
            enable_progress_bars()
    return path, _commit_of(path, name)


def _commit_of(path: Path, filename: str) -> str:
    """The commit folder of a cached file: ``.../snapshots/<commit>/<filename>``."""
    folder = path
    for _ in Path(filename).parts:
        folder = folder.parent
    return folder.name


def _is_unreachable(error: BaseException) -> bool:
    """Connection refused, DNS failure, timeout, offline switch or a hub that answers 5xx: the hub is not there."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    if isinstance(error, (httpx2.TransportError, OfflineModeIsEnabled, LocalEntryNotFoundError)):
        return True
    return isinstance(error, HfHubHTTPError) and error.response is not None and error.response.status_code >= 500


def _matches(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)
