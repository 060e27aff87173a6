"""Atomic writes, verification, cache identity and refusal of tampered or foreign artifacts."""

from __future__ import annotations

import json

import pytest

from recgoat_cli.artifacts.manifest import SCHEMA_VERSION, compute_artifact_id, read_manifest
from recgoat_cli.artifacts.store import ArtifactStore, write_manifest
from recgoat_cli.errors import UserError


def _write(store: ArtifactStore, artifact_id: str, payload: str = "hello") -> None:
    with store.writer("build-graph", artifact_id) as out:
        (out / "data.txt").write_text(payload)
        write_manifest(out, stage="build-graph", artifact_id=artifact_id, dataset="toy", config={"k": 1})


def test_written_artifact_verifies_and_becomes_latest(tmp_path):
    store = ArtifactStore(tmp_path, "toy")
    _write(store, "abc123")
    artifact = store.get("build-graph")
    assert artifact.id == "abc123"
    assert artifact.manifest.outputs["data.txt"].bytes == 5
    assert artifact.manifest.schema_version == SCHEMA_VERSION
    assert "torch" in artifact.manifest.versions or "numpy" in artifact.manifest.versions
    assert store.latest_id("build-graph") == "abc123"


def test_tampered_file_is_refused(tmp_path):
    store = ArtifactStore(tmp_path, "toy")
    _write(store, "abc123")
    (tmp_path / "toy" / "build-graph" / "abc123" / "data.txt").write_text("hellO")
    with pytest.raises(UserError, match="does not match its manifest"):
        store.get("build-graph")


def test_truncated_manifest_is_refused(tmp_path):
    store = ArtifactStore(tmp_path, "toy")
    _write(store, "abc123")
    manifest = tmp_path / "toy" / "build-graph" / "abc123" / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    with pytest.raises(UserError, match="not valid JSON"):
        store.get("build-graph")


def test_future_schema_is_refused(tmp_path):
    store = ArtifactStore(tmp_path, "toy")
    _write(store, "abc123")
    manifest = tmp_path / "toy" / "build-graph" / "abc123" / "manifest.json"
    raw = json.loads(manifest.read_text())
    raw["schema_version"] = SCHEMA_VERSION + 1
    manifest.write_text(json.dumps(raw))
    with pytest.raises(UserError, match="newer than this recgoat"):
        read_manifest(manifest.parent)


def test_crash_mid_write_leaves_previous_latest_and_no_folder(tmp_path):
    store = ArtifactStore(tmp_path, "toy")
    _write(store, "first1")
    with pytest.raises(RuntimeError, match="boom"):
        with store.writer("build-graph", "second") as out:
            (out / "data.txt").write_text("partial")
            raise RuntimeError("boom")
    stage = tmp_path / "toy" / "build-graph"
    assert sorted(p.name for p in stage.iterdir()) == ["first1", "latest"]
    assert store.latest_id("build-graph") == "first1"


def test_missing_artifact_names_the_command(tmp_path):
    store = ArtifactStore(tmp_path, "toy")
    with pytest.raises(UserError, match="run `recgoat train --dataset toy` first"):
        store.get("train")


def test_unknown_id_is_a_user_error(tmp_path):
    store = ArtifactStore(tmp_path, "toy")
    _write(store, "abc123")
    assert store.get("build-graph", "abc").id == "abc123"  # unique prefix
    with pytest.raises(UserError, match="does not exist"):
        store.get("build-graph", "zzz")


def test_artifact_id_depends_on_config_upstream_and_inputs():
    base = compute_artifact_id("train", {"dim": 64}, ["g1"], {"x.inter": "aa"})
    assert base == compute_artifact_id("train", {"dim": 64}, ["g1"], {"x.inter": "aa"})
    assert base != compute_artifact_id("train", {"dim": 32}, ["g1"], {"x.inter": "aa"})
    assert base != compute_artifact_id("train", {"dim": 64}, ["g2"], {"x.inter": "aa"})
    assert base != compute_artifact_id("train", {"dim": 64}, ["g1"], {"x.inter": "ab"})


def test_unwritable_workdir_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = ArtifactStore(blocker, "toy")
    with pytest.raises(UserError, match="writable --workdir"):
        _write(store, "abc123")
