"""Per-frame 3D pose errors of one prediction file against a dataset store, and the file that keeps them.

Row ``i`` is row ``i`` of the store (prediction files are aligned to the store's rows when loaded,
``patchpose.poses3d.load_for_store``). For N frames the table holds

* ``frame_ids`` (N,) str: canonical ids ``"{subject}/{action}/{subaction}/{camera_id}/{frame_index:06d}"``;
* ``subject``, ``action`` (N,) str names; ``subaction``, ``camera_id``, ``frame_index`` (N,) int64: the id's parts;
* ``mpjpe_mm`` (N,) float64 mm: protocol 1, both poses root-aligned, mean over the 17 joints;
* ``pa_mpjpe_mm`` (N,) float64 mm: protocol 2, after a per-frame similarity Procrustes fit;
* ``joint_errors_mm`` (N, 17) float64 mm: the protocol-1 Euclidean error of each joint (``H36M`` order), so
  ``mpjpe_mm`` is their mean over joints;

plus the store's ``source`` (``"synthetic"``, ``"h36m"``: it decides the bootstrap clusters) and ``split``.
Metrics: ``patchpose.metrics`` (camera frame, mm).

The file, ``<name>/{split}_frame_errors.npz`` (format version 1), is an npz rather than a CSV because every
later consumer (the per-action table, the bootstrap, the rarity deciles, the tables CLI) reads it back and
must get the numbers the pipeline computed: float64 round-trips exactly in npz (a CSV would need 17
significant digits per value to do the same), the arrays come back typed and shaped without parsing, and
100k Human3.6M frames load in well under a second. The per-action CSV is the human-readable view. Keys:
the columns above (``frame_id`` for ``frame_ids``) and 0-d ``format_version``, ``source``, ``split``, plus
``joint_names`` (17,); strings are unicode arrays, read with ``allow_pickle=False``. The writer is atomic and
deterministic: the same table gives the same bytes (zip entries carry a fixed date), so a rerun that
changes nothing changes no byte.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from patchpose.atomic import atomic_write_bytes
from patchpose.dataset_format import DatasetStore
from patchpose.metrics import per_frame_pa_mpjpe, per_joint_errors
from patchpose.poses3d.errors import preview
from patchpose.poses3d.loading import load_for_store
from patchpose.skeleton import H36M

__all__ = [
    "FORMAT_VERSION",
    "METRICS",
    "FrameErrors",
    "FrameErrorsFileError",
    "compute_frame_errors",
    "frame_errors_of_file",
    "write_frame_errors",
    "read_frame_errors",
    "check_paired",
]

FORMAT_VERSION = 1
METRICS = ("mpjpe_mm", "pa_mpjpe_mm")  # the per-frame errors a table, interval or claim can be about
SPLITS = ("train", "test")
_STRING_COLUMNS = ("frame_id", "subject", "action")
_INTEGER_COLUMNS = ("subaction", "camera_id", "frame_index")
_ERROR_COLUMNS = ("mpjpe_mm", "pa_mpjpe_mm", "joint_errors_mm")
_HEADER = ("format_version", "source", "split", "joint_names")
KEYS = _HEADER + _STRING_COLUMNS + _INTEGER_COLUMNS + _ERROR_COLUMNS
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest zip date: fixed, so equal tables give equal bytes


class FrameErrorsFileError(ValueError):
    """A per-frame error table that cannot be used; the message is ``"<file>: <problem>"``.

    ``path`` holds the file (or, for a table computed in memory, what it was computed from).
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True, eq=False)
class FrameErrors:
    """One prediction file's per-frame errors (module docstring: columns, shapes, units); arrays read-only.

    ``origin``: the file it was read from, or what it was computed from; every error message names it.
    """

    origin: str
    source: str
    split: str
    frame_ids: np.ndarray
    subject: np.ndarray
    action: np.ndarray
    subaction: np.ndarray
    camera_id: np.ndarray
    frame_index: np.ndarray
    mpjpe_mm: np.ndarray
    pa_mpjpe_mm: np.ndarray
    joint_errors_mm: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.frame_ids.shape[0])

    def metric(self, name: str) -> np.ndarray:
        """The (N,) mm column ``name`` (one of ``METRICS``); ``ValueError`` naming the known ones otherwise."""
        if name not in METRICS:
            raise ValueError(f"{self.origin}: unknown metric {name!r}; known: {', '.join(METRICS)}")
        return getattr(self, name)


def _composed_ids(subject, action, subaction, camera_id, frame_index) -> list[str]:
    numbers = zip(subaction.tolist(), camera_id.tolist(), frame_index.tolist(), strict=True)
    return [
        f"{s}/{a}/{sub}/{cam}/{index:06d}" for s, a, (sub, cam, index) in zip(subject, action, numbers, strict=True)
    ]


def _scalar(where, content: dict, key: str, kind: str):
    value = np.asarray(content[key])
    if value.ndim != 0 or value.dtype.kind not in kind:
        expected = "a single string" if kind == "U" else "a single integer"
        raise FrameErrorsFileError(where, f"{key} must be {expected}, got dtype {value.dtype} shape {value.shape}")
    return value.item()


def _checked(where: str, content: dict) -> FrameErrors:
    """Validate ``content`` (every key of ``KEYS``) and return the table; ``FrameErrorsFileError`` naming
    ``where`` for a missing key, an unknown version, source or split, wrong joint names, shapes or dtypes,
    NaN, inf or negative errors, frame ids that repeat or disagree with their parts, or an MPJPE that is
    not the mean of its joint errors."""
    missing = [key for key in KEYS if key not in content]
    if missing:
        raise FrameErrorsFileError(
            where, f"missing key(s) {', '.join(missing)}; the file holds: {', '.join(content) or 'nothing'}"
        )
    version = _scalar(where, content, "format_version", "iu")
    if version != FORMAT_VERSION:
        raise FrameErrorsFileError(
            where, f"format_version {version!r} is not supported; this code reads version {FORMAT_VERSION}"
        )
    source, split = _scalar(where, content, "source", "U"), _scalar(where, content, "split", "U")
    if not source or split not in SPLITS:
        raise FrameErrorsFileError(where, f"need a non-empty source and a split in {SPLITS}, got {source!r}, {split!r}")
    names = np.asarray(content["joint_names"])
    if names.dtype.kind != "U" or tuple(names.tolist()) != H36M.joint_names:
        raise FrameErrorsFileError(where, f"joint_names must be the 17 H36M joints in order, got {names.tolist()}")
    columns = {key: np.asarray(content[key]) for key in _STRING_COLUMNS + _INTEGER_COLUMNS + _ERROR_COLUMNS}
    num_frames = columns["frame_id"].shape[0] if columns["frame_id"].ndim == 1 else -1
    if num_frames < 1:
        raise FrameErrorsFileError(where, f"frame_id must have shape (N,) with N >= 1, got {columns['frame_id'].shape}")
    for key, array in columns.items():
        shape = (num_frames, H36M.num_joints) if key == "joint_errors_mm" else (num_frames,)
        kind = "U" if key in _STRING_COLUMNS else "iu" if key in _INTEGER_COLUMNS else "f"
        if array.shape != shape or array.dtype.kind not in kind:
            raise FrameErrorsFileError(
                where, f"{key} must have shape {shape} and dtype kind {kind!r}, got {array.shape} {array.dtype}"
            )
        columns[key] = array.astype(str if kind == "U" else np.int64 if kind == "iu" else np.float64)  # a copy
    ids = columns["frame_id"]
    for key in _ERROR_COLUMNS:
        values = columns[key]
        bad = ~(np.isfinite(values) & (values >= 0)).reshape(num_frames, -1).all(axis=1)
        if bad.any():
            raise FrameErrorsFileError(
                where, f"{key} holds NaN, inf or negative values in {int(bad.sum())} frames ({preview(ids[bad], 3)})"
            )
    unique, counts = np.unique(ids, return_counts=True)
    repeated = unique[counts > 1]
    if repeated.size:
        raise FrameErrorsFileError(where, f"{repeated.size} frame ids occur more than once: {preview(repeated)}")
    parts = [columns[key] for key in ("subject", "action", *_INTEGER_COLUMNS)]
    disagree = np.flatnonzero(np.asarray(_composed_ids(*parts)) != ids)
    if disagree.size:
        row = int(disagree[0])
        raise FrameErrorsFileError(
            where,
            f"frame_id disagrees with subject/action/subaction/camera_id/frame_index in {disagree.size} rows "
            f"(row {row}: {str(ids[row])!r} vs {_composed_ids(*(part[row : row + 1] for part in parts))[0]!r})",
        )
    means = columns["joint_errors_mm"].mean(axis=1)
    off = np.flatnonzero(~np.isclose(columns["mpjpe_mm"], means, rtol=1e-12, atol=1e-9))
    if off.size:
        raise FrameErrorsFileError(
            where, f"mpjpe_mm is not the mean of joint_errors_mm in {off.size} frames ({preview(ids[off], 3)})"
        )
    for array in columns.values():
        array.setflags(write=False)
    return FrameErrors(
        origin=where,
        source=str(source),
        split=str(split),
        frame_ids=ids,
        **{key: columns[key] for key in ("subject", "action", *_INTEGER_COLUMNS, *_ERROR_COLUMNS)},
    )


def compute_frame_errors(poses_mm, store: DatasetStore, *, origin: str | None = None) -> FrameErrors:
    """Per-frame errors of ``poses_mm`` (N, 17, 3) mm, camera frame, ``H36M`` order, row ``i`` = ``store`` row ``i``.

    The poses may be absolute or root-relative (protocol 1 subtracts the root of both). ``origin`` names
    the table in error messages (default: ``"poses against <store>"``).
    """
    origin = origin or f"poses against {store.path}"
    poses = np.asarray(poses_mm, dtype=np.float64)
    if poses.shape != (store.num_frames, H36M.num_joints, 3):
        raise FrameErrorsFileError(
            origin,
            f"poses must have shape ({store.num_frames}, {H36M.num_joints}, 3) (the store's rows), got {poses.shape}",
        )
    truth = store.joints_3d
    joint_errors = per_joint_errors(poses, truth)
    return _checked(
        origin,
        {
            "format_version": FORMAT_VERSION,
            "source": store.source,
            "split": store.split,
            "joint_names": np.array(H36M.joint_names, dtype=str),
            "frame_id": np.array(store.frame_ids(), dtype=str),
            "subject": store.subject_names().astype(str),
            "action": store.action_names().astype(str),
            "subaction": store.subaction,
            "camera_id": store.camera_id,
            "frame_index": store.frame_index,
            "mpjpe_mm": joint_errors.mean(axis=1),
            "pa_mpjpe_mm": per_frame_pa_mpjpe(poses, truth),
            "joint_errors_mm": joint_errors,
        },
    )


def frame_errors_of_file(predictions: str | os.PathLike, store: DatasetStore) -> FrameErrors:
    """Per-frame errors of a prediction file (any valid one, ``docs/predictions_format.md``) against ``store``.

    The file is read and aligned like every consumer reads it (``load_for_store``), so a file of another
    split, with a frame missing or an id the store lacks is refused (``PredictionFileError`` naming it).
    """
    poses = load_for_store(predictions, store)
    return compute_frame_errors(poses, store, origin=f"{os.fspath(predictions)} against {store.path}")


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An npz archive (deflated ``<key>.npy`` entries, as ``np.savez_compressed``) with fixed zip dates."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asarray(value), allow_pickle=False)
    return buffer.getvalue()


def write_frame_errors(path: str | os.PathLike, errors: FrameErrors) -> None:
    """Write ``errors`` to ``path`` (an npz, module docstring) atomically; it is validated first, so a bad
    table raises ``FrameErrorsFileError`` naming ``path`` and nothing is written."""
    content = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "source": np.array(errors.source, dtype=str),
        "split": np.array(errors.split, dtype=str),
        "joint_names": np.array(H36M.joint_names, dtype=str),
        "frame_id": np.asarray(errors.frame_ids, dtype=str),
        "subject": np.asarray(errors.subject, dtype=str),
        "action": np.asarray(errors.action, dtype=str),
        **{key: np.asarray(getattr(errors, key), dtype=np.int64) for key in _INTEGER_COLUMNS},
        **{key: np.asarray(getattr(errors, key), dtype=np.float64) for key in _ERROR_COLUMNS},
    }
    _checked(os.fspath(path), content)
    atomic_write_bytes(path, _npz_bytes(content))


def read_frame_errors(path: str | os.PathLike) -> FrameErrors:
    """Read and validate a per-frame error file; ``FrameErrorsFileError`` naming ``path`` for any problem."""
    where = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise FrameErrorsFileError(where, "per-frame error file not found") from None
    except OSError as error:
        raise FrameErrorsFileError(where, f"cannot be read: {error}") from None
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise FrameErrorsFileError(where, "not an npz file (no zip archive)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            content = {key: archive[key] for key in archive.files}
    except ValueError as error:  # object arrays need pickle
        raise FrameErrorsFileError(where, f"cannot read without pickle ({error})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise FrameErrorsFileError(where, f"not a readable npz file: {error}") from None
    return _checked(where, content)


def check_paired(initial: FrameErrors, refined: FrameErrors) -> None:
    """``FrameErrorsFileError`` naming both tables unless they hold the same frames of one store, row for row
    (same source, split and frame ids in the same order), as a paired comparison needs."""
    where = f"{refined.origin} (compared with {initial.origin})"
    if (initial.source, initial.split) != (refined.source, refined.split):
        raise FrameErrorsFileError(
            where, f"source/split {refined.source}/{refined.split} differ from {initial.source}/{initial.split}"
        )
    if initial.num_frames != refined.num_frames:
        raise FrameErrorsFileError(where, f"{refined.num_frames} frames, the other table has {initial.num_frames}")
    differ = np.flatnonzero(initial.frame_ids != refined.frame_ids)
    if differ.size:
        row = int(differ[0])
        raise FrameErrorsFileError(
            where,
            f"{differ.size} of {initial.num_frames} rows hold other frames (row {row}: "
            f"{str(refined.frame_ids[row])!r} vs {str(initial.frame_ids[row])!r}); both must come from the same store",
        )
