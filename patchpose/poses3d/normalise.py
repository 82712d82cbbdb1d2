"""Bring a prediction file's poses into the pipeline's form: mm, ``H36M`` joint order, root-relative.

Conversions happen here and only here (the boundary): the joint order is mapped by name, the unit is
converted when declared (and refused when the bone lengths contradict it, ``patchpose.poses3d.units``),
and the root is subtracted. Root policy: the format asks for root-relative poses, but a file of absolute
camera-frame positions is accepted and its root (pelvis) subtracted, because protocol-1 MPJPE and the
refinement (which keeps the initial root, Eq. 1) only use root-relative poses; the largest root offset
found is reported.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from patchpose.poses3d.errors import PredictionFileError
from patchpose.poses3d.format import Predictions
from patchpose.poses3d.joints import permutation_to_h36m, resolve_joint_names
from patchpose.poses3d.units import UNIT_SCALE_TO_MM, median_bone_length, resolve_unit
from patchpose.skeleton import H36M

__all__ = ["canonicalise"]

LOG = logging.getLogger(__name__)


def _permutation(predictions: Predictions, config_joint_names) -> tuple[np.ndarray, tuple[str, ...]]:
    """The index array to ``H36M`` order and the names it came from (file and config must agree)."""
    path = predictions.path
    declared = {}
    if predictions.joint_names is not None:
        declared["the file"] = resolve_joint_names(path, predictions.joint_names)
    if config_joint_names is not None:
        declared["the config"] = resolve_joint_names(path, config_joint_names)
    if not declared:
        resolve_joint_names(path, None)  # raises: order unknown
    permutations = {source: permutation_to_h36m(path, names) for source, names in declared.items()}
    if len(permutations) == 2 and not np.array_equal(*permutations.values()):
        raise PredictionFileError(
            path,
            f"the file's joint_names ({', '.join(declared['the file'])}) and the config's "
            f"({', '.join(declared['the config'])}) name different joint orders",
        )
    source = next(iter(declared))
    return permutations[source], declared[source]


def canonicalise(
    predictions: Predictions, *, unit: str = "auto", joint_names=None, trust_declared_unit: bool = False
) -> tuple[Predictions, dict]:
    """``(canonical record, report)``: poses (N, 17, 3) float64 mm, camera frame, ``H36M`` order, root at 0.

    unit: the config's ``"mm"``, ``"m"`` or ``"auto"`` (the file's declaration). joint_names: the config's
    named order or list, or ``None`` (the file's). trust_declared_unit: skip the bone-length test of a declared
    unit (``patchpose.poses3d.units.resolve_unit``); the import of external files never does. The report
    (JSON-ready) records the file's joint names, the unit and the scale applied, the median bone length in mm
    and the largest root offset subtracted.
    Raises ``PredictionFileError`` naming the file for an unknown or conflicting joint order or unit.
    """
    permutation, names = _permutation(predictions, joint_names)
    poses = predictions.poses_3d[:, permutation]
    found_unit = resolve_unit(predictions.path, poses, predictions.unit, unit, trust_declared=trust_declared_unit)
    poses = poses * UNIT_SCALE_TO_MM[found_unit]
    root = poses[:, :1].copy()
    root_offset = float(np.linalg.norm(root, axis=-1).max())
    poses = poses - root
    if root_offset > 0:
        LOG.info("%s: subtracted the root joint (largest offset %.1f mm)", predictions.path, root_offset)
    report = {
        "file_joint_names": list(names),
        "unit": found_unit,
        "scale_to_mm": UNIT_SCALE_TO_MM[found_unit],
        "median_bone_length_mm": median_bone_length(poses),
        "root_offset_max_mm": root_offset,
    }
    canonical = dataclasses.replace(predictions, poses_3d=poses, joint_names=H36M.joint_names, unit="mm")
    return canonical, report
