"""artifacts/store.py ``publish_folder``: a folder outside the store (``recgoat prepare``'s output) appears whole or not at all."""

from __future__ import annotations

import pytest

from recgoat_cli.artifacts.store import publish_folder


def _hidden(parent) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_the_folder_appears_only_when_the_block_finishes(tmp_path):
    final = tmp_path / "deep" / "out"
    with publish_folder(final, replace=False) as tmp:
        (tmp / "a.txt").write_text("a")
        assert not final.exists() and tmp.parent == final.parent and tmp.name.startswith(".tmp-out-")
    assert (final / "a.txt").read_text() == "a"
    assert _hidden(final.parent) == []


def test_an_error_leaves_no_folder_and_keeps_an_existing_one(tmp_path):
    final = tmp_path / "out"
    with pytest.raises(RuntimeError), publish_folder(final, replace=False) as tmp:
        (tmp / "a.txt").write_text("a")
        raise RuntimeError("stop")
    assert not final.exists() and _hidden(tmp_path) == []

    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt), publish_folder(final, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
        raise KeyboardInterrupt
    assert [p.name for p in final.iterdir()] == ["old.txt"] and _hidden(tmp_path) == []


def test_an_existing_folder_is_replaced_only_when_asked(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(FileExistsError), publish_folder(final, replace=False) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in final.iterdir()] == ["old.txt"] and _hidden(tmp_path) == []

    with publish_folder(final, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in final.iterdir()] == ["new.txt"] and _hidden(tmp_path) == []
