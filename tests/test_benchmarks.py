"""benchmarks/ is a package run as ``python -m benchmarks.<part>.<script>``: its scripts import each other only
through it (no ``sys.path`` edits), and a module that starts itself in a fresh process still runs."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

from conftest import REPO_ROOT  # tests/ is on sys.path under pytest

BENCHMARKS = REPO_ROOT / "benchmarks"


def python_files():
    return sorted(p for p in BENCHMARKS.rglob("*.py") if "__pycache__" not in p.parts)


def test_benchmarks_edit_no_import_path():
    found = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) and node.value.id == "sys":
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert found == []


def test_benchmarks_import_each_other_through_the_package():
    scripts = {p.stem for p in python_files()} - {"__init__"}
    found = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            found += [f"{path.relative_to(REPO_ROOT)}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in scripts]
    assert found == []


def test_a_benchmark_that_starts_itself_again_runs_as_a_module(tmp_path):
    """knn_scale runs each size in a child ``python -m benchmarks.speed.knn_scale --single N``; from another
    working directory, with only the repository on PYTHONPATH."""
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.speed.knn_scale", "--sizes", "40", "--dim", "4", "--k", "3", "--threads", "1"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.splitlines()[0])
    assert (record["n"], record["dim"], record["k"], record["threads"]) == (40, 4, 3, 1)
    # symmetrised 3-NN graph of 40 points: at least 40 x 3 directed edges, at most twice that
    assert 40 * 3 <= record["edges"] <= 2 * 40 * 3
