"""Metric tables as CSV: one dict per row, fixed columns, floats with 4 decimals, written atomically."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from patchpose.atomic import atomic_write_text

__all__ = ["write_csv_rows"]


def write_csv_rows(path: str | Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    """Write ``rows`` (dicts keyed by ``columns``; a missing or extra key is an error) to ``path``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())
