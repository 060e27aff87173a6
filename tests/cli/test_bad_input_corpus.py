"""The bad-input corpus (tests/fixtures/bad/cases.toml): every case exits 2 with one sentence that names the file,
line or flag, prints no traceback, leaves the workdir as it was and never runs a pickle it is handed."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recgoat_cli.cli.app import app
from conftest import REPO_ROOT, make_tiny_dataset  # tests/ is on sys.path under pytest

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "bad"
CASES = tomllib.loads((FIXTURES / "cases.toml").read_text(encoding="utf-8"))["case"]
PICKLE_MARKER = "PICKLE_WAS_LOADED"  # what the fixtures' malicious pickles would create in the working directory
runner = CliRunner()


def _artifact_dir(workdir: Path, stage: str) -> Path:
    stage_dir = workdir / "good" / stage
    return stage_dir / (stage_dir / "latest").read_text().strip()


def _delete_artifact(workdir: Path, stage: str) -> None:
    shutil.rmtree(_artifact_dir(workdir, stage))


def _tamper_file(workdir: Path, stage: str, name: str) -> None:
    path = _artifact_dir(workdir, stage) / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _delete_file(workdir: Path, stage: str, name: str) -> None:
    (_artifact_dir(workdir, stage) / name).unlink()


def _truncate_manifest(workdir: Path, stage: str) -> None:
    path = _artifact_dir(workdir, stage) / "manifest.json"
    path.write_text(path.read_text()[:60])


def _foreign_manifest(workdir: Path, stage: str) -> None:
    (_artifact_dir(workdir, stage) / "manifest.json").write_text(json.dumps({"schema_version": 1, "name": "not ours"}))


def _future_schema(workdir: Path, stage: str) -> None:
    path = _artifact_dir(workdir, stage) / "manifest.json"
    raw = json.loads(path.read_text())
    raw["schema_version"] += 1
    path.write_text(json.dumps(raw))


def _interrupted_run(workdir: Path) -> Path:
    """The work folder an interrupted run of the pipeline's train config leaves: the artifact's checkpoints."""
    trained = _artifact_dir(workdir, "train")
    work = trained.parent / f".work-{trained.name}"
    shutil.copytree(trained, work)
    (work / "manifest.json").unlink()
    return work


def _truncate_checkpoint(workdir: Path) -> None:
    last = _interrupted_run(workdir) / "last.pt"
    last.write_bytes(last.read_bytes()[:200])


def _malicious_checkpoint(workdir: Path) -> None:
    shutil.copy(FIXTURES / "pickle-files" / "evil.pt", _interrupted_run(workdir) / "last.pt")


SETUPS = {
    "delete-artifact": _delete_artifact,
    "tamper-file": _tamper_file,
    "delete-file": _delete_file,
    "truncate-manifest": _truncate_manifest,
    "foreign-manifest": _foreign_manifest,
    "future-schema": _future_schema,
    "truncate-checkpoint": _truncate_checkpoint,
    "malicious-checkpoint": _malicious_checkpoint,
}


@pytest.fixture(scope="module")
def finished_pipeline(tmp_path_factory) -> tuple[Path, Path]:
    """One small dataset ``good`` and a workdir holding its build-graph, train and evaluate artifacts."""
    root = tmp_path_factory.mktemp("corpus")
    good = make_tiny_dataset(root).rename(root / "good")
    workdir = root / "runs"
    common = ["--dataset", str(good), "--workdir", str(workdir)]
    for args in (["build-graph"], ["train", "--model", "lightgcn", "--epochs", "2", "--dim", "8"], ["evaluate", "--k", "5"]):
        result = runner.invoke(app, [args[0], *common, *args[1:]])
        assert result.exit_code == 0, result.output
    return good, workdir


def snapshot(workdir: Path) -> set[str]:
    return {p.relative_to(workdir).as_posix() for p in workdir.rglob("*")} if workdir.exists() else set()


def test_the_corpus_is_large_and_every_folder_has_a_case():
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)) and len(names) >= 30
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir()} - {"pickle-files", "raw-tables"}
    assert folders <= set(names), folders - set(names)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_bad_input_exits_2_with_one_sentence(case, finished_pipeline, tmp_path, monkeypatch):
    good, pipeline_workdir = finished_pipeline
    workdir = tmp_path / "runs"
    if case.get("workdir") == "pipeline":
        shutil.copytree(pipeline_workdir, workdir)
    if "setup" in case:
        kind, *where = case["setup"].split(":")
        SETUPS[kind](workdir, *where)
    before = snapshot(workdir)
    monkeypatch.chdir(tmp_path)  # where a malicious pickle would leave its marker file
    places = {"{case}": str(FIXTURES / case["name"]), "{fixtures}": str(FIXTURES), "{workdir}": str(workdir), "{good}": str(good)}
    args = []
    for arg in case["args"]:
        for placeholder, value in places.items():
            arg = arg.replace(placeholder, value)
        args.append(arg)

    result = runner.invoke(app, args)

    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}{result.exception!r}"
    # progress notes may come first (`image: no CLIP weights given, ...`); the error is the one last line
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0]), result.stderr
    assert errors[0].rstrip().endswith((".", ".)")), errors[0]
    assert case["message"] in errors[0]
    assert "Traceback" not in result.output
    after = snapshot(workdir)
    assert after == before, f"left behind: {sorted(after - before)}, removed: {sorted(before - after)}"
    assert not (tmp_path / PICKLE_MARKER).exists()
