"""The dataset format's schema (fields, shapes, dtypes) and the checks every field must pass.

``patchpose.dataset_format`` writes and reads the store; this module says what
a valid field is, so the writer (per batch) and the reader (whole arrays) apply
the very same rules. Every error is a ``DatasetFormatError`` whose message
starts with the store path and names the field: ``"<path>: field 'joints_3d':
..."``. The rules are listed, with reasons, in docs/data_format.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from patchpose.parts import NUM_PARTS, PALETTE, PART_NAMES
from patchpose.skeleton import H36M

__all__ = [
    "DatasetFormatError",
    "FieldSpec",
    "FIELDS",
    "IMAGE_FIELDS",
    "OPTIONAL_FIELDS",
    "SPLITS",
    "UNITS",
    "BONE_LENGTH_RANGE_MM",
    "ROTATION_TOLERANCE",
    "expected_fields",
    "field_error",
    "check_name",
    "validate_field",
    "check_extra_attrs",
    "read_group_attrs",
    "check_attrs",
    "first_missing_chunk",
    "check_store_header",
    "check_array_layout",
]


class DatasetFormatError(ValueError):
    """A dataset store (or a batch written to one) breaks the format; the message names the store and field."""


@dataclass(frozen=True)
class FieldSpec:
    """One per-frame array: its trailing shape (``"H"``/``"W"`` stand for the crop size), dtype and meaning."""

    name: str
    trailing_shape: tuple[int | str, ...]
    dtype: np.dtype
    dimension_names: tuple[str, ...]
    meaning: str

    def shape(self, num_frames: int, frame_size: tuple[int, int]) -> tuple[int, ...]:
        """Full array shape for ``num_frames`` frames of ``frame_size = (H, W)`` px."""
        sizes = {"H": frame_size[0], "W": frame_size[1]}
        return (num_frames, *(sizes.get(d, d) for d in self.trailing_shape))

    @property
    def fill_value(self):
        """What zarr returns for an unwritten chunk, chosen so that such data fails validation."""
        if self.dtype.kind == "f":
            return float("nan")
        if self.name == "frames":
            return 0  # undetectable by value: guarded by the chunk-file check instead
        if self.dtype.kind == "u":
            return int(np.iinfo(self.dtype).max)  # part id 255 > 14
        return 0 if self.name in ("subaction", "image_size") else -1


def _spec(name, trailing, dtype, dims, meaning) -> FieldSpec:
    return FieldSpec(name, tuple(trailing), np.dtype(dtype), ("frame", *dims), meaning)


J = H36M.num_joints
FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        _spec("frames", ("H", "W", 3), np.uint8, ("y", "x", "rgb"), "RGB person-centred crop"),
        _spec("part_labels", ("H", "W"), np.uint8, ("y", "x"), "per-pixel part id, patchpose.parts.PART_NAMES"),
        _spec("joints_2d", (J, 2), np.float32, ("joint", "xy"), "crop px, x right, y down"),
        _spec("joints_3d", (J, 3), np.float32, ("joint", "xyz"), "camera frame, mm"),
        _spec("crop_affine", (2, 3), np.float64, ("row", "col"), "crop px [u, v, 1] -> original image px"),
        _spec("camera_intrinsics", (4,), np.float64, ("fx_fy_cx_cy",), "fx, fy, cx, cy in original image px"),
        _spec("camera_distortion", (5,), np.float64, ("k1_k2_k3_p1_p2",), "Human3.6M lens model"),
        _spec("camera_rotation", (3, 3), np.float64, ("row", "col"), "world -> camera rotation"),
        _spec("camera_centre", (3,), np.float64, ("xyz",), "camera centre, world frame, mm"),
        _spec("image_size", (2,), np.int32, ("width_height",), "original image width, height px"),
        _spec("subject", (), np.int16, (), "index into attrs['subjects']"),
        _spec("action", (), np.int16, (), "index into attrs['actions']"),
        _spec("subaction", (), np.int16, (), "1-based sequence index within (subject, action)"),
        _spec("camera_id", (), np.int64, (), "camera serial, e.g. 54138969"),
        _spec("frame_index", (), np.int32, (), "frame number in the source sequence"),
    )
}
IMAGE_FIELDS = ("frames", "part_labels")
OPTIONAL_FIELDS = ("part_labels",)
SPLITS = ("train", "test")
UNITS = {  # attrs['units']: what the numbers of each field measure
    "frames": "rgb_uint8",
    "joints_2d": "crop_px",
    "joints_3d": "mm",
    "crop_affine": "crop_px->image_px",
    "camera_intrinsics": "image_px",
    "camera_centre": "mm",
    "image_size": "image_px",
}
BONE_LENGTH_RANGE_MM = (20.0, 1000.0)
ROTATION_TOLERANCE = 1e-4


def expected_fields(has_part_labels: bool) -> tuple[str, ...]:
    """The per-frame fields a store holds, in table order."""
    return tuple(name for name in FIELDS if has_part_labels or name not in OPTIONAL_FIELDS)


def field_error(where: str | os.PathLike, name: str, problem: str) -> DatasetFormatError:
    """``"<where>: field '<name>': <problem>"``."""
    return DatasetFormatError(f"{os.fspath(where)}: field {name!r}: {problem}")


def check_name(where: str | os.PathLike, field: str, value) -> str:
    """A subject/action name: a non-empty str without '/' (ids are '/'-joined) or surrounding spaces."""
    if not isinstance(value, str) or not value or "/" in value or value != value.strip():
        raise field_error(where, field, f"names must be non-empty strings without '/' or edge spaces, got {value!r}")
    return value


def _first_bad_row(bad: np.ndarray, row_offset: int) -> int:
    """Absolute index of the first frame where the (B, ...) bool mask ``bad`` holds anywhere."""
    return row_offset + int(np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))[0])


def _coerce(where, spec: FieldSpec, value, shape: tuple[int, ...]) -> np.ndarray:
    """Shape check and a lossless cast to ``spec.dtype`` (ints must be ints and fit; floats from real numbers)."""
    array = np.asarray(value)
    if array.shape != shape:
        raise field_error(where, spec.name, f"expected shape {shape}, got {array.shape}")
    if spec.dtype.kind == "f":
        if array.dtype.kind not in "iuf":
            raise field_error(where, spec.name, f"expected real numbers ({spec.dtype}), got dtype {array.dtype}")
        return array.astype(spec.dtype, copy=False)
    if array.dtype.kind not in "iu":
        raise field_error(where, spec.name, f"expected integers ({spec.dtype}), got dtype {array.dtype}")
    if array.size and not np.can_cast(array.dtype, spec.dtype):
        limits = np.iinfo(spec.dtype)
        low, high = array.min(), array.max()
        if low < limits.min or high > limits.max:
            raise field_error(where, spec.name, f"values [{low}, {high}] do not fit {spec.dtype}")
    return array.astype(spec.dtype, copy=False)


def _require(where, name: str, bad: np.ndarray, row_offset: int, problem: str) -> None:
    if bad.any():
        raise field_error(where, name, f"{problem} (first at frame {_first_bad_row(bad, row_offset)})")


def _check_values(where, name: str, a: np.ndarray, frame_size, vocabulary_sizes: dict, row_offset: int) -> None:
    if a.dtype.kind == "f":
        _require(where, name, ~np.isfinite(a), row_offset, "holds NaN or inf")
    if name == "part_labels":
        _require(where, name, a >= NUM_PARTS, row_offset, f"part ids must lie in 0..{NUM_PARTS - 1}")
    elif name in vocabulary_sizes:
        size = vocabulary_sizes[name]
        _require(where, name, (a < 0) | (a >= size), row_offset, f"index out of vocabulary 0..{size - 1}")
    elif name == "subaction":
        _require(where, name, a < 1, row_offset, "subaction is 1-based, got a value < 1")
    elif name in ("camera_id", "frame_index"):
        _require(where, name, a < 0, row_offset, "must be >= 0")
    elif name == "image_size":
        _require(where, name, a < 1, row_offset, "width and height must be >= 1 px")
    elif name == "camera_intrinsics":
        _require(where, name, a[:, :2] <= 0, row_offset, "focal lengths fx, fy must be > 0 px")
    elif name == "crop_affine":
        determinant = np.linalg.det(a[:, :, :2])
        _require(where, name, ~(determinant > 0), row_offset, "2x2 part must be invertible and not mirror (det > 0)")
    elif name == "camera_rotation":
        product = a @ np.swapaxes(a, -1, -2)
        off = np.abs(product - np.eye(3)).max(axis=(1, 2)) > ROTATION_TOLERANCE
        _require(where, name, off, row_offset, f"rotation is not orthonormal (|R R^T - I| > {ROTATION_TOLERANCE})")
        _require(where, name, np.linalg.det(a) < 0, row_offset, "rotation has det -1 (a reflection)")
    elif name == "joints_2d":
        centre = np.median(a, axis=1)  # (B, 2) x, y
        height, width = frame_size
        outside = (centre < -0.5) | (centre > np.array([width, height]) - 0.5)
        _require(where, name, outside, row_offset, "median joint lies outside the crop; expected crop px, not image px")
    elif name == "joints_3d":
        _require(where, name, a[..., 2] <= 0, row_offset, "joint at or behind the camera (Z <= 0 mm)")
        bones = np.linalg.norm(a[:, H36M.limb_children] - a[:, H36M.limb_parents], axis=-1)
        median = float(np.median(bones))
        low, high = BONE_LENGTH_RANGE_MM
        if not low <= median <= high:
            hint = "looks like metres, not mm" if median < low else "too long for mm"
            raise field_error(where, name, f"median bone length {median:.4g} outside {low:g}..{high:g} mm: {hint}")


def validate_field(
    where: str | os.PathLike,
    name: str,
    value,
    *,
    num_frames: int,
    frame_size: tuple[int, int],
    vocabulary_sizes: dict[str, int],
    row_offset: int = 0,
    check_values: bool = True,
) -> np.ndarray:
    """Check one field of ``num_frames`` rows and return it cast to the format's dtype.

    where: store path for messages. value: array-like of shape
    ``FIELDS[name].shape(num_frames, frame_size)``. vocabulary_sizes:
    ``{"subject": len(subjects), "action": len(actions)}``. row_offset: the
    store row of ``value[0]`` (messages give absolute frame indices).
    check_values=False skips the value rules (shape and dtype only).
    """
    if name not in FIELDS:
        raise field_error(where, name, f"unknown field; the format has {', '.join(FIELDS)}")
    spec = FIELDS[name]
    array = _coerce(where, spec, value, spec.shape(num_frames, frame_size))
    if check_values and num_frames:
        _check_values(where, name, array, frame_size, vocabulary_sizes, row_offset)
    return array


def check_extra_attrs(where: str | os.PathLike, extra_attrs: dict | None, reserved) -> dict:
    """A writer's source-specific attrs: JSON-serialisable (no NaN) and not overriding a format attr."""
    extra_attrs = dict(extra_attrs or {})
    clash = sorted(set(reserved) & set(extra_attrs))
    if clash:
        raise DatasetFormatError(f"{os.fspath(where)}: extra_attrs may not set reserved attrs {clash}")
    try:
        json.dumps(extra_attrs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise DatasetFormatError(f"{os.fspath(where)}: extra_attrs are not JSON-serialisable: {error}") from None
    return extra_attrs


def read_group_attrs(path: Path) -> dict:
    """The attrs of the zarr v3 group at ``path``, read from its zarr.json; errors say what ``path`` is instead."""
    metadata_file = path / "zarr.json"
    if not path.is_dir():
        raise DatasetFormatError(f"{path}: missing store (no such directory)")
    if not metadata_file.is_file():
        kind = "a zarr v2 store" if (path / ".zgroup").exists() or (path / ".zarray").exists() else "no zarr.json"
        raise DatasetFormatError(f"{path}: not a zarr v3 group ({kind})")
    try:
        metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetFormatError(f"{path}: not a zarr v3 group (unreadable {metadata_file}: {error})") from None
    if not isinstance(metadata, dict) or metadata.get("zarr_format") != 3 or metadata.get("node_type") != "group":
        raise DatasetFormatError(f"{path}: not a zarr v3 group ({metadata_file} lacks zarr_format 3 / node_type group)")
    attrs = metadata.get("attributes", {})
    if not isinstance(attrs, dict):
        raise DatasetFormatError(f"{path}: group attributes in {metadata_file} are not a JSON object")
    return attrs


def _is_count(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1


HEADER_ATTRS = ("num_frames", "frame_size", "source", "split", "subjects", "actions")


def check_store_header(where, num_frames, frame_size, source, split, subjects, actions) -> None:
    """The store-wide values a writer is given and the attrs repeat: sizes, source, split, vocabularies."""
    where = os.fspath(where)
    if not _is_count(num_frames):
        raise DatasetFormatError(f"{where}: num_frames must be an integer >= 1, got {num_frames!r}")
    if not isinstance(frame_size, list | tuple) or len(frame_size) != 2 or not all(map(_is_count, frame_size)):
        raise DatasetFormatError(f"{where}: frame_size must be (H, W) positive integers, got {frame_size!r}")
    if not isinstance(source, str) or not source or split not in SPLITS:
        raise DatasetFormatError(f"{where}: need a non-empty source and a split in {SPLITS}, got {source!r}, {split!r}")
    for field, names in (("subjects", subjects), ("actions", actions)):
        if not isinstance(names, list | tuple) or not names or len(names) > np.iinfo(np.int16).max:
            raise DatasetFormatError(f"{where}: {field} must be a non-empty list of names, got {names!r}")
        for name in names:
            check_name(where, field, name)
        if len(set(names)) != len(names):
            raise DatasetFormatError(f"{where}: {field} must be unique, got {names!r}")


def check_attrs(path: Path, attrs: dict, *, format_version: int, has_part_labels: bool) -> None:
    """The group attrs of a finished store (``complete`` first: an unfinished store fails on that alone)."""

    def fail(problem: str):
        raise DatasetFormatError(f"{path}: {problem}")

    if attrs.get("complete") is not True:
        fail("incomplete or truncated store: attr 'complete' is missing or not true (writer crashed or still running)")
    if attrs.get("format_version") != format_version:
        fail(f"attr 'format_version' is {attrs.get('format_version')!r}; this code reads version {format_version}")
    missing = [key for key in (*HEADER_ATTRS, "joint_names", "units") if key not in attrs]
    if missing:
        fail(f"missing attrs {missing}")
    if attrs["joint_names"] != list(H36M.joint_names):
        fail(f"attr 'joint_names' is not the Human3.6M 17-joint order of patchpose.skeleton: {attrs['joint_names']}")
    if not isinstance(attrs["frame_size"], list):
        fail(f"attr 'frame_size' must be a list [H, W], got {attrs['frame_size']!r}")
    check_store_header(path, *(attrs[key] for key in HEADER_ATTRS))
    if attrs["units"] != UNITS:
        fail(f"attr 'units' is {attrs['units']!r}, expected {UNITS!r}")
    if has_part_labels and (attrs.get("part_names") != list(PART_NAMES) or attrs.get("palette") != PALETTE.tolist()):
        raise field_error(path, "part_labels", "attrs 'part_names'/'palette' missing or not those of patchpose.parts")


def check_array_layout(path: Path, name: str, array, *, num_frames: int, frame_size, verify_chunks: bool) -> None:
    """Shape, dtype and (optionally) chunk files of the stored zarr ``array`` of field ``name``."""
    spec = FIELDS[name]
    if array.shape[:1] != (num_frames,):
        raise field_error(path, name, f"inconsistent N: {array.shape[:1]} rows but attr num_frames={num_frames}")
    expected = spec.shape(num_frames, frame_size)
    if array.shape != expected or array.dtype != spec.dtype:
        raise field_error(path, name, f"expected {expected} {spec.dtype}, got {array.shape} {array.dtype}")
    chunk = first_missing_chunk(path, name, array) if verify_chunks else None
    if chunk is not None:
        raise field_error(path, name, f"missing chunk file {chunk} (truncated store)")


def first_missing_chunk(path: Path, name: str, array) -> Path | None:
    """The first chunk file of zarr ``array`` (field ``name`` under store ``path``) absent or empty, else None.

    zarr returns fill values for a missing chunk without complaint, so a
    truncated copy would read as black frames; one stat per chunk catches it.
    """
    for coords in np.ndindex(*array.cdata_shape):
        chunk = path / name / array.metadata.encode_chunk_key(coords)
        try:
            if chunk.stat().st_size > 0:
                continue
        except FileNotFoundError:
            pass
        return chunk
    return None
