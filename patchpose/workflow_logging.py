"""Logging for Snakemake scripts: everything a stage logs goes to the rule's ``log:`` file."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

__all__ = ["log_to_file"]


@contextlib.contextmanager
def log_to_file(path: str | Path, level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Send the ``patchpose`` loggers (and any traceback) to ``path``; errors also reach stderr."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("patchpose")
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield logger
    except BaseException as error:
        logger.error("stage failed: %s\n%s", error, traceback.format_exc())
        print(f"patchpose: {error} (details in {path})", file=sys.stderr)
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
