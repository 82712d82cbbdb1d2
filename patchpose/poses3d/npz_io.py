"""The npz container of the 3D prediction format (the pipeline's own, canonical one).

Keys: ``poses_3d`` (N, 17, 3) float, ``frame_ids`` (N,) unicode strings, ``joint_names`` (17,) unicode
strings, and 0-d unicode ``unit``, ``split``, ``method`` plus 0-d integer ``format_version``. Read with
``allow_pickle=False``: strings must be stored as unicode arrays (``np.array(ids, dtype=str)``), never as
Python objects.
"""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np

from patchpose.atomic import atomic_write_bytes
from patchpose.poses3d.errors import PredictionFileError
from patchpose.poses3d.format import Predictions, check_structure

__all__ = ["read_npz", "read_npz_fields", "write_npz"]

_REQUIRED = ("poses_3d", "frame_ids")
_OPTIONAL_STRINGS = ("unit", "split", "method")


def _scalar_string(path, key: str, value: np.ndarray) -> str:
    if value.ndim != 0 or value.dtype.kind not in "US":
        raise PredictionFileError(path, f"{key} must be a single string, got dtype {value.dtype} shape {value.shape}")
    item = value.item()
    return item.decode("utf-8") if isinstance(item, bytes) else str(item)


def _strings(value: np.ndarray) -> np.ndarray:
    return np.char.decode(value, "utf-8") if value.dtype.kind == "S" else value


def _what_it_is(path) -> str:
    """What a file that is not a zip archive holds, from its first bytes, for the error message."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        return "an empty file (0 bytes)"
    if head.startswith(b"\x93NUMPY"):
        return "a single .npy array (numpy.save), not an npz archive of named arrays (numpy.savez)"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "an HDF5 file; name it .h5 or set the format to h5"
    if head.startswith(b"\x80"):
        return "a Python pickle, which is never loaded (it could run code)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"binary data that is no zip archive (numpy.savez writes one); it begins {head[:16]!r}"
    first = text.splitlines()[0] if text.strip() else repr(text[:20])
    return f"a text file (its first line: {first[:60]!r}); a CSV prediction file needs the suffix .csv"


def read_npz(path: str | os.PathLike) -> Predictions:
    """Read and structurally validate an npz prediction file (file units and joint order, unchanged)."""
    return check_structure(path, **read_npz_fields(path))


def read_npz_fields(path: str | os.PathLike) -> dict:
    """The fields of an npz prediction file as stored: ``check_structure``'s arguments after ``path``.

    ``PredictionFileError`` naming ``path`` when the file cannot be read or lacks a required key.
    """
    if os.path.isfile(path) and not zipfile.is_zipfile(path):  # else np.load takes it for a pickle or an .npy
        raise PredictionFileError(path, f"not an npz file: {_what_it_is(path)}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            content = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise PredictionFileError(path, "prediction file not found") from None
    except ValueError as error:  # object arrays need pickle
        raise PredictionFileError(
            path, f"cannot read without pickle ({error}); store strings as unicode arrays (dtype str)"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise PredictionFileError(path, f"not a readable npz file: {error}") from None
    missing = [key for key in _REQUIRED if key not in content]
    if missing:
        raise PredictionFileError(path, f"missing key(s) {', '.join(missing)}; the file holds: {', '.join(content)}")
    meta = {key: _scalar_string(path, key, content[key]) for key in _OPTIONAL_STRINGS if key in content}
    version = content.get("format_version")
    if version is not None:
        if version.ndim != 0 or version.dtype.kind not in "iu":
            raise PredictionFileError(
                path, f"format_version must be a single integer, got {version.dtype} {version.shape}"
            )
        version = int(version)
    names = content.get("joint_names")
    return {
        "poses_3d": content["poses_3d"],
        "frame_ids": _strings(content["frame_ids"]),
        "joint_names": None if names is None else _strings(names),
        "format_version": version,
        **meta,
    }


def write_npz(path: str | os.PathLike, predictions: Predictions) -> None:
    """Write ``predictions`` (every field present) as an npz, atomically; poses stored as float32."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        poses_3d=predictions.poses_3d.astype(np.float32),
        frame_ids=np.array(predictions.frame_ids, dtype=str),
        joint_names=np.array(predictions.joint_names, dtype=str),
        unit=np.array(predictions.unit, dtype=str),
        split=np.array(predictions.split, dtype=str),
        method=np.array(predictions.method, dtype=str),
        format_version=np.array(predictions.format_version, dtype=np.int64),
    )
    atomic_write_bytes(path, buffer.getvalue())
