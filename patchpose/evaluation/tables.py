"""The per-action table of a prediction file, computed from its per-frame errors, and the one call that
evaluates a prediction file (``evaluate_prediction_file``, the ``evaluate_baseline`` rule's).

``mpjpe_per_action.csv`` has ``patchpose.metrics.TABLE_COLUMNS`` (action, frames, mpjpe_mm, pa_mpjpe_mm): one
row per action (the 15 Human3.6M actions in their canonical order, other labels after them by name), then
the two average rows of ``patchpose.metrics.per_action_table``: the mean of the action means and the mean
over frames. Errors in mm with 4 decimals.
"""

from __future__ import annotations

import csv
import io
import os

from patchpose.actions import ACTIONS
from patchpose.atomic import atomic_write_text
from patchpose.dataset_format import open_dataset
from patchpose.evaluation.frame_errors import FrameErrors, frame_errors_of_file, write_frame_errors
from patchpose.metrics import TABLE_COLUMNS, per_action_table

__all__ = ["action_order", "per_action_rows", "write_table", "evaluate_prediction_file"]


def action_order(actions) -> list[str]:
    """The actions present: canonical ones in ``ACTIONS`` order, then any others sorted by name."""
    present = set(map(str, actions))
    return [a for a in ACTIONS if a in present] + sorted(present - set(ACTIONS))


def per_action_rows(errors: FrameErrors) -> list[dict]:
    """Rows of ``per_action_table`` (mm) from a per-frame error table: per action, then the two averages."""
    return per_action_table(errors.mpjpe_mm, errors.pa_mpjpe_mm, errors.action, action_order(errors.action))


def write_table(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write ``per_action_table`` rows as CSV atomically, errors with 4 decimals (mm)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "mpjpe_mm": f"{row['mpjpe_mm']:.4f}", "pa_mpjpe_mm": f"{row['pa_mpjpe_mm']:.4f}"})
    atomic_write_text(path, buffer.getvalue())


def evaluate_prediction_file(
    predictions: str | os.PathLike,
    store: str | os.PathLike,
    *,
    table: str | os.PathLike | None = None,
    frame_errors: str | os.PathLike | None = None,
) -> list[dict]:
    """Evaluate a prediction file (any valid one) against the dataset ``store`` of its split.

    Reads and validates the file like every consumer does (``load_for_store``: the ids must cover the
    store exactly), computes the per-frame errors and from them the per-action rows; then writes the
    per-frame table to ``frame_errors`` and the CSV to ``table`` if given (both atomic, and only once
    everything is computed). Returns the rows.
    """
    errors = frame_errors_of_file(predictions, open_dataset(store))
    rows = per_action_rows(errors)
    if frame_errors is not None:
        write_frame_errors(frame_errors, errors)
    if table is not None:
        write_table(table, rows)
    return rows
