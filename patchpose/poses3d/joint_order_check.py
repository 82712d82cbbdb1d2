"""Catch joints stored in another order than declared (shuffled, left/right swapped) against ground truth.

Names alone cannot tell that a file's data follow its declared order. The ground truth can: after
centring both poses on their joint centroid (which does not depend on the order), the mean distance
``D[j, k]`` (mm, over frames) between predicted joint ``j`` and true joint ``k`` is smallest on the
diagonal for any sensible method, however inaccurate. If the best one-to-one assignment of predicted to
true joints (Hungarian) is far better than the declared one, the declared order is wrong.
"""

from __future__ import annotations

import os

import numpy as np
from scipy.optimize import linear_sum_assignment

from patchpose.poses3d.errors import PredictionFileError
from patchpose.skeleton import H36M

__all__ = ["MISMATCH_RATIO", "MISMATCH_MARGIN_MM", "check_joint_order"]

MISMATCH_RATIO = 1.5  # declared cost above 1.5 x the best assignment's ...
MISMATCH_MARGIN_MM = 20.0  # ... and above it by 20 mm per joint: refused
_MAX_FRAMES = 2000  # frames used (evenly spaced), enough for a stable mean


def check_joint_order(path: str | os.PathLike, poses_mm: np.ndarray, ground_truth_mm: np.ndarray) -> dict:
    """Compare the declared joint order of ``poses_mm`` with the best fit to ``ground_truth_mm``.

    Both (N, 17, 3) mm, camera frame, ``H36M`` order, row ``i`` the same frame. Returns a report with the
    mean joint distance (centroid-aligned) as declared and under the best assignment; raises
    ``PredictionFileError`` naming ``path`` when the declared order is clearly worse (the message lists the
    joints that seem to be elsewhere).
    """
    rows = np.unique(np.linspace(0, poses_mm.shape[0] - 1, min(_MAX_FRAMES, poses_mm.shape[0])).round().astype(int))
    pred = poses_mm[rows] - poses_mm[rows].mean(axis=1, keepdims=True)
    truth = ground_truth_mm[rows] - ground_truth_mm[rows].mean(axis=1, keepdims=True)
    cost = np.linalg.norm(pred[:, :, None] - truth[:, None, :], axis=-1).mean(axis=0)  # (17 pred, 17 true)
    _, best = linear_sum_assignment(cost)
    declared_mm = float(np.trace(cost) / cost.shape[0])
    best_mm = float(cost[np.arange(cost.shape[0]), best].mean())
    report = {"declared_order_error_mm": declared_mm, "best_order_error_mm": best_mm}
    if declared_mm > MISMATCH_RATIO * best_mm and declared_mm - best_mm > MISMATCH_MARGIN_MM:
        moved = [f"{H36M.joint_names[j]} looks like {H36M.joint_names[k]}" for j, k in enumerate(best) if j != k]
        raise PredictionFileError(
            path,
            f"the joints do not seem to be in the declared order (mean joint distance to the ground truth "
            f"{declared_mm:.0f} mm as declared, {best_mm:.0f} mm reordered): {'; '.join(moved)}; check the "
            "file's joint_names (or the baseline's joint_names setting)",
        )
    return report
