"""The manifest every stage writes next to its outputs, and the hashes it is built from."""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recgoat_cli import __version__
from recgoat_cli.errors import UserError

#: bump when the manifest layout or the meaning of an artifact's files changes
SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
_VERSIONED_LIBRARIES = ("torch", "numpy", "polars", "POT", "sentence-transformers", "open-clip-torch", "pydantic")


class OutputFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str
    bytes: int
    shape: list[int] | None = None


class Upstream(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: str
    artifact_id: str
    manifest_sha256: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int
    stage: str
    artifact_id: str
    dataset: str
    created_at: str
    config: dict[str, Any]
    upstream: list[Upstream] = Field(default_factory=list)
    inputs: dict[str, str] = Field(default_factory=dict, description="dataset file name -> sha256")
    outputs: dict[str, OutputFile] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    seed: int | None = None
    summary: dict[str, Any] = Field(default_factory=dict, description="stage-specific facts: counts, stats, metrics")

    def upstream_id(self, stage: str) -> str | None:
        return next((u.artifact_id for u in self.upstream if u.stage == stage), None)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def compute_artifact_id(stage: str, config: dict, upstream_ids: list[str], input_hashes: dict[str, str]) -> str:
    """Twelve hex digits that change whenever the config, an upstream artifact or an input file does."""
    key = {"schema": SCHEMA_VERSION, "stage": stage, "config": config, "upstream": upstream_ids, "inputs": input_hashes}
    return sha256_json(key)[:12]


def library_versions() -> dict[str, str]:
    versions = {"recgoat": __version__, "python": platform.python_version()}
    for name in _VERSIONED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_manifest(folder: Path) -> Manifest:
    """Parse ``folder/manifest.json``; a missing, truncated or foreign manifest is a user error."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise UserError(f"{path} is missing: the artifact folder is incomplete; rerun the stage with --force.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc}); rerun the stage with --force.") from None
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise UserError(
            f"{path} has schema version {version}, newer than this recgoat understands ({SCHEMA_VERSION}); "
            "upgrade recgoat or rerun the stage with --force."
        )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise UserError(f"{path} is not a recgoat manifest ({where}: {first['msg']}); rerun the stage with --force.") from None
    if manifest.schema_version < SCHEMA_VERSION:
        raise UserError(
            f"{path} has schema version {manifest.schema_version}, older than {SCHEMA_VERSION}; rerun the stage with --force."
        )
    return manifest


def check_versions(manifest: Manifest, folder: Path) -> list[str]:
    """Library versions that differ from the ones that wrote the artifact (a warning, not an error)."""
    current = library_versions()
    return [
        f"{name} {old} -> {current[name]}"
        for name, old in manifest.versions.items()
        if name in current and name != "python" and current[name] != old
    ]
