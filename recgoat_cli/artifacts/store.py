"""Where artifacts live, how they are written atomically and how they are verified before use.

Layout: ``<workdir>/<dataset>/<stage>/<artifact-id>/`` with ``manifest.json`` and the stage's files, and
``<workdir>/<dataset>/<stage>/latest`` holding the id of the newest artifact. A stage builds its files in a
temporary sibling folder with a unique name and renames it into place only when the manifest is written, so
a crash or a concurrent run never leaves a half-written artifact under a real id. The rename itself runs under a
per-artifact lock, so two runs that finish the same artifact at once keep one of them whole.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from recgoat_cli.artifacts.manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Manifest,
    OutputFile,
    Upstream,
    library_versions,
    now_iso,
    read_manifest,
    sha256_file,
)
from recgoat_cli.errors import UserError

#: the command that makes each stage's artifact, for "run X first" messages
MAKER = {
    "embed": "recgoat embed",
    "build-graph": "recgoat build-graph",
    "train": "recgoat train",
    "evaluate": "recgoat evaluate",
    "export": "recgoat export",
}
TEMP_PREFIX = ".tmp-"


class ArtifactWriteError(UserError):
    """Writing an artifact failed for a reason of the disk or the folder (``reason``: e.g. "No space left on device");
    nothing of it was kept. A stage that keeps other state (train's checkpoint) words its own sentence from ``reason``."""

    def __init__(self, message: str, reason: str | None):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: Manifest

    @property
    def id(self) -> str:
        return self.manifest.artifact_id

    def file(self, name: str) -> Path:
        return self.path / name


class ArtifactStore:
    def __init__(self, workdir: Path, dataset: str):
        self.workdir = Path(workdir)
        self.dataset = dataset
        self.root = self.workdir / dataset

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def latest_id(self, stage: str) -> str | None:
        pointer = self.stage_dir(stage) / "latest"
        if not pointer.is_file():
            return None
        return pointer.read_text(encoding="utf-8").strip() or None

    def list(self, stage: str) -> list[Artifact]:
        folder = self.stage_dir(stage)
        if not folder.is_dir():
            return []
        found = []
        for child in sorted(folder.iterdir()):
            if child.is_dir() and not child.name.startswith(".") and (child / MANIFEST_NAME).is_file():
                try:
                    found.append(Artifact(child, read_manifest(child)))
                except UserError:
                    continue
        return sorted(found, key=lambda a: a.manifest.created_at)

    def get(self, stage: str, artifact_id: str | None = None, *, verify: bool = True) -> Artifact:
        """The artifact ``artifact_id`` (default: latest) of a stage, verified; a user error when missing."""
        wanted = artifact_id or self.latest_id(stage)
        if wanted is None:
            raise UserError(
                f"no {stage} artifact for dataset '{self.dataset}' under {self.workdir}; "
                f"run `{MAKER.get(stage, 'recgoat ' + stage)} --dataset {self.dataset}` first."
            )
        path = self.stage_dir(stage) / wanted
        if not path.is_dir():
            matches = [p for p in self.stage_dir(stage).glob(f"{wanted}*") if p.is_dir() and not p.name.startswith(".")]
            if len(matches) != 1:
                raise UserError(
                    f"{stage} artifact '{wanted}' does not exist under {self.stage_dir(stage)}; "
                    f"`recgoat show --dataset {self.dataset}` lists the ids."
                )
            path = matches[0]
        artifact = Artifact(path, read_manifest(path))
        if verify:
            verify_artifact(artifact)
        return artifact

    def find_cached(self, stage: str, artifact_id: str) -> Artifact | None:
        """A complete artifact with this id, when it exists and verifies."""
        path = self.stage_dir(stage) / artifact_id
        if not (path / MANIFEST_NAME).is_file():
            return None
        artifact = Artifact(path, read_manifest(path))
        verify_artifact(artifact)
        return artifact

    def set_latest(self, stage: str, artifact_id: str) -> None:
        folder = self.stage_dir(stage)
        tmp = folder / f"{TEMP_PREFIX}latest-{uuid.uuid4().hex}"
        try:
            tmp.write_text(artifact_id + "\n", encoding="utf-8")
            os.replace(tmp, folder / "latest")
        except BaseException:  # a full disk: the old pointer stays, and so must no half-written temp file
            tmp.unlink(missing_ok=True)
            raise

    def check_writable(self) -> None:
        """Refuse, before any work starts, a workdir where artifacts could not be written; creates nothing."""
        existing = self.root
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            raise UserError(f"{existing} is a file, so no artifact can be written under {self.root}; pass a writable --workdir.")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"{existing} is not writable, so no artifact can be written under {self.root}; pass a writable --workdir.")

    def ensure_stage_dir(self, stage: str) -> Path:
        """Create the stage folder, or say plainly that the workdir is not writable."""
        folder = self.stage_dir(stage)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create {folder} ({exc.strerror}); pass a writable --workdir.") from None
        if not os.access(folder, os.W_OK):
            raise UserError(f"{folder} is not writable; pass a writable --workdir.")
        return folder

    @contextmanager
    def lock(self, stage: str, name: str, *, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold ``<stage>/.lock-<name>`` exclusively, waiting for another process that holds it.

        The lock is ``flock`` on the file, so the kernel releases it when a holder dies (even by SIGKILL). The
        holder deletes the file on release; a waiter then finds that its open file is no longer the one at the
        path, and locks the new one, so two processes never both believe they hold the lock.
        """
        path = self.ensure_stage_dir(stage) / f".lock-{name}"
        while True:
            handle = open(path, "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(f"waiting for another recgoat process that holds {path}")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            handle.close()
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            handle.close()

    @contextmanager
    def writer(self, stage: str, artifact_id: str, *, force: bool = False) -> Iterator[Path]:
        """Yield a fresh temporary folder; on success it becomes ``<stage>/<artifact_id>``.

        The one way an artifact is published: the caller writes its files and the manifest
        (``write_manifest``) into the folder. On any exception, including KeyboardInterrupt, the folder is
        removed and nothing else changes; a failed write (a full disk) becomes an ``ArtifactWriteError``.
        With ``force`` an existing artifact of the same id is replaced, else it is kept.
        """
        folder = self.ensure_stage_dir(stage)
        tmp = temp_sibling(folder / artifact_id)
        try:
            tmp.mkdir()
        except OSError as exc:
            raise ArtifactWriteError(
                f"cannot create a folder in {folder} ({exc.strerror}); free space or pass a writable --workdir.", exc.strerror
            ) from None
        try:
            yield tmp
            self._commit(tmp, stage, artifact_id, force=force)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            reason = write_failure(exc, folder)
            if reason is None:
                raise
            raise ArtifactWriteError(
                f"writing the {stage} artifact under {folder} failed ({reason}); the partial folder was removed and "
                f"{stage}/latest was not changed, so free space (or fix the folder) and rerun.",
                reason,
            ) from None

    def _commit(self, tmp: Path, stage: str, artifact_id: str, *, force: bool = False) -> None:
        """Rename a finished folder (manifest written) to ``<stage>/<artifact_id>`` and point ``latest`` at it."""
        if not (tmp / MANIFEST_NAME).is_file():
            raise RuntimeError(f"stage {stage} finished without writing its manifest")
        # serialised, so two runs that finish the same artifact at once cannot both find it absent
        with self.lock(stage, f"commit-{artifact_id}"):
            self._commit_locked(tmp, stage, artifact_id, force=force)

    def _commit_locked(self, tmp: Path, stage: str, artifact_id: str, *, force: bool) -> None:
        final = self.stage_dir(stage) / artifact_id
        if final.exists() and not force and (final / MANIFEST_NAME).is_file():
            # a concurrent run of the same config finished first: keep its artifact
            shutil.rmtree(tmp)
            self.set_latest(stage, artifact_id)
            return
        move_into_place(tmp, final, replace=True)
        self.set_latest(stage, artifact_id)


def temp_sibling(final: Path) -> Path:
    """A fresh, unused name for the temporary folder that becomes ``final``: hidden, next to it, unique per process."""
    return final.parent / f"{TEMP_PREFIX}{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def move_into_place(tmp: Path, final: Path, *, replace: bool) -> None:
    """Rename the finished folder ``tmp`` to ``final`` (same file system), so ``final`` is never half-written.

    An existing ``final`` is swapped out when ``replace`` (moved aside, ``tmp`` renamed in, the old one removed; put
    back if the rename fails) and otherwise refused with ``FileExistsError``, also when it appears during the rename.
    """
    if final.exists():
        if not replace:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final))
        trash = final.parent / f"{TEMP_PREFIX}old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.replace(final, trash)
        try:
            os.replace(tmp, final)
        except OSError:
            os.replace(trash, final)
            raise
        shutil.rmtree(trash, ignore_errors=True)
        return
    try:
        os.replace(tmp, final)
    except OSError as error:
        if final.exists():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(final)) from error
        raise


@contextmanager
def publish_folder(final: Path, *, replace: bool) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``final``; when the block finishes it becomes ``final``.

    For outputs outside the artifact store (``recgoat prepare``'s dataset folder). On any exception, including
    KeyboardInterrupt, the temporary folder is removed and ``final`` is left as it was; ``move_into_place`` says
    what happens when ``final`` exists.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        move_into_place(tmp, final, replace=replace)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


#: the free bytes below which a write error without an errno (numpy's "N requested and M written") means a full disk
NEARLY_FULL_BYTES = 1 << 20


def write_failure(exc: BaseException, folder: Path) -> str | None:
    """Why writing under ``folder`` failed, when ``exc`` is a failed file operation; None for anything else.

    An ``OSError`` (``ENOSPC``, ``EDQUOT``, ``EIO``, ...) says so itself; numpy reports a short write without an
    errno and polars wraps the OS error in its own exception, so those are recognised by their text.
    """
    if isinstance(exc, OSError):
        if exc.strerror:
            return exc.strerror
        return "No space left on device" if _free_bytes(folder) < NEARLY_FULL_BYTES else str(exc)
    match = re.search(r"\(os error (\d+)\)", str(exc)) if type(exc).__module__.startswith("polars") else None
    return os.strerror(int(match.group(1))) if match else None


def _free_bytes(folder: Path) -> int:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return 1 << 62
    return stats.f_bavail * stats.f_frsize


def describe_outputs(folder: Path, shapes: dict[str, list[int]] | None = None) -> dict[str, OutputFile]:
    """Hash every regular file under ``folder`` (recursively) except the manifest."""
    shapes = shapes or {}
    outputs = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_NAME):
        name = path.relative_to(folder).as_posix()
        outputs[name] = OutputFile(sha256=sha256_file(path), bytes=path.stat().st_size, shape=shapes.get(name))
    return outputs


def upstream_entry(artifact: Artifact) -> Upstream:
    return Upstream(
        stage=artifact.manifest.stage,
        artifact_id=artifact.id,
        manifest_sha256=sha256_file(artifact.path / MANIFEST_NAME),
    )


def write_manifest(
    folder: Path,
    *,
    stage: str,
    artifact_id: str,
    dataset: str,
    config: dict,
    upstream: list[Artifact] = (),
    inputs: dict[str, str] | None = None,
    shapes: dict[str, list[int]] | None = None,
    seed: int | None = None,
    summary: dict | None = None,
) -> Manifest:
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        stage=stage,
        artifact_id=artifact_id,
        dataset=dataset,
        created_at=now_iso(),
        config=config,
        upstream=[upstream_entry(a) for a in upstream],
        inputs=inputs or {},
        outputs=describe_outputs(folder, shapes),
        versions=library_versions(),
        seed=seed,
        summary=summary or {},
    )
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest.model_dump(), indent=2, sort_keys=False) + "\n")
    return manifest


def verify_artifact(artifact: Artifact) -> None:
    """Refuse an artifact whose files were changed, removed or truncated since its manifest was written."""
    for name, expected in artifact.manifest.outputs.items():
        path = artifact.path / name
        if not path.is_file():
            raise UserError(f"{path} is missing from artifact {artifact.id}; rerun `recgoat {artifact.manifest.stage}` with --force.")
        if path.stat().st_size != expected.bytes or sha256_file(path) != expected.sha256:
            raise UserError(
                f"{path} does not match its manifest (changed or corrupted); "
                f"rerun `recgoat {artifact.manifest.stage} --dataset {artifact.manifest.dataset} --force`."
            )
