"""Shared test fixtures: paths to the shipped sample data and to ../shared/data (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO_ROOT / "sample_data"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def sample_data_dir() -> Path:
    return SAMPLE_DATA


def shared_dataset(name: str) -> Path:
    """Path to ``../shared/data/<name>``, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent: the shared real datasets exist only next to the developers' checkout")
    return path


def make_tiny_dataset(root: Path, n_users: int = 40, n_items: int = 30, seed: int = 0) -> Path:
    """A random dataset where each user has 6 items: 4 train, 1 valid, 1 test."""
    rng = np.random.default_rng(seed)
    folder = root / "tiny"
    folder.mkdir(parents=True)
    rows = ["userID\titemID\tx_label"]
    for u in range(n_users):
        others = np.setdiff1d(np.arange(n_items), [u % n_items])
        items = np.concatenate([[u % n_items], rng.choice(others, 5, replace=False)])  # every item id appears
        for pos, item in enumerate(items):
            rows.append(f"{u}\t{item}\t{0 if pos < 4 else pos - 3}")
    (folder / "tiny.inter").write_text("\n".join(rows) + "\n")
    return folder



@pytest.fixture()
def tiny_dataset(tmp_path) -> Path:
    """40 users x 30 items, 4 train + 1 valid + 1 test item per user, in ``tmp_path/data/tiny``."""
    return make_tiny_dataset(tmp_path / "data")
