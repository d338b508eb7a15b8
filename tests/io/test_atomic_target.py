"""lstmviz.io.atomic.atomic_target: writers that want a file name still replace atomically."""

from __future__ import annotations

import os

import pytest

from lstmviz.io.atomic import atomic_target


def test_replaces_on_success_keeps_suffix(tmp_path):
    p = tmp_path / "shot.png"
    p.write_bytes(b"old")
    with atomic_target(p) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp != p
        tmp.write_bytes(b"new")
        assert p.read_bytes() == b"old"  # not replaced before the block ends
    assert p.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["shot.png"]


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "model.keras"
    p.write_bytes(b"old")

    def write_and_die():
        with atomic_target(p) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")

    with pytest.raises(RuntimeError):
        write_and_die()
    assert p.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]
