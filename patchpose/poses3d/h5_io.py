"""The HDF5 container of the 3D prediction format.

Datasets ``poses_3d`` (N, 17, 3) float, ``frame_ids`` (N,) and ``joint_names`` (17,) strings (variable-length
UTF-8 or fixed-length bytes); root-group attributes ``unit``, ``split``, ``method`` (strings) and
``format_version`` (integer). Only ``poses_3d`` and ``frame_ids`` are required.
"""

from __future__ import annotations

import io
import os

import h5py
import numpy as np

from patchpose.atomic import atomic_write_bytes
from patchpose.poses3d.errors import PredictionFileError
from patchpose.poses3d.format import Predictions, check_structure

__all__ = ["read_h5", "read_h5_fields", "write_h5"]


def _strings(path, name: str, dataset) -> np.ndarray:
    if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind not in "SOU":
        raise PredictionFileError(path, f"{name} must be a dataset of strings")
    values = dataset[()]
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)], dtype=str)


def _attr_string(path, name: str, value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise PredictionFileError(path, f"attribute {name} must be a string, got {value!r}")


def read_h5(path: str | os.PathLike) -> Predictions:
    """Read and structurally validate an HDF5 prediction file (file units and joint order, unchanged)."""
    return check_structure(path, **read_h5_fields(path))


def read_h5_fields(path: str | os.PathLike) -> dict:
    """The fields of an HDF5 prediction file as stored: ``check_structure``'s arguments after ``path``.

    ``PredictionFileError`` naming ``path`` when the file cannot be read or lacks a required dataset.
    """
    if not os.path.exists(path):
        raise PredictionFileError(path, "prediction file not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise PredictionFileError(path, f"not a readable HDF5 file: {error}") from None
    with handle:
        missing = [key for key in ("poses_3d", "frame_ids") if key not in handle]
        if missing:
            raise PredictionFileError(
                path, f"missing dataset(s) {', '.join(missing)}; the file holds: {', '.join(handle)}"
            )
        poses = handle["poses_3d"][()]
        ids = _strings(path, "frame_ids", handle["frame_ids"])
        names = _strings(path, "joint_names", handle["joint_names"]) if "joint_names" in handle else None
        attrs = dict(handle.attrs)
    meta = {key: _attr_string(path, key, attrs[key]) for key in ("unit", "split", "method") if key in attrs}
    version = attrs.get("format_version")
    if version is not None:
        if not isinstance(version, int | np.integer):
            raise PredictionFileError(path, f"attribute format_version must be an integer, got {version!r}")
        version = int(version)
    return {"poses_3d": poses, "frame_ids": ids, "joint_names": names, "format_version": version, **meta}


def write_h5(path: str | os.PathLike, predictions: Predictions) -> None:
    """Write ``predictions`` (every field present) as HDF5, atomically; poses stored as float32."""
    buffer = io.BytesIO()
    strings = h5py.string_dtype("utf-8")
    with h5py.File(buffer, "w") as handle:
        handle.create_dataset("poses_3d", data=predictions.poses_3d.astype(np.float32))
        handle.create_dataset("frame_ids", data=list(predictions.frame_ids), dtype=strings)
        handle.create_dataset("joint_names", data=list(predictions.joint_names), dtype=strings)
        for key in ("unit", "split", "method"):
            handle.attrs[key] = getattr(predictions, key)
        handle.attrs["format_version"] = int(predictions.format_version)
    atomic_write_bytes(path, buffer.getvalue())
