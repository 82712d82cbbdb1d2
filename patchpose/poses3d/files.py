"""Read and write 3D prediction files in any supported container, chosen by ``format`` or the suffix.

``write_predictions`` is the one call every producer uses (the pipeline's own baselines included), so the
files the pipeline writes and the files users bring are the same format.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from patchpose.poses3d.csv_io import read_csv, read_csv_fields, write_csv
from patchpose.poses3d.errors import PredictionFileError
from patchpose.poses3d.format import FORMAT_VERSION, Predictions, check_frame_ids, check_structure
from patchpose.poses3d.h5_io import read_h5, read_h5_fields, write_h5
from patchpose.poses3d.npz_io import read_npz, read_npz_fields, write_npz
from patchpose.skeleton import H36M

__all__ = ["FORMATS", "SUFFIXES", "file_format", "read_prediction_fields", "read_predictions", "write_predictions"]

FORMATS = {"npz": (read_npz, write_npz), "h5": (read_h5, write_h5), "csv": (read_csv, write_csv)}
_FIELD_READERS = {"npz": read_npz_fields, "h5": read_h5_fields, "csv": read_csv_fields}
SUFFIXES = {".npz": "npz", ".h5": "h5", ".hdf5": "h5", ".csv": "csv"}


def file_format(path: str | os.PathLike, format: str = "auto") -> str:
    """``"npz"``, ``"h5"`` or ``"csv"``: ``format`` itself, or from the suffix when ``"auto"``."""
    if format != "auto":
        if format not in FORMATS:
            raise PredictionFileError(path, f"unknown format {format!r}; known: auto, {', '.join(FORMATS)}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise PredictionFileError(
            path, f"cannot tell the format from the suffix {suffix!r} ({', '.join(SUFFIXES)}); set format explicitly"
        )
    return SUFFIXES[suffix]


def read_predictions(path: str | os.PathLike, format: str = "auto") -> Predictions:
    """Read a prediction file as stored: shapes, values and metadata validated, units and order unchanged.

    To use the poses, pass the result through ``patchpose.poses3d.normalise.canonicalise`` (mm, ``H36M``
    order, root-relative) and ``patchpose.poses3d.matching.align_to_store`` (rows of a dataset store).
    """
    reader, _ = FORMATS[file_format(path, format)]
    return reader(path)


def read_prediction_fields(path: str | os.PathLike, format: str = "auto") -> dict:
    """A prediction file's fields as stored, not yet validated: ``check_structure``'s keyword arguments.

    For a check that lists every problem of a file (``patchpose.poses3d.importer.import_problems``) rather
    than stopping at the first; ``PredictionFileError`` naming ``path`` when the file cannot be read at all.
    """
    return _FIELD_READERS[file_format(path, format)](path)


def write_predictions(
    path: str | os.PathLike,
    poses_3d,
    frame_ids: Sequence[str],
    *,
    split: str,
    method: str,
    unit: str = "mm",
    joint_names: Sequence[str] = H36M.joint_names,
    format: str = "auto",
) -> Predictions:
    """Write one prediction file atomically (container by ``format`` or the suffix) and return its record.

    poses_3d: (N, 17, 3) camera frame, root-relative, in ``unit`` (``"mm"`` or ``"m"``), joints in the order
    of ``joint_names`` (default: ``H36M.joint_names``). frame_ids: N canonical dataset frame ids, unique.
    split: ``"train"``, ``"test"`` or ``"train+test"``; method: a label (e.g. the baseline's name).
    The pipeline's baselines call it with the defaults: mm, our joint order. Raises ``PredictionFileError``
    naming ``path`` for anything the format forbids (nothing is written then).
    """
    container = file_format(path, format)
    if not isinstance(split, str) or not isinstance(method, str) or not isinstance(unit, str):
        raise PredictionFileError(path, "split, method and unit must be strings")
    record = check_structure(
        path,
        poses_3d,
        [str(i) for i in frame_ids],
        [str(n) for n in joint_names],
        unit=unit,
        split=split,
        method=method,
        format_version=FORMAT_VERSION,
    )
    check_frame_ids(path, record.frame_ids)
    FORMATS[container][1](path, record)
    return record
