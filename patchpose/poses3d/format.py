"""The 3D prediction file format (version 1): one record per file, whatever the container (npz, h5, CSV).

Spec: docs/predictions_format.md. A file holds, for N frames of one dataset,

* ``poses_3d`` (N, 17, 3): joint positions in the camera frame (x right, y down, z forward), in ``unit``,
  root-relative (the root joint at the origin; see ``patchpose.poses3d.normalise`` for files that are not),
  joints in the order ``joint_names`` gives;
* ``frame_ids`` (N,): the dataset's canonical frame ids (``patchpose.dataset_format.frame_id``), unique;
* ``joint_names`` (17,): the joints by name (``patchpose.poses3d.joints`` knows the aliases);
* ``unit``: ``"mm"`` or ``"m"``; ``split``: ``"train"``, ``"test"`` or ``"train+test"``; ``method``: a free
  label; ``format_version``: 1.

External files may leave ``joint_names``, ``unit``, ``split``, ``method`` and ``format_version`` out (the
baseline's config can declare the first two); files the pipeline writes always carry every field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from patchpose.dataset_format import parse_frame_id
from patchpose.poses3d.errors import PredictionFileError, preview
from patchpose.skeleton import H36M

__all__ = [
    "FORMAT_VERSION",
    "SPLIT_VALUES",
    "Predictions",
    "check_structure",
    "check_frame_ids",
    "frame_id_problems",
    "split_covers",
    "structure_problems",
]

FORMAT_VERSION = 1
SPLIT_VALUES = ("train", "test", "train+test")


def split_covers(declared: str | None, split: str) -> bool:
    """Whether a file declaring ``declared`` may hold frames of ``split`` (no declaration: any)."""
    return declared is None or split in declared.split("+")


@dataclass(frozen=True)
class Predictions:
    """One prediction file's content as read (file units and joint order) or canonicalised.

    ``poses_3d`` (N, J, 3) float64, camera frame; ``frame_ids`` N canonical ids; ``joint_names`` J names or
    ``None`` when the file does not say; ``unit``, ``split``, ``method``, ``format_version`` as declared or
    ``None``. ``path``: the file it came from, for error messages.
    """

    path: str
    poses_3d: np.ndarray
    frame_ids: tuple[str, ...]
    joint_names: tuple[str, ...] | None = None
    unit: str | None = None
    split: str | None = None
    method: str | None = None
    format_version: int | None = None

    @property
    def num_frames(self) -> int:
        return int(self.poses_3d.shape[0])


def _metadata_problems(path, unit, split, format_version) -> list[PredictionFileError]:
    problems: list[PredictionFileError] = []

    def refuse(problem: str) -> None:
        problems.append(PredictionFileError(path, problem))

    if format_version is not None and format_version != FORMAT_VERSION:
        refuse(f"format_version {format_version!r} is not supported; this code reads version {FORMAT_VERSION}")
    if split is not None and split not in SPLIT_VALUES:
        refuse(f"split {split!r} is not one of {', '.join(SPLIT_VALUES)}")
    if unit is not None and unit not in ("mm", "m"):
        refuse(f"unit {unit!r} is not one of mm, m")
    return problems


def structure_problems(
    path: str | os.PathLike,
    poses_3d,
    frame_ids,
    joint_names=None,
    *,
    unit: str | None = None,
    split: str | None = None,
    method: str | None = None,
    format_version: int | None = None,
) -> list[PredictionFileError]:
    """Every problem ``check_structure`` looks for, in the order it looks (it raises the first one).

    A check that needs a field an earlier check refused is skipped (no NaN count of poses that are not
    numbers); NaN frames are named by their frame ids when the ids pair with the poses, else by row.
    ``method`` is free text and never a problem.
    """
    path = os.fspath(path)
    problems: list[PredictionFileError] = []

    def refuse(problem: str) -> None:
        problems.append(PredictionFileError(path, problem))

    poses = np.asarray(poses_3d)
    numeric = poses.dtype.kind in "fiu"
    if not numeric:
        refuse(f"poses_3d must hold numbers, got dtype {poses.dtype}")
    if poses.ndim != 3 or poses.shape[2] != 3 or poses.shape[0] == 0:
        refuse(f"poses_3d must have shape (N, {H36M.num_joints}, 3) with N >= 1, got {poses.shape}")
    elif poses.shape[1] != H36M.num_joints:
        refuse(
            f"poses_3d holds {poses.shape[1]} joints per frame, expected the {H36M.num_joints} Human3.6M joints "
            f"({', '.join(H36M.joint_names)})"
        )
    ids = np.asarray(frame_ids)
    flat_ids = ids.ndim == 1 and ids.dtype.kind == "U"
    if not flat_ids:
        refuse(f"frame_ids must be a flat array of strings, got shape {ids.shape} dtype {ids.dtype}")
    elif poses.ndim >= 1 and ids.shape[0] != poses.shape[0]:
        refuse(f"{ids.shape[0]} frame_ids for {poses.shape[0]} poses")
    paired = flat_ids and poses.ndim >= 1 and ids.shape[0] == poses.shape[0]
    if numeric and poses.ndim == 3:
        values = poses.astype(np.float64)
        bad_frames = np.flatnonzero(~np.isfinite(values).all(axis=(1, 2)))
        if bad_frames.size:
            bad = int(np.count_nonzero(~np.isfinite(values)))
            where = [str(ids[i]) for i in bad_frames] if paired else [f"row {i}" for i in bad_frames]
            refuse(f"poses_3d holds {bad} NaN or inf values in {bad_frames.size} frames ({preview(where, 3)})")
    if joint_names is not None:
        names = np.asarray(joint_names)
        if names.ndim != 1 or names.dtype.kind != "U":
            refuse(f"joint_names must be a flat array of strings, got {names.dtype} {names.shape}")
        elif poses.ndim == 3 and names.shape[0] != poses.shape[1]:
            refuse(f"joint_names lists {names.shape[0]} joints, poses_3d holds {poses.shape[1]}")
    return problems + _metadata_problems(path, unit, split, format_version)


def check_structure(
    path: str | os.PathLike,
    poses_3d,
    frame_ids,
    joint_names=None,
    *,
    unit: str | None = None,
    split: str | None = None,
    method: str | None = None,
    format_version: int | None = None,
) -> Predictions:
    """Validate shapes, values and metadata and return the record (poses as float64).

    ``PredictionFileError`` naming ``path`` for: poses not (N, 17, 3) numbers with N >= 1, NaN or inf (the
    count and the first frame id), ``frame_ids`` not N strings, ``joint_names`` not 17 strings, an unknown
    ``unit`` / ``split`` / ``format_version`` (the first of ``structure_problems``). Frame ids are matched to
    a dataset later (``patchpose.poses3d.matching``).
    """
    path = os.fspath(path)
    meta = {"unit": unit, "split": split, "method": method, "format_version": format_version}
    problems = structure_problems(path, poses_3d, frame_ids, joint_names, **meta)
    if problems:
        raise problems[0]
    poses = np.asarray(poses_3d).astype(np.float64)
    ids = tuple(str(i) for i in np.asarray(frame_ids))
    if joint_names is not None:
        joint_names = tuple(str(n) for n in np.asarray(joint_names))
    return Predictions(path, poses, ids, joint_names, **meta)


def frame_id_problems(path: str | os.PathLike, frame_ids) -> list[PredictionFileError]:
    """The ids that are not canonical, then the ids that repeat (``check_frame_ids`` raises the first)."""
    problems: list[PredictionFileError] = []

    def refuse(problem: str) -> None:
        problems.append(PredictionFileError(path, problem))

    malformed = []
    for text in frame_ids:
        try:
            parse_frame_id(text)
        except ValueError:
            malformed.append(repr(text))
    if malformed:
        refuse(
            f"{len(malformed)} frame ids are not canonical 'subject/action/subaction/camera_id/frame_index' "
            f"ids (e.g. 'S9/Walking/1/54138969/000123'): {preview(malformed, 3)}"
        )
    unique, counts = np.unique(np.asarray(frame_ids, dtype=str), return_counts=True)
    if (counts > 1).any():
        repeated = unique[counts > 1]
        refuse(f"{repeated.size} frame ids occur more than once: {preview(repeated)}")
    return problems


def check_frame_ids(path: str | os.PathLike, frame_ids) -> None:
    """``PredictionFileError`` naming ``path`` unless every id is canonical and none repeats."""
    problems = frame_id_problems(path, frame_ids)
    if problems:
        raise problems[0]
