"""Atomic writes, verification, cache identity and refusal of tampered or foreign artifacts."""

from __future__ import annotations

import json
import os

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


def test_workdir_below_a_file_is_refused_before_anything_is_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match=r"file is a file, so no artifact can be written under .*; pass a writable --workdir"):
        ArtifactStore(blocker / "runs", "toy").check_writable()
    ArtifactStore(tmp_path / "new" / "runs", "toy").check_writable()  # a workdir that does not exist yet is fine
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder, so a read-only folder cannot be made")
def test_read_only_workdir_is_refused(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(UserError, match="read-only is not writable"):
            ArtifactStore(folder, "toy").check_writable()
    finally:
        folder.chmod(0o755)


def test_two_writers_of_one_artifact_keep_one_whole_copy(tmp_path):
    store = ArtifactStore(tmp_path, "toy")
    with store.writer("build-graph", "same12") as first:
        (first / "data.txt").write_text("one")
        write_manifest(first, stage="build-graph", artifact_id="same12", dataset="toy", config={})
        _write(store, "same12", payload="one")  # a second run finishes the same artifact first
    assert sorted(p.name for p in (tmp_path / "toy" / "build-graph").iterdir()) == ["latest", "same12"]
    assert store.get("build-graph").file("data.txt").read_text() == "one"


def test_lock_is_exclusive_and_leaves_no_file(tmp_path):
    import fcntl

    store = ArtifactStore(tmp_path, "toy")
    with store.lock("train", "abc"):
        path = tmp_path / "toy" / "train" / ".lock-abc"
        with open(path) as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert not path.exists()
