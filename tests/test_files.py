"""Atomic replacement (``pruning_env.files``): the new contents or the old ones, never a part, and no leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from pruning_env.files import replacing, write_atomic


def test_write_atomic_creates_the_folder_and_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "records.jsonl"
    write_atomic(path, "first\n")
    write_atomic(path, "second\n")
    assert path.read_text() == "second\n"
    assert [p.name for p in path.parent.iterdir()] == ["records.jsonl"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="bad digest"), replacing(path) as temporary:
        assert temporary.parent == tmp_path and temporary.read_bytes() == b""
        temporary.write_bytes(b"half")
        raise ValueError("bad digest")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_the_new_file_has_the_permissions_of_a_plainly_created_one(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "atomic.txt"
    write_atomic(atomic, "x")
    assert atomic.stat().st_mode == plain.stat().st_mode
