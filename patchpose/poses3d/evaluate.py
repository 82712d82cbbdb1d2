"""Per-action MPJPE (protocol 1, root-aligned) and PA-MPJPE (protocol 2) of 3D predictions, as CSV.

The CSV has ``patchpose.metrics.TABLE_COLUMNS`` (action, frames, mpjpe_mm, pa_mpjpe_mm): one row per action
(the 15 Human3.6M actions in their canonical order, other labels after them by name), then the two
average rows of ``patchpose.metrics.per_action_table``.
"""

from __future__ import annotations

import csv
import io
import os

from patchpose.actions import ACTIONS
from patchpose.atomic import atomic_write_text
from patchpose.dataset_format import DatasetStore, open_dataset
from patchpose.metrics import TABLE_COLUMNS, per_action_table, per_frame_mpjpe, per_frame_pa_mpjpe
from patchpose.poses3d.loading import load_for_store

__all__ = ["action_order", "per_action_rows", "evaluate_prediction_file", "write_table"]


def action_order(actions) -> list[str]:
    """The actions present: canonical ones in ``ACTIONS`` order, then any others sorted by name."""
    present = set(map(str, actions))
    return [a for a in ACTIONS if a in present] + sorted(present - set(ACTIONS))


def per_action_rows(poses_mm, store: DatasetStore) -> list[dict]:
    """Rows of ``per_action_table`` for poses (N, 17, 3) mm, camera frame, ``H36M`` order, in ``store``'s rows.

    The poses may be absolute or root-relative (protocol 1 subtracts the root of both).
    """
    truth = store.joints_3d
    actions = store.action_names()
    return per_action_table(
        per_frame_mpjpe(poses_mm, truth), per_frame_pa_mpjpe(poses_mm, truth), actions, action_order(actions)
    )


def write_table(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write ``per_action_table`` rows as CSV atomically, errors with 4 decimals (mm)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "mpjpe_mm": f"{row['mpjpe_mm']:.4f}", "pa_mpjpe_mm": f"{row['pa_mpjpe_mm']:.4f}"})
    atomic_write_text(path, buffer.getvalue())


def evaluate_prediction_file(
    predictions: str | os.PathLike, store: str | os.PathLike, output: str | os.PathLike | None = None
) -> list[dict]:
    """Per-action errors of a test-split prediction file (any valid one) against the test ``store``.

    Reads and validates the file like an import does (so the ids must cover the store exactly), writes
    the CSV to ``output`` if given, returns the rows.
    """
    opened = open_dataset(store)
    rows = per_action_rows(load_for_store(predictions, opened), opened)
    if output is not None:
        write_table(output, rows)
    return rows
