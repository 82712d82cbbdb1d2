"""Atomic file and directory writes: a reader sees the old version or the new one, never half of either.

Every helper writes into a temporary sibling of the target (same directory, so
the same file system, so ``os.replace`` / ``os.rename`` is atomic), flushes it
to disk, and only then renames it into place. The temporary names contain
``.tmp-<pid>@<host>-<random>`` so a crashed run's leftovers are easy to recognise and
never collide with another process writing the same target.

A killed writer (SIGKILL, an out-of-memory kill) leaves its temporary sibling behind; a Human3.6M patch
store can be tens of gigabytes. The next write of the same target removes it, but only when the name
says it was left by a process of this host that is no longer running: a sibling of another host (a
cluster node still writing after its workflow was killed) or of a live process is left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import secrets
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from patchpose.provenance import seal_zarr_directory

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_directory",
    "remove_stale_siblings",
    "temporary_sibling_name",
]

log = logging.getLogger(__name__)

SIBLING_KINDS = ("tmp", "old")  # a tree or file being written; a previous version being swapped out


def _host() -> str:
    """This machine's name as it goes into a sibling's name: no path separator, no ``@``, at most 64 characters."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname() or "localhost")[:64]


def temporary_sibling_name(path: str | os.PathLike, kind: str = "tmp") -> Path:
    """``<parent>/<name>.<kind>-<pid>@<host>-<random hex>``: a fresh, unlikely-to-collide sibling of ``path``."""
    target = Path(path)
    if not target.name:
        raise ValueError(f"{os.fspath(path)!r}: an atomic write needs a target with a file name")
    if kind not in SIBLING_KINDS:
        raise ValueError(f"{target}: a temporary sibling is one of {SIBLING_KINDS}, not {kind!r}")
    return target.with_name(f"{target.name}.{kind}-{os.getpid()}@{_host()}-{secrets.token_hex(4)}")


def _running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host; another user's process counts (it may be writing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_siblings(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings of ``path`` that a process of this host left and no longer writes.

    A sibling is stale when its name is ``<name>.tmp-<pid>@<host>-<8 hex>`` (or ``.old-``), ``<host>`` is
    this host and no process ``<pid>`` runs here. Everything else stays: another host's sibling (its writer
    may still be running there), a live process's, this process's own, any other name. Best effort: a
    sibling that cannot be removed is named in a warning and left. Returns the removed paths.
    """
    target = Path(path)
    kinds = "|".join(SIBLING_KINDS)
    pattern = re.compile(re.escape(target.name) + rf"\.(?:{kinds})-(\d+)@(.+)-[0-9a-f]{{8}}")
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    host = _host()
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or match.group(2) != host:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _running(pid):
            continue
        stale = Path(entry.path)
        try:
            _remove(stale)
        except OSError as error:
            log.warning("%s: a leftover of process %d, which no longer runs, cannot be removed (%s)", stale, pid,
                        error.strerror or error)  # fmt: skip
            continue
        log.warning("%s: removed, a leftover of process %d on this host, which no longer runs", stale, pid)
        removed.append(stale)
    return removed


def _fsync_directory(directory: Path) -> None:
    """Flush a directory entry table (the effect of a rename) to disk; best effort where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _naming(target: Path, error: OSError) -> OSError:
    """``error`` (a full disk, a read-only file system, ...) re-addressed to ``target``, the file the caller
    knows, rather than the temporary sibling the system call saw; an error without an errno as it is."""
    if error.errno is None:
        return error
    return type(error)(error.errno, f"cannot write ({error.strerror})", os.fspath(target))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, ``os.replace``).

    The parent directory must exist. The file gets the default permissions
    (0o666 masked by the umask), as a plain ``open(path, "wb")`` would.
    Returns the target path. On any error the temp file is removed and the
    previous content of ``path`` (if any) is untouched. A killed writer's stale
    temp file of ``path`` is removed first (``remove_stale_siblings``).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{os.fspath(path)}: atomic_write_bytes needs bytes, got {type(data).__name__}")
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{target}: parent directory {target.parent} does not exist")
    remove_stale_siblings(target)
    temporary = temporary_sibling_name(target)
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as error:
        raise _naming(target, error) from error
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _naming(target, error) from error
        raise
    _fsync_directory(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically, encoded with ``encoding`` (UTF-8 by default)."""
    if not isinstance(text, str):
        raise TypeError(f"{os.fspath(path)}: atomic_write_text needs str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding))


def _load_syncfs():
    """libc's ``syncfs(2)`` (Linux), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _load_syncfs()


def _sync_file_system(root: Path) -> bool:
    """Flush the file system holding ``root`` with one ``syncfs(2)``; False (nothing done) where unavailable.

    Linux's syncfs returns once every dirty page and all metadata of that file system are on disk, the
    guarantee of an fsync of every file and directory under ``root`` (syncfs(2), NOTES), for one call
    rather than one journal commit per file (a store holds one chunk file per frame).
    """
    if _SYNCFS is None:
        return False
    fd = os.open(root, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"{root}: syncfs failed: {os.strerror(error)}")
    finally:
        os.close(fd)
    return True


def _fsync_tree(root: Path) -> None:
    """Put every file and directory under ``root`` on disk, so the rename publishes data: one syncfs of
    its file system where the platform has one, else an fsync of every file, then every directory (deepest
    first)."""
    if _sync_file_system(root):
        return
    for directory, _subdirectories, files in os.walk(root, topdown=False):
        for name in files:
            file_path = os.path.join(directory, name)
            if os.path.islink(file_path):
                continue
            fd = os.open(file_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_directory(Path(directory))


def _remove(path: Path) -> None:
    """Remove a file, link or directory tree at ``path``; nothing if absent."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """Build a directory at ``path`` atomically.

    Yields a fresh, empty temporary sibling ``<name>.tmp-<pid>@<host>-<random>`` to
    fill, after removing the stale ones a killed writer left (``remove_stale_siblings``).
    On a clean exit it is renamed to ``path``; anything already at
    ``path`` is first renamed aside (``<name>.old-...``) and deleted after the
    swap, so ``path`` never holds a half-written tree (at worst, for an instant,
    nothing). On an exception the temporary directory is deleted and the
    exception re-raised; ``path`` is left as it was.

    durable: put every file and directory of the new tree on disk before the rename
    (``_fsync_tree``: one ``syncfs`` on Linux, else an fsync per file), so a crash
    cannot publish a tree whose files were never flushed.

    A tree with a root ``zarr.json`` (a zarr store) is sealed before it is published: its content digest
    is recorded in the root attributes (``patchpose.provenance.seal_zarr_directory``), the identity a
    training checkpoint is matched against.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{target}: parent directory {target.parent} does not exist")
    remove_stale_siblings(target)
    temporary = temporary_sibling_name(target)
    try:
        os.mkdir(temporary, 0o777)
    except OSError as error:
        raise _naming(target, error) from error
    try:
        yield temporary
        if not temporary.is_dir():
            raise FileNotFoundError(f"{target}: the temporary directory {temporary} vanished before it was published")
        seal_zarr_directory(temporary)
        if durable:
            _fsync_tree(temporary)
        old = None
        if target.exists() or target.is_symlink():
            old = temporary_sibling_name(target, kind="old")
            os.rename(target, old)
        try:
            os.rename(temporary, target)
        except BaseException:
            if old is not None:  # put the previous version back rather than leave nothing
                os.rename(old, target)
            raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            _remove(temporary)
        raise
    _fsync_directory(target.parent)
    if old is not None:
        _remove(old)
