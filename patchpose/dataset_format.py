"""The common dataset format: one zarr v3 group per (dataset, split), written atomically, read validated.

Every dataset source writes it with ``DatasetWriter`` and every later stage
reads it with ``open_dataset``. The field table, units, frames and rules are
specified in docs/data_format.md; the schema and checks live in
``patchpose.dataset_validation``.

Frame ids: ``"{subject}/{action}/{subaction}/{camera_id}/{frame_index:06d}"``
with subject and action as *names*, e.g. ``"S9/Walking/1/54138969/000123"``.
External prediction files are matched to frames on these strings.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from patchpose.atomic import atomic_directory
from patchpose.dataset_validation import (
    FIELDS,
    IMAGE_FIELDS,
    UNITS,
    DatasetFormatError,
    check_array_layout,
    check_attrs,
    check_extra_attrs,
    check_name,
    check_store_header,
    expected_fields,
    field_error,
    read_group_attrs,
    validate_field,
)
from patchpose.parts import PALETTE, PART_NAMES
from patchpose.skeleton import H36M

__all__ = [
    "FORMAT_VERSION",
    "UNITS",
    "DatasetFormatError",
    "DatasetWriter",
    "DatasetStore",
    "FrameId",
    "open_dataset",
    "frame_id",
    "parse_frame_id",
]

FORMAT_VERSION = 1
SMALL_CHUNK_ROWS = 4096
_RESERVED_ATTRS = frozenset(
    "format_version source split joint_names subjects actions units part_names palette frame_size num_frames "
    "complete".split()
)


class FrameId(NamedTuple):
    """The parts of a canonical frame id (subject and action are names)."""

    subject: str
    action: str
    subaction: int
    camera_id: int
    frame_index: int


def frame_id(subject: str, action: str, subaction: int, camera_id: int, frame_index: int) -> str:
    """Canonical id ``"{subject}/{action}/{subaction}/{camera_id}/{frame_index:06d}"``."""
    check_name("frame_id", "subject", subject)
    check_name("frame_id", "action", action)
    numbers = {"subaction": subaction, "camera_id": camera_id, "frame_index": frame_index}
    for name, value in numbers.items():
        if not isinstance(value, int | np.integer) or value < (1 if name == "subaction" else 0):
            raise ValueError(f"frame_id: {name} must be an integer >= {int(name == 'subaction')}, got {value!r}")
    return f"{subject}/{action}/{int(subaction)}/{int(camera_id)}/{int(frame_index):06d}"


def parse_frame_id(text: str) -> FrameId:
    """Inverse of ``frame_id``; ``ValueError`` unless ``text`` is exactly a canonical id."""
    parts = text.split("/") if isinstance(text, str) else []
    try:
        parsed = FrameId(parts[0], parts[1], *(int(part) for part in parts[2:]))
        canonical = frame_id(*parsed)
    except (ValueError, IndexError, TypeError):
        canonical = None
    if canonical != text:
        raise ValueError(f"not a canonical frame id 'subject/action/subaction/camera_id/frame_index': {text!r}")
    return parsed


class DatasetWriter:
    """Write one store in batches; it appears at ``path`` only when every row is written and valid.

    Use as a context manager; call ``write(start, batch)`` for consecutive or
    shuffled row ranges, each exactly once. ``batch`` maps every per-frame field
    (``part_labels`` only if ``has_part_labels``) to an array of the same
    leading length B. frame_size: (H, W) crop px. subjects/actions: the name
    vocabularies that the ``subject``/``action`` fields index.
    """

    def __init__(
        self, path, *, num_frames, frame_size, has_part_labels, source, split, subjects, actions, extra_attrs=None
    ):
        self.path = Path(path)
        check_store_header(self.path, num_frames, frame_size, source, split, subjects, actions)
        self.num_frames, self.frame_size = int(num_frames), (int(frame_size[0]), int(frame_size[1]))
        self.has_part_labels = bool(has_part_labels)
        self.fields = expected_fields(self.has_part_labels)
        self._field_context = {
            "frame_size": self.frame_size,
            "vocabulary_sizes": {"subject": len(subjects), "action": len(actions)},
        }
        self.attrs = {
            "format_version": FORMAT_VERSION,
            "source": source,
            "split": split,
            "joint_names": list(H36M.joint_names),
            "subjects": [str(name) for name in subjects],
            "actions": [str(name) for name in actions],
            "units": dict(UNITS),
            "frame_size": list(self.frame_size),
            "num_frames": self.num_frames,
        }
        if self.has_part_labels:
            self.attrs.update(part_names=list(PART_NAMES), palette=PALETTE.tolist())
        self.attrs.update(check_extra_attrs(self.path, extra_attrs, _RESERVED_ATTRS))
        self._written = np.zeros(self.num_frames, dtype=bool)
        self._stack: contextlib.ExitStack | None = None
        self._group: zarr.Group | None = None
        self._arrays: dict[str, zarr.Array] = {}
        self._entered = False

    def __enter__(self) -> DatasetWriter:
        if self._entered:
            raise RuntimeError(f"{self.path}: a DatasetWriter can be entered only once")
        self._entered = True
        self._stack = contextlib.ExitStack()
        temporary = self._stack.enter_context(atomic_directory(self.path))
        try:
            group = zarr.open_group(temporary, mode="w", zarr_format=3)
            for name in self.fields:
                spec = FIELDS[name]
                shape = spec.shape(self.num_frames, self.frame_size)
                rows = 1 if name in IMAGE_FIELDS else min(SMALL_CHUNK_ROWS, self.num_frames)
                self._arrays[name] = group.create_array(
                    name,
                    shape=shape,
                    chunks=(rows, *shape[1:]),
                    dtype=spec.dtype,
                    fill_value=spec.fill_value,
                    compressors=ZstdCodec(level=3, checksum=True),
                    dimension_names=spec.dimension_names,
                    config={"write_empty_chunks": True},
                )
            group.attrs.update(self.attrs)
        except BaseException as error:
            self._stack.__exit__(type(error), error, error.__traceback__)
            raise
        self._group = group
        return self

    def write(self, start: int, batch: dict) -> None:
        """Validate ``batch`` (rows ``[start, start + B)``) and store it; raises naming the bad field."""
        if self._stack is None or self._group is None:
            raise RuntimeError(f"{self.path}: write() only inside 'with DatasetWriter(...) as writer:'")
        missing, unknown = set(self.fields) - set(batch), set(batch) - set(self.fields)
        if missing or unknown:
            problem = f"missing fields {sorted(missing)}, unknown fields {sorted(unknown)}"
            raise DatasetFormatError(f"{self.path}: batch at row {start}: {problem}")
        size = (np.shape(batch["frames"]) or (0,))[0]
        if not isinstance(start, int | np.integer) or start < 0 or size < 1 or start + size > self.num_frames:
            raise DatasetFormatError(f"{self.path}: rows [{start}, {start}+{size}) not inside [0, {self.num_frames})")
        if self._written[start : start + size].any():
            again = start + int(np.argmax(self._written[start : start + size]))
            raise DatasetFormatError(f"{self.path}: frame {again} written twice (batch at {start}, {size} rows)")
        arrays = {
            name: validate_field(self.path, name, batch[name], num_frames=size, row_offset=start, **self._field_context)
            for name in self.fields
        }
        for name, array in arrays.items():
            self._arrays[name][start : start + size] = array
        self._written[start : start + size] = True

    def __exit__(self, exc_type, exc, traceback) -> bool:
        stack, group = self._stack, self._group
        self._stack = self._group = None
        if exc_type is None:
            try:
                if not self._written.all():
                    missing = np.flatnonzero(~self._written)
                    raise DatasetFormatError(
                        f"{self.path}: {len(missing)} of {self.num_frames} rows never written "
                        f"(first {missing[:10].tolist()})"
                    )
                group.attrs["complete"] = True  # last: the marker that the store is whole
            except BaseException as error:
                stack.__exit__(type(error), error, error.__traceback__)
                raise
        return stack.__exit__(exc_type, exc, traceback)


def _small_field(name: str) -> property:
    return property(lambda self: self._small[name], doc=f"{FIELDS[name].meaning}; read-only, see FIELDS['{name}'].")


class DatasetStore:
    """A validated, read-only store. Small per-frame fields are loaded eagerly (about 0.6 kB per frame);
    ``frames`` and ``part_labels`` stay on disk and are read by index (``read_frames``, ``read_part_labels``)."""

    def __init__(self, path: Path, attrs: dict, group: zarr.Group, small: dict[str, np.ndarray], has_part_labels: bool):
        self.path, self.attrs, self._group, self._small = path, attrs, group, small
        self.num_frames: int = attrs["num_frames"]
        self.frame_size: tuple[int, int] = tuple(attrs["frame_size"])
        self.subjects: tuple[str, ...] = tuple(attrs["subjects"])
        self.actions: tuple[str, ...] = tuple(attrs["actions"])
        self.source: str = attrs["source"]
        self.split: str = attrs["split"]
        self.has_part_labels = has_part_labels
        self._frame_ids: list[str] | None = None

    joints_2d = _small_field("joints_2d")
    joints_3d = _small_field("joints_3d")
    crop_affine = _small_field("crop_affine")
    camera_intrinsics = _small_field("camera_intrinsics")
    camera_distortion = _small_field("camera_distortion")
    camera_rotation = _small_field("camera_rotation")
    camera_centre = _small_field("camera_centre")
    image_size = _small_field("image_size")
    subject = _small_field("subject")
    action = _small_field("action")
    subaction = _small_field("subaction")
    camera_id = _small_field("camera_id")
    frame_index = _small_field("frame_index")

    def __repr__(self) -> str:
        return f"DatasetStore({str(self.path)!r}, {self.source}/{self.split}, {self.num_frames} frames)"

    def array(self, name: str) -> zarr.Array:
        """The lazily-read zarr array of field ``name`` (read-only)."""
        if name not in expected_fields(self.has_part_labels):
            raise KeyError(
                f"{self.path}: no field {name!r}; this store has {', '.join(expected_fields(self.has_part_labels))}"
            )
        return self._group[name]

    def subject_names(self) -> np.ndarray:
        """(N,) str subject name per frame."""
        return np.asarray(self.subjects)[self.subject]

    def action_names(self) -> np.ndarray:
        """(N,) str action name per frame."""
        return np.asarray(self.actions)[self.action]

    def frame_ids(self) -> list[str]:
        """Canonical id per frame, ``"{subject}/{action}/{subaction}/{camera_id}/{frame_index:06d}"``."""
        if self._frame_ids is None:
            numbers = zip(self.subaction.tolist(), self.camera_id.tolist(), self.frame_index.tolist(), strict=True)
            columns = zip(self.subject_names(), self.action_names(), numbers, strict=True)
            self._frame_ids = [f"{s}/{a}/{sub}/{cam}/{index:06d}" for s, a, (sub, cam, index) in columns]
        return self._frame_ids

    def crop_side(self) -> int:
        """S px, the side of the store's square crops (``frame_size`` = [S, S]).

        The format allows H != W, but the stages after it treat a crop as a square: they resize it to a
        square network input, map crop px <-> unit crop coordinates with one scale for x and y
        (``patchpose.augment.pixels_to_unit``) and measure PCK against its side. Every dataset source
        writes square crops; a non-square store is refused here (``ValueError`` naming it) rather than
        silently distorted.
        """
        height, width = self.frame_size
        if height != width:
            raise ValueError(
                f"{self.path}: frame_size [H, W] = {list(self.frame_size)} is not square; the stages after the "
                f"dataset need square crops (H == W), as every dataset source writes them"
            )
        return int(height)

    def _read(self, name: str, indices) -> np.ndarray:
        indices = np.asarray(indices)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise ValueError(f"{self.path}: {name} indices must be a 1-D integer list, got {indices!r}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_frames):
            raise IndexError(f"{self.path}: {name} indices must lie in [0, {self.num_frames}), got {indices.tolist()}")
        if not indices.size:
            return np.zeros(FIELDS[name].shape(0, self.frame_size), dtype=FIELDS[name].dtype)
        array = self.array(name)
        try:
            return array.oindex[indices.astype(np.int64)]
        except Exception as error:  # a corrupt chunk: name the store and field, keep the cause
            raise field_error(self.path, name, f"cannot read frames {indices.tolist()[:10]}: {error}") from error

    def read_frames(self, indices) -> np.ndarray:
        """(B, H, W, 3) uint8 RGB crops of frames ``indices`` (any order, repeats allowed)."""
        return self._read("frames", indices)

    def read_part_labels(self, indices) -> np.ndarray:
        """(B, H, W) uint8 part ids (``patchpose.parts.PART_NAMES``) of frames ``indices``."""
        labels = self._read("part_labels", indices)
        bad = labels >= len(PART_NAMES)
        if bad.any():
            frame = int(np.asarray(indices)[np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))[0]])
            raise field_error(self.path, "part_labels", f"part id >= {len(PART_NAMES)} at frame {frame}")
        return labels


def open_dataset(path: str | os.PathLike, *, verify_chunks: bool = True) -> DatasetStore:
    """Open and validate a store; ``DatasetFormatError`` ("<path>: field '<name>': ...") on any violation.

    verify_chunks: also require every chunk file of every field on disk (one
    stat per frame), since zarr silently returns fill values for missing ones.
    """
    path = Path(path)
    attrs = read_group_attrs(path)
    has_part_labels = "part_names" in attrs or (path / "part_labels").exists()
    check_attrs(path, attrs, format_version=FORMAT_VERSION, has_part_labels=has_part_labels)
    group = zarr.open_group(path, mode="r", zarr_format=3)
    num_frames, frame_size = attrs["num_frames"], tuple(attrs["frame_size"])
    vocabulary_sizes = {"subject": len(attrs["subjects"]), "action": len(attrs["actions"])}
    small = {}
    for name in expected_fields(has_part_labels):
        if not (path / name / "zarr.json").is_file():
            raise field_error(path, name, f"missing required field (no array metadata {path / name / 'zarr.json'})")
        try:
            array = group[name]
        except Exception as error:
            raise field_error(path, name, f"unreadable array metadata {path / name / 'zarr.json'}: {error}") from error
        if not isinstance(array, zarr.Array):
            raise field_error(path, name, "is a group, expected an array")
        check_array_layout(path, name, array, num_frames=num_frames, frame_size=frame_size, verify_chunks=verify_chunks)
        if name in IMAGE_FIELDS:
            continue
        try:
            values = array[...]
        except Exception as error:
            raise field_error(path, name, f"cannot be read: {error}") from error
        small[name] = validate_field(
            path, name, values, num_frames=num_frames, frame_size=frame_size, vocabulary_sizes=vocabulary_sizes
        )
        small[name].setflags(write=False)
    return DatasetStore(path, dict(attrs), group, small, has_part_labels)
