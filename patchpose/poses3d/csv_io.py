"""The CSV container of the 3D prediction format: one row per frame.

Layout (UTF-8, comma-separated)::

    # format_version: 1
    # unit: mm
    # split: test
    # method: mymethod
    frame_id,pelvis_x,pelvis_y,pelvis_z,right_hip_x,right_hip_y,right_hip_z,...
    S9/Walking/1/54138969/000000,0.0,0.0,0.0,-131.2,4.1,20.7,...

Optional ``# key: value`` lines first (keys ``format_version``, ``unit``, ``split``, ``method``), then a header
naming ``frame_id`` and, for each of the 17 joints in the file's order, ``<joint>_x``, ``<joint>_y``,
``<joint>_z`` next to each other (so the header declares the joint order; any known alias works as
``<joint>``), then one row per frame.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from patchpose.atomic import atomic_write_text
from patchpose.poses3d.errors import PredictionFileError
from patchpose.poses3d.format import Predictions, check_structure

__all__ = ["read_csv", "read_csv_fields", "write_csv"]

_META_KEYS = ("format_version", "unit", "split", "method")


def _metadata(path, lines: list[str]) -> dict:
    meta: dict = {}
    for number, line in enumerate(lines, start=1):
        key, colon, value = line.lstrip("#").partition(":")
        key, value = key.strip(), value.strip()
        if not colon or key not in _META_KEYS:
            raise PredictionFileError(
                path, f"line {number}: expected '# key: value' with key one of {', '.join(_META_KEYS)}, got {line!r}"
            )
        if key == "format_version":
            try:
                value = int(value)
            except ValueError:
                raise PredictionFileError(
                    path, f"line {number}: format_version must be an integer, got {value!r}"
                ) from None
        meta[key] = value
    return meta


def _joint_names(path, header: list[str]) -> list[str]:
    if not header or header[0] != "frame_id":
        raise PredictionFileError(path, f"the header must start with 'frame_id', got {header[:1]}")
    columns = header[1:]
    if len(columns) % 3:
        raise PredictionFileError(path, f"the header has {len(columns)} coordinate columns, not 3 per joint")
    names = []
    for start in range(0, len(columns), 3):
        triple = [column.rpartition("_") for column in columns[start : start + 3]]
        joint = triple[0][0]
        if [t[0] for t in triple] != [joint] * 3 or [t[2] for t in triple] != ["x", "y", "z"] or not joint:
            raise PredictionFileError(
                path, f"header columns {columns[start : start + 3]} are not '<joint>_x,<joint>_y,<joint>_z'"
            )
        names.append(joint)
    return names


def read_csv(path: str | os.PathLike) -> Predictions:
    """Read and structurally validate a CSV prediction file (file units and joint order, unchanged)."""
    return check_structure(path, **read_csv_fields(path))


def read_csv_fields(path: str | os.PathLike) -> dict:
    """The fields of a CSV prediction file as stored: ``check_structure``'s arguments after ``path``.

    ``PredictionFileError`` naming ``path`` (and the line) when the file cannot be parsed.
    """
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise PredictionFileError(path, "prediction file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PredictionFileError(path, f"not a readable UTF-8 CSV file: {error}") from None
    lines = text.splitlines()
    comments = 0
    while comments < len(lines) and lines[comments].startswith("#"):
        comments += 1
    meta = _metadata(path, lines[:comments])
    rows = list(csv.reader(lines[comments:]))
    if not rows:
        raise PredictionFileError(path, "no header line")
    names = _joint_names(path, rows[0])
    width = 1 + 3 * len(names)
    ids, values = [], []
    for number, row in enumerate(rows[1:], start=comments + 2):
        if len(row) != width:
            raise PredictionFileError(path, f"line {number}: {len(row)} fields, the header has {width}")
        ids.append(row[0])
        try:
            values.append([float(v) for v in row[1:]])
        except ValueError as error:
            raise PredictionFileError(path, f"line {number}: {error}") from None
    if not ids:
        raise PredictionFileError(path, "no frames after the header")
    poses = np.array(values, dtype=np.float64).reshape(len(ids), len(names), 3)
    return {"poses_3d": poses, "frame_ids": np.array(ids, dtype=str), "joint_names": np.array(names, dtype=str), **meta}


def write_csv(path: str | os.PathLike, predictions: Predictions) -> None:
    """Write ``predictions`` (every field present) as CSV, atomically; coordinates with 6 decimals."""
    buffer = io.StringIO()
    for key in _META_KEYS:
        buffer.write(f"# {key}: {getattr(predictions, key)}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["frame_id", *(f"{name}_{axis}" for name in predictions.joint_names for axis in "xyz")])
    flat = predictions.poses_3d.reshape(predictions.num_frames, -1)
    for frame, row in zip(predictions.frame_ids, flat, strict=True):
        writer.writerow([frame, *(f"{value:.6f}" for value in row)])
    atomic_write_text(path, buffer.getvalue())
