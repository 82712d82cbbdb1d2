"""Atomic file and directory writes: a reader sees the old version or the new one, never half of either.

Every helper writes into a temporary sibling of the target (same directory, so
the same file system, so ``os.replace`` / ``os.rename`` is atomic), flushes it
to disk, and only then renames it into place. The temporary names contain
``.tmp-<pid>-<random>`` so a crashed run's leftovers are easy to recognise and
never collide with another process writing the same target.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_directory", "temporary_sibling_name"]


def temporary_sibling_name(path: str | os.PathLike, kind: str = "tmp") -> Path:
    """``<parent>/<name>.<kind>-<pid>-<random hex>``: a fresh, unlikely-to-collide sibling of ``path``."""
    target = Path(path)
    if not target.name:
        raise ValueError(f"{os.fspath(path)!r}: an atomic write needs a target with a file name")
    return target.with_name(f"{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, ``os.replace``).

    The parent directory must exist. The file gets the default permissions
    (0o666 masked by the umask), as a plain ``open(path, "wb")`` would.
    Returns the target path. On any error the temp file is removed and the
    previous content of ``path`` (if any) is untouched.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{os.fspath(path)}: atomic_write_bytes needs bytes, got {type(data).__name__}")
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{target}: parent directory {target.parent} does not exist")
    temporary = temporary_sibling_name(target)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically, encoded with ``encoding`` (UTF-8 by default)."""
    if not isinstance(text, str):
        raise TypeError(f"{os.fspath(path)}: atomic_write_text needs str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding))


def _fsync_tree(root: Path) -> None:
    """fsync every file, then every directory, under ``root`` (deepest first), so the rename publishes data."""
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

    Yields a fresh, empty temporary sibling ``<name>.tmp-<pid>-<random>`` to
    fill. On a clean exit it is renamed to ``path``; anything already at
    ``path`` is first renamed aside (``<name>.old-...``) and deleted after the
    swap, so ``path`` never holds a half-written tree (at worst, for an instant,
    nothing). On an exception the temporary directory is deleted and the
    exception re-raised; ``path`` is left as it was.

    durable: fsync every file and directory of the new tree before the rename,
    so a crash cannot publish a tree whose files were never flushed.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"{target}: parent directory {target.parent} does not exist")
    temporary = temporary_sibling_name(target)
    os.mkdir(temporary, 0o777)
    try:
        yield temporary
        if not temporary.is_dir():
            raise FileNotFoundError(f"{target}: the temporary directory {temporary} vanished before it was published")
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
