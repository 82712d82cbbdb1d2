"""Atomic writes: the target holds the old or the new version, never half of one, and no temp files remain."""

from __future__ import annotations

import os
import stat

import pytest

from patchpose import atomic
from patchpose.atomic import atomic_directory, atomic_write_bytes, atomic_write_text


def _names(directory) -> list[str]:
    return sorted(os.listdir(directory))


def test_write_bytes_and_text_create_and_replace(tmp_path):
    target = tmp_path / "out.bin"
    assert atomic_write_bytes(target, b"\x00first") == target
    assert target.read_bytes() == b"\x00first"
    atomic_write_text(target, "zweite Fassung \u2713")
    assert target.read_text(encoding="utf-8") == "zweite Fassung \u2713"
    assert _names(tmp_path) == ["out.bin"]


def test_written_file_has_ordinary_permissions(tmp_path):
    ordinary = tmp_path / "ordinary"
    ordinary.write_bytes(b"")
    atomic_write_bytes(tmp_path / "atomic", b"x")
    mode = stat.S_IMODE
    assert mode((tmp_path / "atomic").stat().st_mode) == mode(ordinary.stat().st_mode)


def test_failed_replace_keeps_old_content_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "keep.txt"
    target.write_text("old")

    def broken_replace(source, destination):
        raise OSError("disk on fire")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert _names(tmp_path) == ["keep.txt"]


def test_write_rejects_bad_input_with_the_path(tmp_path):
    with pytest.raises(TypeError, match="x.txt.*bytes"):
        atomic_write_bytes(tmp_path / "x.txt", "not bytes")
    with pytest.raises(TypeError, match="x.txt.*str"):
        atomic_write_text(tmp_path / "x.txt", b"not str")
    with pytest.raises(FileNotFoundError, match="missing"):
        atomic_write_text(tmp_path / "missing" / "x.txt", "text")
    assert _names(tmp_path) == []


def test_directory_appears_only_on_clean_exit(tmp_path):
    target = tmp_path / "store.zarr"
    with atomic_directory(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(f"store.zarr.tmp-{os.getpid()}-")
        (temporary / "sub").mkdir()
        (temporary / "sub" / "data").write_text("payload")
        assert not target.exists()
    assert (target / "sub" / "data").read_text() == "payload"
    assert _names(tmp_path) == ["store.zarr"]


def test_exception_inside_leaves_no_target_and_no_temp(tmp_path):
    target = tmp_path / "store.zarr"
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_directory(target) as temporary:
            (temporary / "partial").write_text("half")
            raise RuntimeError("half way")
    assert _names(tmp_path) == []


def test_exception_inside_keeps_existing_target(tmp_path):
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(KeyError):
        with atomic_directory(target) as temporary:
            (temporary / "new").write_text("new")
            raise KeyError("boom")
    assert _names(target) == ["old"]
    assert _names(tmp_path) == ["store.zarr"]


@pytest.mark.parametrize("durable", [True, False])
def test_replaces_existing_directory(tmp_path, durable):
    target = tmp_path / "store.zarr"
    (target / "deep").mkdir(parents=True)
    (target / "deep" / "old").write_text("old")
    with atomic_directory(target, durable=durable) as temporary:
        (temporary / "new").write_text("new")
    assert _names(target) == ["new"]
    assert _names(tmp_path) == ["store.zarr"]


def test_replaces_existing_file(tmp_path):
    target = tmp_path / "store.zarr"
    target.write_text("a stray file")
    with atomic_directory(target) as temporary:
        (temporary / "new").write_text("new")
    assert target.is_dir() and _names(target) == ["new"]
    assert _names(tmp_path) == ["store.zarr"]


def test_failed_publish_restores_the_old_directory(tmp_path, monkeypatch):
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("old")
    real_rename = os.rename

    def rename_failing_on_publish(source, destination):
        if ".tmp-" in os.fspath(source):
            raise OSError("rename refused")
        return real_rename(source, destination)

    monkeypatch.setattr(atomic.os, "rename", rename_failing_on_publish)
    with pytest.raises(OSError, match="rename refused"):
        with atomic_directory(target) as temporary:
            (temporary / "new").write_text("new")
    assert _names(target) == ["old"]
    assert _names(tmp_path) == ["store.zarr"]


def test_directory_needs_an_existing_parent(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        with atomic_directory(tmp_path / "nowhere" / "store.zarr"):
            pass
    assert _names(tmp_path) == []
