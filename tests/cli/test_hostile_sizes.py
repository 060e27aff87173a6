"""Hostile sizes in real processes: ``recgoat run`` on an interaction file with a user id of 10^12 exits 2 with one
sentence and stays under 200 MB of memory (the child's peak RSS, ``getrusage(RUSAGE_CHILDREN)``), where it used to try to
allocate 931 GiB; the flags whose values multiply into allocations are refused the same way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT  # tests/ is on sys.path under pytest

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "bad"
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
PEAK_LIMIT_MB = 200


#: runs the command given in argv and prints its exit code and its peak RSS in KiB (its stderr passes through)
MEASURE = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
    "sys.stderr.write(done.stderr)\n"
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def run_measured(args: list[str], cwd: Path) -> tuple[int, str, float]:
    """Run ``recgoat *args``; its exit code, stderr and peak resident memory in MB.

    The command runs under a small Python process that reads ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it:
    Linux starts a child's peak RSS at its parent's size at fork, so a child forked straight from this test
    session (which has torch loaded by now) would report the session's size, not its own.
    """
    done = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "recgoat_cli", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    code, peak_kib = done.stdout.split()
    return int(code), done.stderr, int(peak_kib) / 1024  # ru_maxrss is in KiB on Linux


def assert_one_sentence(stderr: str, words: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), stderr
    assert words in lines[0] and "Traceback" not in stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB on Linux only")
def test_run_on_a_user_id_of_10_to_the_12_exits_2_under_200_mb(tmp_path):
    workdir = tmp_path / "runs"

    code, stderr, peak_mb = run_measured(["run", "--dataset", str(FIXTURES / "hostile-user-id"), "--workdir", str(workdir), "--device", "cpu"], tmp_path)

    assert code == 2
    assert_one_sentence(stderr, "column userID skips id 6 and has id 1000000000000")
    assert not workdir.exists()
    # measured 105 MB here (Python, numpy, polars, pydantic); importing torch alone costs ~780 MB, so the
    # refusal must come before anything imports it
    assert peak_mb < PEAK_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A 6 users x 5 items dataset (3 train + 1 valid + 1 test each) and a workdir with its graph and an MF model."""
    root = tmp_path_factory.mktemp("hostile")
    good = root / "good"
    good.mkdir()
    rows = [f"{u}\t{(u + o) % 5}\t{label}" for u in range(6) for o, label in zip(range(5), (0, 0, 0, 1, 2))]
    (good / "good.inter").write_text("userID\titemID\tx_label\n" + "\n".join(rows) + "\n")
    workdir = root / "runs"
    common = ["--dataset", str(good), "--workdir", str(workdir), "--device", "cpu", "-q"]
    for stage in (["build-graph"], ["train", "--model", "mf", "--epochs", "1", "--dim", "4", "--val-metric", "recall@2"]):
        made = subprocess.run([sys.executable, "-m", "recgoat_cli", stage[0], *common[:4], *stage[1:], "-q"], env=ENV, cwd=root, capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
    return good, workdir


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--model", "mf", "--dim", "2000000000", "--val-metric", "recall@2"], "--dim 2000000000 needs about"),
        (["evaluate", "--k", "4000000000000"], "--k 4000000000000 is larger than the catalogue (5 items)"),
    ],
    ids=["dim", "k"],
)
def test_flags_that_multiply_into_huge_allocations_exit_2_before_allocating(trained, tmp_path, args, words):
    """The issue's own commands, in a real process whose memory is measured: refused, not attempted."""
    good, made = trained
    workdir = tmp_path / "runs"
    shutil.copytree(made, workdir)
    before = sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*"))

    code, stderr, peak_mb = run_measured([args[0], "--dataset", str(good), "--workdir", str(workdir), "--device", "cpu", *args[1:]], tmp_path)

    assert code == 2
    assert_one_sentence(stderr, words)
    assert sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*")) == before
    assert peak_mb < 2048, f"peak RSS {peak_mb:.0f} MB"  # torch is imported here; nothing of the asked size was taken
