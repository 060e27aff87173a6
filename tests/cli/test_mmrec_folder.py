"""MMRec folders as they are, and stages that run what they need (make-style upstream).

An MMRec dataset folder is ``NAME.inter`` (``userID itemID x_label``), ``image_feat.npy`` (4096-d VGG features)
and ``text_feat.npy`` (384-d sentence features) and nothing else. ``recgoat train --dataset NAME --data-root DIR``
must train on it straight away, as ``python main.py -m FREEDOM -d NAME`` does in MMRec, and ``recgoat evaluate``
must then report. Both run as real subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from recgoat_cli.cli.app import app

runner = CliRunner()


def mmrec_folder(root: Path, name: str = "sports", n_users: int = 30, n_items: int = 24, seed: int = 0) -> Path:
    """``root/name`` in MMRec's layout: 7 interactions per user (5 train, 1 valid, 1 test), two feature files."""
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True)
    rows = ["userID\titemID\tx_label"]
    for user in range(n_users):
        others = np.setdiff1d(np.arange(n_items), [user % n_items])
        items = np.concatenate([[user % n_items], rng.choice(others, 6, replace=False)])  # every item id appears
        for position, item in enumerate(items):
            rows.append(f"{user}\t{item}\t{0 if position < 5 else position - 4}")
    (folder / f"{name}.inter").write_text("\n".join(rows) + "\n")
    np.save(folder / "image_feat.npy", rng.standard_normal((n_items, 4096)).astype(np.float32))
    np.save(folder / "text_feat.npy", rng.standard_normal((n_items, 384)).astype(np.float32))
    return folder


def recgoat(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "recgoat_cli", *args], capture_output=True, text=True, env=env, timeout=600)


def test_mmrec_folder_trains_and_evaluates_with_the_mmrec_commands(tmp_path):
    mmrec_folder(tmp_path / "data")
    common = ["--dataset", "sports", "--data-root", str(tmp_path / "data"), "--workdir", str(tmp_path / "runs")]
    trained = recgoat("train", *common, "--model", "recgoat", "--epochs", "2", "--dim", "8")
    assert trained.returncode == 0, trained.stderr
    # one line says what ran first, as make would
    lines = trained.stderr.splitlines()
    assert lines[0] == (
        "no build-graph artifact for dataset 'sports' yet, so `recgoat train` runs `recgoat embed` and "
        "`recgoat build-graph` with their defaults first"
    )
    assert sum("defaults first" in line for line in lines) == 1 and lines[-1].startswith("trained recgoat artifact")
    # the two feature files became the image and text modalities, and the graphs were built from them
    embed_dir = next(p for p in (tmp_path / "runs" / "sports" / "embed").iterdir() if not p.name.startswith((".", "latest")))
    summary = json.loads((embed_dir / "manifest.json").read_text())["summary"]
    assert summary["modalities"] == {"image": [24, 4096], "text": [24, 384]}
    graph_dir = next(p for p in (tmp_path / "runs" / "sports" / "build-graph").iterdir() if not p.name.startswith((".", "latest")))
    assert {"item_knn_image.npz", "item_knn_text.npz", "user_user.npz"} <= {p.name for p in graph_dir.iterdir()}

    evaluated = recgoat("evaluate", *common, "--k", "10", "20", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout)["metrics"]
    assert set(metrics) == {f"{m}@{k}" for m in ("recall", "ndcg", "precision", "hit", "map") for k in (10, 20)}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert "runs" not in evaluated.stderr  # the train artifact existed: nothing ran first


def test_existing_upstream_is_reused_and_quiet_stays_quiet(tmp_path):
    folder = mmrec_folder(tmp_path / "data", name="shop", n_users=20, n_items=24)  # more items than recall@20 needs
    runs = tmp_path / "runs"
    common = ["--dataset", str(folder), "--workdir", str(runs)]
    built = runner.invoke(app, ["build-graph", *common, "--json"])  # IDs only: no embed artifact
    assert built.exit_code == 0, built.output
    graph_id = json.loads(built.stdout)["artifact_id"]

    trained = runner.invoke(app, ["train", *common, "--model", "lightgcn", "--epochs", "1", "--dim", "8", "--json"])
    assert trained.exit_code == 0, trained.output
    assert "defaults first" not in trained.stderr
    assert not (runs / "shop" / "embed").exists()  # the existing build-graph artifact was used as it is
    manifest = json.loads((Path(json.loads(trained.stdout)["path"]) / "manifest.json").read_text())
    assert [u["artifact_id"] for u in manifest["upstream"]] == [graph_id]


def test_export_on_a_fresh_dataset_trains_first_and_quiet_prints_nothing(tmp_path):
    folder = mmrec_folder(tmp_path / "data", name="shop", n_users=14, n_items=24)  # more items than --knn-k 10 and recall@20 need
    result = runner.invoke(app, ["export", "--dataset", str(folder), "--workdir", str(tmp_path / "runs"), "--top-k", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""
    assert {p.name for p in (tmp_path / "runs" / "shop").iterdir()} >= {"embed", "build-graph", "train", "export"}


def test_raw_text_next_to_mmrec_text_features_keeps_both(tmp_path):
    folder = mmrec_folder(tmp_path / "data", name="shop", n_users=12, n_items=10)
    (folder / "items.tsv").write_text("itemID\ttitle\n" + "".join(f"{i}\tproduct {i}\n" for i in range(10)))
    result = runner.invoke(app, ["embed", "--dataset", str(folder), "--workdir", str(tmp_path / "runs"), "--json"])
    assert result.exit_code == 0, result.output
    modalities = json.loads(result.stdout)["modalities"]
    assert modalities == {"text": [10, 384], "image": [10, 4096], "text_feat": [10, 384]}


def test_evaluate_with_no_train_artifact_trains_first_in_one_line(tiny_dataset, tmp_path):
    common = ["--dataset", str(tiny_dataset), "--workdir", str(tmp_path / "runs")]
    assert runner.invoke(app, ["build-graph", *common, "--quiet"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", *common, "--k", "5"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "no train artifact for dataset 'tiny' yet, so `recgoat evaluate` runs `recgoat train` with its defaults first"
    ]
    assert "recall" in result.stdout
