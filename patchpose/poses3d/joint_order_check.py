"""Catch joints stored in another order than declared (shuffled, left/right swapped) against ground truth.

Names alone cannot tell that a file's data follow its declared order. The ground truth can, joint pair by
joint pair. Both poses are centred on their joint centroid (which does not depend on the order). For a
pair of joints ``j, k`` and a frame, the *swap gain* is how much nearer the ground truth both joints come
when their predictions trade places::

    gain = d(p_j, t_j) + d(p_k, t_k) - d(p_j, t_k) - d(p_k, t_j)        (mm, p predicted, t true)

divided by ``2 d(t_j, t_k)``, so that it lies in [-1, 1] (triangle inequality): -1 for perfect predictions,
+1 for perfect predictions of swapped joints, about 0 for predictions that cannot tell ``j`` from ``k``
(a mean pose collapsed towards the body's axis). A pair is taken for swapped when the median gain over
frames exceeds ``SWAP_GAIN`` *and* the swap helps in more than ``SWAP_FRAMES`` of the frames, beyond chance
(Wilson's one-sided 95 % lower bound of that fraction exceeds it, so that a handful of frames of a poor method
cannot refuse a file; a pair needs at least 6 frames, all helped, to be refused). The median and the
fraction of frames are robust to a noisy method: its errors scatter the gain of a pair around a negative or
zero median instead of pushing it up in most frames. A joint moved elsewhere by a longer cycle
or shuffle makes its pair with the joint it now sits on swap-like too (triangle inequality), and the mean
joint distance under the best one-to-one reassignment (Hungarian) backs that up for whole shuffles. The
message names the joints of the refused pairs that sit nearer another joint's true place than their own.

Measured on the default synthetic run's test split (960 frames; MPJPE 142, 159, 194 mm): lifting, integral3d
and mean_pose reach a median gain of at most 0.00 and at most 53 % of the frames on any pair; each single
left/right swap of lifting's file (hips, knees, ankles, shoulders, elbows, wrists) gives 0.26 (wrists) to
0.58 and 82 % to 87 % of the frames (docs/reliability.md: the numbers and the commands that print them;
``tests/test_reliability.py``: the same on poses of the synthetic world and a method with a real one's
kinds of error).
"""

from __future__ import annotations

import os

import numpy as np
from scipy.optimize import linear_sum_assignment

from patchpose.poses3d.errors import PredictionFileError, preview
from patchpose.skeleton import H36M

__all__ = [
    "CONFIDENCE_Z",
    "MISMATCH_RATIO",
    "MISMATCH_MARGIN_MM",
    "SWAP_GAIN",
    "SWAP_FRAMES",
    "frames_lower_bound",
    "swap_gains",
    "check_joint_order",
]

SWAP_GAIN = 0.1  # median swap gain (fraction of twice the pair's distance) above which a pair looks swapped ...
SWAP_FRAMES = 2 / 3  # ... when, in addition, the swap helps in more than this fraction of the frames ...
CONFIDENCE_Z = 1.645  # ... beyond chance: Wilson's one-sided 95 % lower bound of that fraction exceeds it
MISMATCH_RATIO = 1.5  # whole order: mean joint distance as declared above 1.5 x the best reassignment's ...
MISMATCH_MARGIN_MM = 20.0  # ... and above it by 20 mm per joint: refused
_MAX_FRAMES = 2000  # frames used (evenly spaced), enough for a stable median


def _centred(poses: np.ndarray) -> np.ndarray:
    return poses - poses.mean(axis=1, keepdims=True)


def _distances(poses_mm: np.ndarray, ground_truth_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cross, own)``: (N, 17 predicted, 17 true) distances after centring, and their diagonal (N, 17)."""
    pred, truth = _centred(poses_mm), _centred(ground_truth_mm)
    cross = np.linalg.norm(pred[:, :, None] - truth[:, None, :], axis=-1)
    return cross, np.diagonal(cross, axis1=1, axis2=2)


def swap_gains(poses_mm: np.ndarray, ground_truth_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(median_gain, frames_better)``, both (17, 17): per joint pair, the median normalised swap gain over
    frames and the fraction of frames in which the swap lowers the summed distance (module docstring).

    Both inputs (N, 17, 3) mm, row ``i`` the same frame, any translation. The diagonals are -1 and 0.
    """
    return _swap_gains(*_distances(poses_mm, ground_truth_mm), ground_truth_mm)


def _swap_gains(cross: np.ndarray, own: np.ndarray, ground_truth_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``swap_gains`` from the distances ``_distances`` gives."""
    truth = _centred(ground_truth_mm)
    apart = np.linalg.norm(truth[:, :, None] - truth[:, None, :], axis=-1)  # (N, 17, 17)
    gain = own[:, :, None] + own[:, None, :] - cross - cross.transpose(0, 2, 1)
    median = np.median(gain / np.maximum(2 * apart, 1e-9), axis=0)
    better = (gain > 0).mean(axis=0)
    np.fill_diagonal(median, -1.0)
    return median, better


def frames_lower_bound(fraction: np.ndarray, frames: int, z: float = CONFIDENCE_Z) -> np.ndarray:
    """Wilson's lower confidence bound of a fraction observed in ``frames`` frames (elementwise)."""
    centre = fraction + z * z / (2 * frames)
    spread = z * np.sqrt(fraction * (1 - fraction) / frames + z * z / (4 * frames * frames))
    return (centre - spread) / (1 + z * z / frames)


def check_joint_order(path: str | os.PathLike, poses_mm: np.ndarray, ground_truth_mm: np.ndarray) -> dict:
    """Compare the declared joint order of ``poses_mm`` with ``ground_truth_mm``, pair by pair of joints.

    Both (N, 17, 3) mm, camera frame, ``H36M`` order, row ``i`` the same frame. Returns a report: the mean
    joint distance (centroid-aligned) as declared and under the best reassignment, and the most swap-like
    pair with its median gain and fraction of frames. Raises ``PredictionFileError`` naming ``path`` when a
    pair looks swapped or the best reassignment is clearly better (the message names the joints).
    """
    rows = np.unique(np.linspace(0, poses_mm.shape[0] - 1, min(_MAX_FRAMES, poses_mm.shape[0])).round().astype(int))
    pred, truth = poses_mm[rows], ground_truth_mm[rows]
    cross, own = _distances(pred, truth)
    cost = cross.mean(axis=0)  # (17 predicted, 17 true), mean over frames
    _, best = linear_sum_assignment(cost)
    declared_mm = float(np.trace(cost) / cost.shape[0])
    best_mm = float(cost[np.arange(cost.shape[0]), best].mean())
    median, better = _swap_gains(cross, own, truth)
    upper = np.triu(np.ones_like(median, dtype=bool), k=1)
    j, k = np.unravel_index(np.argmax(np.where(upper, median, -np.inf)), median.shape)
    names = H36M.joint_names
    report = {
        "declared_order_error_mm": declared_mm,
        "best_order_error_mm": best_mm,
        "most_swap_like_pair": f"{names[j]}/{names[k]}",
        "most_swap_like_gain": float(median[j, k]),
        "most_swap_like_frames": float(better[j, k]),
    }
    flagged = np.argwhere(upper & (median > SWAP_GAIN) & (frames_lower_bound(better, len(rows)) > SWAP_FRAMES))
    reordered = declared_mm > MISMATCH_RATIO * best_mm and declared_mm - best_mm > MISMATCH_MARGIN_MM
    if len(flagged) or reordered:
        pairs = sorted(map(tuple, flagged.tolist()), key=lambda pair: -median[pair])  # the most swap-like first
        if len(pairs) == 1:
            ((a, b),) = pairs
            found = (
                f"{names[a]} and {names[b]} look swapped: trading places brings both nearer the ground truth in "
                f"{better[a, b]:.0%} of the frames, by a median {median[a, b]:.0%} of their distance"
            )
        elif pairs:
            # the joints of the refused pairs that sit nearer another joint's true place than their own (a joint
            # in line between two moved ones can make a swap-like pair with either and still be in its place)
            elsewhere = (np.median(own[:, :, None] - cross, axis=0) > 0).any(axis=1)  # (17,)
            joints = sorted({j for pair in pairs for j in pair if elsewhere[j]} or set(flagged.ravel()))
            listed = [f"{names[a]}/{names[b]} ({better[a, b]:.0%} of the frames, {median[a, b]:.0%})" for a, b in pairs]
            found = (
                f"{len(joints)} joints seem misplaced ({', '.join(names[j] for j in joints)}): trading the places "
                f"of a pair of them brings both nearer the ground truth in most frames, by a median share of their "
                f"distance: {preview(listed, 6)}"
            )
        else:
            found = "; ".join(f"{names[a]} looks like {names[b]}" for a, b in enumerate(best) if a != b)
        raise PredictionFileError(
            path,
            f"the joints do not seem to be in the declared order: {found}; mean joint distance to the ground truth "
            f"{declared_mm:.0f} mm as declared, {best_mm:.0f} mm reordered; check the file's joint_names (or the "
            "baseline's joint_names setting)",
        )
    return report
