"""Named, reproducible random streams.

Every stage derives its generators from the config's master seed and a few
names (stage, subject, action, ...), so the same config and seed give the same
numbers regardless of job order, process count or which other keys changed.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["stream"]


def _key(part: str | int) -> int:
    if isinstance(part, bool) or not isinstance(part, (str, int)):
        raise TypeError(f"stream keys are str or int, got {type(part).__name__}")
    if isinstance(part, int):
        if part < 0:
            raise ValueError(f"integer stream keys are >= 0, got {part}")
        return part
    return zlib.crc32(part.encode("utf-8"))


def stream(seed: int, *names: str | int) -> np.random.Generator:
    """A generator determined by ``seed`` and ``names`` only (stable across runs and Python versions)."""
    return np.random.default_rng(np.random.SeedSequence([_key(seed), *(_key(n) for n in names)]))
