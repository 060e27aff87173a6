"""Refactoring guard: the artifact ids of ``recgoat run --dataset sample`` and the files ``recgoat prepare`` writes.

An artifact id is a hash of the stage's config, its upstream ids and its input files, so a refactor that moves
code without changing behaviour leaves every id below unchanged. If one has to change, the CHANGELOG says why and
the recorded value here is updated in the same commit. The last test checks what `recgoat prepare` prints for the
same raw table.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

# recorded at 41d0a01 (before the issue-19 refactor), `recgoat run --dataset sample` with every default; the issue-19
# refactor kept all five. The train, evaluate and export ids then changed once, on purpose, when RecGOAT's default
# became `--gat-values id --content-score` (issue 16; CHANGELOG): they were 6e50fe55829f, 3778303260eb, 3ebddaa4d44f.
RUN_IDS = {
    "embed": "bc10ef368cdd",
    "build-graph": "3a607e2198a3",
    "train": "ba81f7784d9d",
    "evaluate": "10db3ca17cd1",
    "export": "29d2096739e3",
}

# sha256 of the files `recgoat prepare` writes for the raw table below (prepare.json records absolute paths, so
# its own bytes are not compared; its "outputs" block is)
PREPARE_OUTPUTS = {
    "i_id_mapping.csv": "85a43756bb1b8dddf84e14cd868dd7fd2c264c09300b7da92ea0d48432d14c2b",
    "items.tsv": "422ef19093c87d94c3d8b53831bae369b98abe31a958f20ffce517d807b7ff2a",
    "toy.inter": "54f5ad8ccb01701d2aa062f8c8175540b561429a4cf9c4accc7a0de45e59c232",
    "u_id_mapping.csv": "269eca0add484ca789b43a9f11cf50864dbfb7125ae148d8b86f538405ae2e17",
}


def _cli(*args: str, cwd: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "recgoat_cli", *args, "--json"], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_run_on_the_sample_keeps_every_artifact_id(tmp_path):
    out = _cli("run", "--dataset", "sample", "--workdir", str(tmp_path / "runs"), cwd=Path(__file__).resolve().parents[1])
    ids = {
        "embed": out["embed"],
        "build-graph": out["build-graph"],
        "train": out["train"]["artifact_id"],
        "evaluate": out["evaluate"]["artifact_id"],
        "export": out["export"]["artifact_id"],
    }
    assert ids == RUN_IDS


def _write_raw(folder: Path) -> None:
    rng = random.Random(7)
    lines = ["user_id,item_id,rating,timestamp"]
    for user in range(60):
        for item in rng.sample(range(40), 8):
            lines.append(f"u{user},i{item},{rng.randint(1, 5)},{1600000000 + rng.randint(0, 10**6)}")
    (folder / "raw.csv").write_text("\n".join(lines) + "\n")
    (folder / "items.csv").write_text("item_id,title\n" + "".join(f"i{i},Item number {i} with words {i % 7}\n" for i in range(40)))


def test_prepare_writes_the_same_files(tmp_path):
    _write_raw(tmp_path)
    out = tmp_path / "out"
    summary = _cli(
        "prepare", "-i", str(tmp_path / "raw.csv"), "--name", "toy", "--out", str(out), "--k-core", "3",
        "--item-text", str(tmp_path / "items.csv"), "--item-text-key", "item_id", cwd=tmp_path,
    )["summary"]
    written = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in out.iterdir() if path.name != "prepare.json"}
    assert written == PREPARE_OUTPUTS
    assert summary["outputs"] == PREPARE_OUTPUTS
    assert summary["counts"] == {"users": 60, "items": 40, "interactions": 480}


def test_prepare_prints_its_counts_and_split_sizes(tmp_path):
    _write_raw(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = ["prepare", "-i", str(tmp_path / "raw.csv"), "--name", "toy", "--out", str(tmp_path / "out"), "--k-core", "3"]
    result = subprocess.run([sys.executable, "-m", "recgoat_cli", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].endswith(": 60 users, 40 items, 480 interactions")
    assert lines[1:] == ["  train: 360", "  valid: 60", "  test: 60"]
