"""Real processes, really interrupted: SIGKILL mid-epoch then --resume gives the uninterrupted result; Ctrl-C
(SIGINT) exits 130 and SIGTERM 143, each leaving a resumable checkpoint; concurrent runs of one stage on one workdir stay consistent;
a process killed mid-write leaves the previous ``latest`` intact."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REPO_ROOT, make_tiny_dataset  # tests/ is on sys.path under pytest
from recgoat_cli.artifacts.store import ArtifactStore
from recgoat_cli.cli.app import app

TRAIN = ["--model", "lightgcn", "--epochs", "150", "--patience", "1000", "--batch-size", "32", "--dim", "8", "--device", "cpu"]
#: one thread: the same float reductions in every process, and less competition for a shared machine's cores
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def recgoat(*args: str) -> list[str]:
    return [sys.executable, "-m", "recgoat_cli", *args]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(recgoat(*args), capture_output=True, text=True, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def graph_workdir(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny dataset and a workdir holding its build-graph artifact (made in-process: it is not under test)."""
    root = tmp_path_factory.mktemp("interrupt")
    data = make_tiny_dataset(root / "data")
    workdir = root / "graph"
    result = CliRunner().invoke(app, ["build-graph", "--dataset", str(data), "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    return data, workdir


@pytest.fixture(scope="module")
def straight_run(graph_workdir, tmp_path_factory) -> tuple[dict, Path]:
    """The uninterrupted training run every interrupted one must reproduce."""
    data, graph = graph_workdir
    workdir = tmp_path_factory.mktemp("straight") / "runs"
    shutil.copytree(graph, workdir)
    # the subprocesses run this checkout's code, not whatever recgoat_cli is installed
    where = subprocess.run([sys.executable, "-c", "import recgoat_cli; print(recgoat_cli.__file__)"],
                           capture_output=True, text=True, env=ENV, check=True)
    assert Path(where.stdout.strip()).is_relative_to(REPO_ROOT)
    done = run("train", "--dataset", str(data), "--workdir", str(workdir), *TRAIN, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), workdir


def start_training(data: Path, workdir: Path) -> tuple[subprocess.Popen, Path]:
    """Start ``recgoat train`` and return once the checkpoint of epoch 1 or later is on disk."""
    process = subprocess.Popen(recgoat("train", "--dataset", str(data), "--workdir", str(workdir), *TRAIN),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        logs = list((workdir / "tiny" / "train").glob(".work-*/log.jsonl"))
        # the log line of epoch e is written before its checkpoint, so two lines mean last.pt holds epoch >= 1
        if logs and len(logs[0].read_text().splitlines()) >= 2:
            return process, logs[0].parent
        time.sleep(0.005)
    process.kill()
    pytest.fail(f"training never reached epoch 2 in time: {process.communicate()[1]}")


def assert_same_training(resumed: dict, straight: dict, resumed_dir: Path, straight_dir: Path) -> None:
    assert resumed["artifact_id"] == straight["artifact_id"] and resumed["cached"] is False
    assert (resumed["best_epoch"], resumed["best_valid"]) == (straight["best_epoch"], straight["best_valid"])
    for name in ("user_embeddings.npy", "item_embeddings.npy"):
        assert np.array_equal(np.load(resumed_dir / name), np.load(straight_dir / name)), name

    def losses(folder: Path) -> list[tuple]:
        records = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        return [(r["epoch"], r["loss"], r.get("valid_recall@20")) for r in records]

    assert losses(resumed_dir) == losses(straight_dir)  # every epoch once, with the same numbers


def test_sigkill_mid_training_then_resume_equals_an_uninterrupted_run(graph_workdir, straight_run, tmp_path):
    data, graph = graph_workdir
    straight, straight_workdir = straight_run
    workdir = tmp_path / "runs"
    shutil.copytree(graph, workdir)
    process, work = start_training(data, workdir)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert ArtifactStore(workdir, "tiny").latest_id("train") is None  # nothing half-written under a real id
    assert (work / "last.pt").is_file() and len((work / "log.jsonl").read_text().splitlines()) < 150  # killed mid-run

    resumed = run("train", "--dataset", str(data), "--workdir", str(workdir), *TRAIN, "--resume", "--json")

    assert resumed.returncode == 0, resumed.stderr
    payload = json.loads(resumed.stdout)
    assert_same_training(payload, straight, Path(payload["path"]), Path(straight["path"]))
    assert not work.exists() and not list((workdir / "tiny" / "train").glob(".lock-*"))


def test_ctrl_c_exits_130_with_a_message_and_resume_finishes(graph_workdir, straight_run, tmp_path):
    data, graph = graph_workdir
    straight, _ = straight_run
    workdir = tmp_path / "runs"
    shutil.copytree(graph, workdir)
    process, work = start_training(data, workdir)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130
    assert "interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert (work / "last.pt").is_file() and ArtifactStore(workdir, "tiny").latest_id("train") is None
    resumed = run("train", "--dataset", str(data), "--workdir", str(workdir), *TRAIN, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    payload = json.loads(resumed.stdout)
    assert_same_training(payload, straight, Path(payload["path"]), Path(straight["path"]))


def test_sigterm_exits_143_like_ctrl_c_and_resume_finishes(graph_workdir, straight_run, tmp_path):
    """Schedulers (Slurm, Kubernetes, systemd) stop a job with SIGTERM: the same cleanup as Ctrl-C, exit 128 + 15."""
    data, graph = graph_workdir
    straight, _ = straight_run
    workdir = tmp_path / "runs"
    shutil.copytree(graph, workdir)
    process, work = start_training(data, workdir)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 143
    assert "terminated (SIGTERM)" in stderr and "--resume" in stderr and "Traceback" not in stderr
    assert (work / "last.pt").is_file() and ArtifactStore(workdir, "tiny").latest_id("train") is None
    stage_dir = workdir / "tiny" / "train"
    assert sorted(p.name for p in stage_dir.iterdir()) == [work.name]  # no lock, no temp checkpoint left
    assert not list(work.glob("*.tmp-*"))
    resumed = run("train", "--dataset", str(data), "--workdir", str(workdir), *TRAIN, "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    payload = json.loads(resumed.stdout)
    assert_same_training(payload, straight, Path(payload["path"]), Path(straight["path"]))


@pytest.mark.parametrize("stage", ["build-graph", "train"])
def test_concurrent_runs_of_one_stage_end_with_one_whole_artifact(graph_workdir, tmp_path, stage):
    data, graph = graph_workdir
    workdir = tmp_path / "runs"
    extra = TRAIN if stage == "train" else []
    if stage == "train":
        shutil.copytree(graph, workdir)
    args = recgoat(stage, "--dataset", str(data), "--workdir", str(workdir), *extra, "--json")
    processes = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]

    assert [p.returncode for p in processes] == [0, 0], [err for _, err in outputs]
    ids = {json.loads(out)["artifact_id"] for out, _ in outputs}
    assert len(ids) == 1
    stage_dir = workdir / "tiny" / stage
    assert sorted(p.name for p in stage_dir.iterdir()) == sorted([ids.pop(), "latest"])  # no temp, work or lock left
    store = ArtifactStore(workdir, "tiny")
    assert store.get(stage).id == store.latest_id(stage)  # verifies every file against its manifest


def test_a_process_killed_mid_write_leaves_the_previous_latest(tmp_path):
    store = ArtifactStore(tmp_path, "toy")
    with store.writer("build-graph", "first1") as out:
        (out / "data.txt").write_text("kept")
        from recgoat_cli.artifacts.store import write_manifest

        write_manifest(out, stage="build-graph", artifact_id="first1", dataset="toy", config={})
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from recgoat_cli.artifacts.store import ArtifactStore\n"
        "store = ArtifactStore(Path(sys.argv[1]), 'toy')\n"
        "with store.writer('build-graph', 'second') as out:\n"
        "    (out / 'data.txt').write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=ENV, timeout=60)

    assert killed.returncode == -signal.SIGKILL
    assert store.latest_id("build-graph") == "first1"
    assert [a.id for a in store.list("build-graph")] == ["first1"]
    assert store.get("build-graph").file("data.txt").read_text() == "kept"
    # what the kill left is a hidden temp folder that nothing reads
    leftovers = [p.name for p in (tmp_path / "toy" / "build-graph").iterdir() if p.name not in ("first1", "latest")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-second-")
