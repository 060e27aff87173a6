"""A disk that fills up while an artifact is written, on a real small filesystem (a 2 MiB tmpfs this test mounts;
skipped with the reason when it cannot, e.g. not root): every stage exits 2 with one sentence, removes what it had
half-written, leaves ``latest`` on the previous artifact, and works again once there is space. No write is mocked:
the ENOSPC comes from the kernel."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import make_tiny_dataset  # tests/ is on sys.path under pytest
from recgoat_cli.artifacts.store import ArtifactStore
from recgoat_cli.cli.app import app

runner = CliRunner()
PAGE = 4096
TRAIN = ["--model", "lightgcn", "--epochs", "3", "--dim", "8", "--device", "cpu"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny dataset and a workdir with its build-graph, train, evaluate and export artifacts (on the normal disk)."""
    root = tmp_path_factory.mktemp("diskfull")
    data = make_tiny_dataset(root / "data")
    workdir = root / "runs"
    common = ["--dataset", str(data), "--workdir", str(workdir)]
    for args in (["build-graph"], ["train", *TRAIN], ["evaluate", "--k", "5", "--device", "cpu"], ["export", "--top-k", "3", "--device", "cpu"]):
        result = runner.invoke(app, [args[0], *common, *args[1:]])
        assert result.exit_code == 0, result.output
    return data, workdir


@pytest.fixture()
def small_disk(tmp_path) -> Path:
    """A 2 MiB tmpfs mounted for this test and unmounted after it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (CI and the dev container run as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode})")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def fill(disk: Path, room: int = 0) -> Path:
    """Fill ``disk`` until the kernel says ENOSPC, then free ``room`` bytes (whole pages); returns the filler."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        chunk = b"\0" * (64 * PAGE)
        while True:
            try:
                os.write(fd, chunk)
            except OSError:
                if len(chunk) == PAGE:
                    break
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)
    os.truncate(filler, filler.stat().st_size - room)
    return filler


def snapshot(workdir: Path) -> set[str]:
    return {p.relative_to(workdir).as_posix() for p in workdir.rglob("*")}


def assert_refused_cleanly(result, workdir: Path, before: set[str], stage: str, latest: str) -> None:
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}{result.exception!r}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0]) and errors[0].endswith("."), result.stderr
    assert "No space left on device" in errors[0] and "Traceback" not in result.output
    assert snapshot(workdir) == before, f"left behind: {sorted(snapshot(workdir) - before)}"
    store = ArtifactStore(workdir, "tiny")
    assert store.latest_id(stage) == latest
    store.get(stage)  # the previous artifact still verifies against its manifest


@pytest.mark.parametrize(
    ("stage", "args"),
    [
        ("build-graph", ["--normalize", "rw"]),
        ("train", [*TRAIN, "--seed", "7"]),
        ("evaluate", ["--k", "7", "--device", "cpu"]),
        ("export", ["--top-k", "4", "--device", "cpu"]),  # parquet: polars reports the OS error in its own exception
        ("export", ["--top-k", "4", "--format", "csv", "--device", "cpu"]),
    ],
    ids=["build-graph", "train", "evaluate", "export-parquet", "export-csv"],
)
def test_a_full_disk_exits_2_keeps_latest_and_leaves_nothing_half_written(pipeline, small_disk, stage, args):
    data, made = pipeline
    workdir = small_disk / "runs"
    shutil.copytree(made, workdir)
    latest = ArtifactStore(workdir, "tiny").latest_id(stage)
    filler = fill(small_disk)
    before = snapshot(workdir)

    result = runner.invoke(app, [stage, "--dataset", str(data), "--workdir", str(workdir), *args])

    assert_refused_cleanly(result, workdir, before, stage, latest)
    filler.unlink()  # space again: the same command now succeeds
    again = runner.invoke(app, [stage, "--dataset", str(data), "--workdir", str(workdir), *args])
    assert again.exit_code == 0, again.output
    assert ArtifactStore(workdir, "tiny").latest_id(stage) != latest


def test_a_disk_that_fills_mid_training_keeps_the_checkpoint_for_resume(pipeline, small_disk):
    """Room for the first checkpoint only: the run stops at the next write, keeps ``last.pt``, and --resume finishes."""
    data, made = pipeline
    workdir = small_disk / "runs"
    shutil.copytree(made, workdir)
    latest = ArtifactStore(workdir, "tiny").latest_id("train")
    checkpoint = (workdir / "tiny" / "train" / latest / "last.pt").stat().st_size
    filler = fill(small_disk, room=(-(-checkpoint // PAGE) + 1) * PAGE)  # last.pt and one page of log
    common = ["train", "--dataset", str(data), "--workdir", str(workdir), *TRAIN, "--seed", "7"]

    result = runner.invoke(app, common)

    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.stderr and "--resume" in result.stderr
    work = [p for p in (workdir / "tiny" / "train").iterdir() if p.name.startswith(".work-")]
    assert len(work) == 1 and (work[0] / "last.pt").is_file() and not list(work[0].glob("*.tmp-*"))
    assert ArtifactStore(workdir, "tiny").latest_id("train") == latest
    filler.unlink()
    resumed = runner.invoke(app, [*common, "--resume", "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert ArtifactStore(workdir, "tiny").latest_id("train") != latest and not work[0].exists()
