"""No file recgoat reads is unpickled: every ``torch.load`` passes ``weights_only=True``, every ``np.load``
passes ``allow_pickle=False``, and nothing calls ``pickle.load``. The malicious pickles of the bad-input corpus
(tests/fixtures/bad/cases.toml, ``marker = true``) show the refusal at run time."""

from __future__ import annotations

import ast

import pytest

from conftest import REPO_ROOT  # tests/ is on sys.path under pytest

SOURCES = sorted((REPO_ROOT / "recgoat_cli").rglob("*.py"))


def calls(attribute: str):
    """(file, line, keywords) of every call whose function is spelt ``<something>.<attribute>``."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attribute:
                owner = ast.unparse(node.func.value)
                keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
                yield f"{path.relative_to(REPO_ROOT)}:{node.lineno}", owner, keywords


def test_torch_load_is_weights_only_everywhere():
    found = [(where, kw) for where, owner, kw in calls("load") if owner == "torch"]
    assert found, "expected the checkpoint and image-weight loaders"
    assert all(kw.get("weights_only") == "True" for _, kw in found), found


def test_numpy_load_refuses_pickles_everywhere():
    found = [(where, kw) for where, owner, kw in calls("load") if owner in ("np", "numpy")]
    assert found
    assert all(kw.get("allow_pickle") == "False" for _, kw in found), found


@pytest.mark.parametrize("attribute", ["load", "loads", "Unpickler"])
def test_nothing_unpickles(attribute):
    assert [where for where, owner, _ in calls(attribute) if owner in ("pickle", "cloudpickle", "dill", "joblib")] == []
