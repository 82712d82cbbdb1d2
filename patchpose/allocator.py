"""Keep freed memory in the process: glibc's allocator settings for training on the CPU.

glibc's ``malloc`` serves a request above its mmap threshold (128 KiB at first, rising with what is freed to
at most 32 MiB) by a fresh ``mmap`` and gives it back to the kernel by ``munmap`` on ``free``. A training step
on the CPU allocates and frees the same large tensors every step (the updater's float input is 50 MB per batch
of 32 on the default), so each step maps them again, and the kernel zero-fills every page on its first touch.
``keep_freed_memory`` raises the mmap threshold and the trim threshold (the free memory at the top of the heap
that glibc returns to the kernel) to ``limit``, so such blocks come from the heap and stay there for the next
step. Results do not change (only where the bytes live); the process's resident memory stays near its
high-water mark instead of falling between steps. ``benchmarks/allocator.py`` measures the effect side by side.

It sets the mmap threshold first and the trim threshold only if that succeeded: a raised trim threshold alone
switches off glibc's rising mmap threshold and makes a training step slower. Processes forked afterwards
(loader workers) inherit the settings. Does nothing (returns False) where the C library is not glibc, and
when the environment variable ``PATCHPOSE_MALLOC`` is ``default`` (keep glibc's own behaviour).
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["keep_freed_memory", "OPT_OUT", "LIMIT"]

M_TRIM_THRESHOLD = -1  # <malloc.h>
M_MMAP_THRESHOLD = -3
LIMIT = 2**31 - 1  # the largest value mallopt's int takes: blocks up to 2 GiB come from the heap
OPT_OUT = "PATCHPOSE_MALLOC"

_applied: bool | None = None


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # not a GNU C library, or no confstr at all
        return False


def keep_freed_memory(limit: int = LIMIT) -> bool:
    """Raise glibc's mmap and trim thresholds to ``limit`` bytes for this process (once); True if set.

    False, and nothing changed, where the C library is not glibc or ``PATCHPOSE_MALLOC=default``."""
    global _applied
    if _applied is not None:
        return _applied
    if os.environ.get(OPT_OUT, "") == "default" or not _glibc():
        _applied = False
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        _applied = False
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, limit)) and bool(mallopt(M_TRIM_THRESHOLD, limit))
    return _applied
