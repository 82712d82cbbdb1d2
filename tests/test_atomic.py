"""Atomic writes: the target holds the old or the new version, never half of one, and no temp files remain."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys

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
        assert temporary.parent == tmp_path and temporary.name.startswith(
            f"store.zarr.tmp-{os.getpid()}@{atomic._host()}-"
        )
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


# --- what a killed writer leaves: removed by the next write of the same target, and only that ---------------


def _dead_pid() -> int:
    """The pid of a process that has run and ended on this host."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _leftovers(directory, pid: int) -> dict[str, str]:
    """Siblings a killed writer could leave (and some that only look alike); name -> what it is."""
    host = atomic._host()
    names = {
        f"store.zarr.tmp-{pid}@{host}-0123abcd": "stale tree",
        f"store.zarr.old-{pid}@{host}-89abcdef": "stale previous version",
        f"out.npz.tmp-{pid}@{host}-a1b2c3d4": "stale file",
        f"store.zarr.tmp-{pid}@another-node.cluster-0123abcd": "another host's",
        f"store.zarr.tmp-{os.getppid()}@{host}-0123abcd": "a live process's",
        f"store.zarr.tmp-{os.getpid()}@{host}-0123abcd": "this process's",
        f"other.zarr.tmp-{pid}@{host}-0123abcd": "another target's",
        f"store.zarr.tmp-{pid}@{host}-0123abcd.bak": "not a sibling's name",
        f"store.zarr.tmp-{pid}-0123abcd": "no host in the name",
    }
    for name, what in names.items():
        if name.startswith("out.npz"):
            (directory / name).write_bytes(b"half")
        else:
            (directory / name / "c").mkdir(parents=True)
            (directory / name / "c" / "0").write_text(what)
    return names


def test_the_next_write_of_a_target_removes_what_a_killed_writer_of_it_left_on_this_host(tmp_path, caplog):
    pid = _dead_pid()
    names = _leftovers(tmp_path, pid)
    caplog.set_level(logging.WARNING, logger="patchpose.atomic")
    with atomic_directory(tmp_path / "store.zarr") as temporary:
        (temporary / "new").write_text("new")
    removed = {name for name, what in names.items() if what.startswith("stale") and name.startswith("store.zarr")}
    assert len(removed) == 2 and set(_names(tmp_path)) == (set(names) - removed) | {"store.zarr"}
    assert all(f"a leftover of process {pid} on this host" in caplog.text and name in caplog.text for name in removed)
    atomic_write_bytes(tmp_path / "out.npz", b"whole")
    assert set(_names(tmp_path)) == (set(names) - removed - {f"out.npz.tmp-{pid}@{atomic._host()}-a1b2c3d4"}) | {
        "store.zarr",
        "out.npz",
    }
    assert (tmp_path / "out.npz").read_bytes() == b"whole" and (tmp_path / "store.zarr" / "new").read_text() == "new"


def test_a_leftover_that_cannot_be_removed_is_named_and_the_write_goes_on(tmp_path, caplog, monkeypatch):
    pid = _dead_pid()
    stale = tmp_path / f"out.npz.tmp-{pid}@{atomic._host()}-a1b2c3d4"
    stale.write_bytes(b"half")

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(atomic, "_remove", refuse)
    caplog.set_level(logging.WARNING, logger="patchpose.atomic")
    atomic_write_bytes(tmp_path / "out.npz", b"whole")
    assert (tmp_path / "out.npz").read_bytes() == b"whole" and stale.read_bytes() == b"half"
    assert f"{stale}: a leftover of process {pid}, which no longer runs, cannot be removed (Permission denied)" in (
        caplog.text
    )


def test_a_sibling_name_carries_pid_and_host_and_a_bad_kind_is_refused(tmp_path):
    name = atomic.temporary_sibling_name(tmp_path / "a.zarr", kind="old").name
    assert name.startswith(f"a.zarr.old-{os.getpid()}@{atomic._host()}-") and len(name.rsplit("-", 1)[1]) == 8
    assert "/" not in atomic._host() and "@" not in atomic._host()
    with pytest.raises(ValueError, match=r"a.zarr: a temporary sibling is one of \('tmp', 'old'\), not 'new'"):
        atomic.temporary_sibling_name(tmp_path / "a.zarr", kind="new")
