"""Units of 3D prediction files: declared units convert, undeclared or contradicted ones are refused.

The pipeline works in millimetres. A file (or its config) declares ``"mm"`` or ``"m"``; the values are
checked against the declaration by the median bone length over all limbs and frames: a human's bones
(pelvis->hip ~130 mm ... femur ~450 mm) put it in 20..1000 mm, i.e. 0.02..1 m. Detection never
converts on its own: a file whose bones look like metres while mm is declared (or nothing is) is an
error that says what was found and what to declare.
"""

from __future__ import annotations

import os

import numpy as np

from patchpose.poses3d.errors import PredictionFileError
from patchpose.skeleton import H36M

__all__ = ["UNITS", "UNIT_SCALE_TO_MM", "PLAUSIBLE_BONE_MM", "median_bone_length", "detect_unit", "resolve_unit"]

UNITS = ("mm", "m")
UNIT_SCALE_TO_MM = {"mm": 1.0, "m": 1000.0}
PLAUSIBLE_BONE_MM = (20.0, 1000.0)  # the same bounds the dataset format checks its joints_3d with


def median_bone_length(poses: np.ndarray) -> float:
    """Median of all 16 bone lengths over all frames of ``poses`` (N, 17, 3) in ``H36M`` order, file units."""
    limbs = poses[:, H36M.limb_children] - poses[:, H36M.limb_parents]
    return float(np.median(np.linalg.norm(limbs, axis=-1)))


def detect_unit(poses: np.ndarray) -> tuple[str | None, float]:
    """``(unit, median bone length)``: the unit whose plausible range holds the median, ``None`` if neither."""
    median = median_bone_length(poses)
    low, high = PLAUSIBLE_BONE_MM
    for unit, scale in UNIT_SCALE_TO_MM.items():
        if low <= median * scale <= high:
            return unit, median
    return None, median


def resolve_unit(
    path: str | os.PathLike, poses: np.ndarray, file_unit: str | None, config_unit: str, *, trust_declared: bool = False
) -> str:
    """The unit of ``poses`` (N, 17, 3), ``H36M`` order: ``"mm"`` or ``"m"``.

    ``config_unit``: ``"mm"``, ``"m"`` or ``"auto"`` (take the file's declaration); ``file_unit``: what the file
    declares, or ``None``. With no declaration at all the unit is mm. ``PredictionFileError`` naming ``path``
    when the two declarations differ, a declaration is not a known unit, or the bone lengths contradict the
    unit (the message gives the median bone length found and the unit to declare). ``trust_declared``: skip the
    bone-length test when a unit is declared (for files the pipeline wrote itself, whose poses may be as bad as
    the method that made them).
    """
    if file_unit is not None and file_unit not in UNITS:
        raise PredictionFileError(path, f"the file declares unit {file_unit!r}; known units: {', '.join(UNITS)}")
    if config_unit not in (*UNITS, "auto"):
        raise PredictionFileError(path, f"the config declares unit {config_unit!r}; known: {', '.join(UNITS)}, auto")
    if config_unit != "auto" and file_unit is not None and config_unit != file_unit:
        raise PredictionFileError(path, f"the file declares unit {file_unit!r} but the config declares {config_unit!r}")
    declared = config_unit if config_unit != "auto" else file_unit
    unit = declared or "mm"
    if declared and trust_declared:
        return unit
    found, median = detect_unit(poses)
    if found == unit:
        return unit
    how = f"declared {declared!r}" if declared else "no unit declared, so mm assumed"
    low, high = PLAUSIBLE_BONE_MM
    if found is None:
        raise PredictionFileError(
            path,
            f"implausible bone lengths ({how}): the median bone length is {median:.4g}, which is neither mm "
            f"({low:g}..{high:g}) nor m ({low / 1000:g}..{high / 1000:g}); is this a 17-joint human skeleton?",
        )
    raise PredictionFileError(
        path,
        f"unit mismatch ({how}): the median bone length is {median:.4g}, which looks like {found!r}; declare "
        f"unit: {found} (in the file or the baseline's config) to have it converted to mm",
    )
