"""Limb patches labelled with the sign of the limb's depth difference: data for the cue test.

The cue test (``benchmarks/cue_test.py``) asks whether a single limb patch, cut the paper's way
(§3.2, §4.1: the tight box of the limb's two ground-truth 2D endpoints, padded to ``min_side``,
enlarged by ``scale``, padded to a square and resampled to ``out_size``²), shows which end of the
limb is nearer the camera. This module cuts the patches and computes the labels; it knows nothing
about the classifier.

Label convention (camera frame, mm, camera centre at the origin). For limb ``k = (child, parent)``
of ``H36M.limbs`` with endpoints ``c`` and ``p``, limb vector ``d = c - p``, midpoint ``m = (c + p) / 2``
and viewing ray ``r = m / |m|`` through the midpoint:

* ``toward``: the child is nearer the camera centre than the parent, ``|c| < |p|``. Since
  ``|c|² - |p|² = 2 d . m``, this is ``d . r < 0``: the limb points back along the viewing ray.
  A limb exactly perpendicular to the ray (``d . r = 0``) counts as away (False).
* ``elevation_deg``: the angle in [0, 90] between ``d`` and the plane perpendicular to ``r``,
  ``asin(|d . r| / |d|)``: 0 for a limb seen side-on (no depth difference along the ray, chance is
  the best anyone can do), 90 for a limb pointing straight along the ray. The signed elevation
  ``where(toward, elevation_deg, -elevation_deg)`` is the angle toward the camera.

This is the sign of the limb's extent along the viewing ray, which is what the local appearance of a
limb (foreshortened rings, shading along it) can show. It differs from the sign of the camera-frame
z difference ``c_z - p_z`` only for limbs nearly perpendicular to an off-axis ray (``toward_z`` below
reports that one too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from patchpose.crop_geometry import apply_affine, invert_affine, limb_boxes, limb_patch_affines, warp_crop
from patchpose.parts import LIMB_PART, PART_NAMES
from patchpose.skeleton import H36M

__all__ = [
    "ARM_LEG_LIMBS",
    "ELEVATION_BINS",
    "PAPER_MIN_SIDE_AT_256",
    "PAPER_SCALE",
    "LimbDepthSamples",
    "BinStats",
    "limb_depth_labels",
    "limb_patches",
    "limb_depth_samples",
    "brighter_end_guesses",
    "balanced_accuracy",
    "accuracy_by_elevation",
]

_ARM_LEG_PARTS = {
    PART_NAMES.index(f"{side}_{segment}")
    for side in ("left", "right")
    for segment in ("upper_arm", "lower_arm", "upper_leg", "lower_leg")
}
# Limb indices (into ``H36M.limbs``) of the upper/lower arms and legs: (1, 2, 4, 5, 11, 12, 14, 15).
ARM_LEG_LIMBS: tuple[int, ...] = tuple(int(k) for k in np.flatnonzero(np.isin(LIMB_PART, list(_ARM_LEG_PARTS))))
# Elevation bin edges, degrees; the last bin includes 90.
ELEVATION_BINS: tuple[float, ...] = (0.0, 15.0, 30.0, 60.0, 90.0)
PAPER_MIN_SIDE_AT_256 = 28.0  # px at a 256² frame; scale with the frame size
PAPER_SCALE = 2.3
_FRAME_CHUNK = 256  # frames read from a store at a time


class LimbDepthSamples(NamedTuple):
    """One sample per (frame, limb), frame-major then in the order of ``limbs``; M = frames x limbs.

    patches: (M, out, out, 3) uint8 RGB. toward: (M,) bool, child nearer the camera centre than the
    parent (module docstring). elevation_deg: (M,) float64 in [0, 90]. limb: (M,) int64 index into
    ``H36M.limbs``. frame: (M,) int64 row of the source. endpoints: (M, 2, 2) float64 patch px (x, y) of
    the (child, parent) joints, pixel centres at integers. toward_z: (M,) bool, child's camera-frame
    z smaller than the parent's (for comparison only).
    """

    patches: np.ndarray
    toward: np.ndarray
    elevation_deg: np.ndarray
    limb: np.ndarray
    frame: np.ndarray
    endpoints: np.ndarray
    toward_z: np.ndarray


def _check_limbs(limbs: Sequence[int]) -> np.ndarray:
    limbs = np.asarray(limbs, dtype=np.int64).reshape(-1)
    if limbs.size == 0 or limbs.min() < 0 or limbs.max() >= H36M.num_limbs:
        raise ValueError(f"limbs must be indices in [0, {H36M.num_limbs}), got {limbs.tolist()}")
    return limbs


def limb_depth_labels(joints_3d: np.ndarray, limbs: Sequence[int] = ARM_LEG_LIMBS):
    """Labels of ``limbs`` from camera-frame joints (N, 17, 3) mm.

    Returns ``toward`` (N, L) bool, ``elevation_deg`` (N, L) float64 in [0, 90] and ``toward_z``
    (N, L) bool, as defined in the module docstring. Raises ``ValueError`` for a zero-length limb or a
    midpoint at the camera centre.
    """
    joints_3d = np.asarray(joints_3d, dtype=np.float64)
    if joints_3d.ndim != 3 or joints_3d.shape[1:] != (H36M.num_joints, 3):
        raise ValueError(f"joints_3d must be (N, 17, 3), got {joints_3d.shape}")
    limbs = _check_limbs(limbs)
    child = joints_3d[:, H36M.limb_children[limbs]]
    parent = joints_3d[:, H36M.limb_parents[limbs]]
    d, m = child - parent, (child + parent) / 2
    d_norm, m_norm = np.linalg.norm(d, axis=-1), np.linalg.norm(m, axis=-1)
    if not (np.all(d_norm > 0) and np.all(m_norm > 0)):
        raise ValueError("joints_3d holds a zero-length limb or a limb centred on the camera")
    along = np.einsum("nlk,nlk->nl", d, m) / m_norm  # d . r, mm
    elevation = np.degrees(np.arcsin(np.clip(np.abs(along) / d_norm, 0.0, 1.0)))
    return along < 0, elevation, child[..., 2] < parent[..., 2]


def limb_patches(
    frames: np.ndarray,
    joints_2d: np.ndarray,
    limbs: Sequence[int] = ARM_LEG_LIMBS,
    out_size: int = 64,
    min_side: float | None = None,
    scale: float = PAPER_SCALE,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the paper's square limb patches around ground-truth 2D endpoints.

    frames: (N, H, W, 3) uint8; joints_2d: (N, 17, 2) frame px. min_side: None -> 28 * H / 256
    (the paper's 28 px at 256²). interpolation: an OpenCV flag (``cv2.INTER_NEAREST`` for label maps).
    Returns patches (N, L, out, out, 3) uint8 (zeros outside the frame)
    and endpoints (N, L, 2, 2) patch px of (child, parent).
    """
    frames, joints_2d = np.asarray(frames), np.asarray(joints_2d, dtype=np.float64)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) != len(joints_2d):
        raise ValueError(f"frames must be (N, H, W, 3) matching joints_2d's N, got {frames.shape}, {joints_2d.shape}")
    limbs = _check_limbs(limbs)
    if min_side is None:
        min_side = PAPER_MIN_SIDE_AT_256 * frames.shape[1] / 256
    centres, sizes = limb_boxes(joints_2d, min_side, scale)
    affines = limb_patch_affines(centres[:, limbs], sizes[:, limbs], out_size, square=True)  # (N, L, 2, 3)
    ends = np.stack([joints_2d[:, H36M.limb_children[limbs]], joints_2d[:, H36M.limb_parents[limbs]]], axis=2)
    endpoints = apply_affine(invert_affine(affines), ends)  # (N, L, 2, 2)
    patches = np.zeros((len(frames), len(limbs), out_size, out_size, 3), dtype=np.uint8)
    for n in range(len(frames)):
        image = np.ascontiguousarray(frames[n])
        for j in range(len(limbs)):
            patches[n, j] = warp_crop(image, affines[n, j], out_size, interpolation)
    return patches, endpoints


def _source_arrays(source):
    """(joints_2d, joints_3d, read_frames(indices)) of a store path, a store, or a mapping of arrays."""
    if isinstance(source, str | os.PathLike):
        from patchpose.dataset_format import open_dataset

        source = open_dataset(source)
    if isinstance(source, Mapping):
        frames = np.asarray(source["frames"])
        return np.asarray(source["joints_2d"]), np.asarray(source["joints_3d"]), lambda idx: frames[idx]
    return np.asarray(source.joints_2d), np.asarray(source.joints_3d), source.read_frames


def limb_depth_samples(
    source,
    limbs: Sequence[int] = ARM_LEG_LIMBS,
    out_size: int = 64,
    min_side: float | None = None,
    scale: float = PAPER_SCALE,
    frames: Sequence[int] | None = None,
) -> LimbDepthSamples:
    """Patches and depth-sign labels of ``limbs`` in the frames of ``source``.

    source: a dataset store path, an opened store (``joints_2d``, ``joints_3d``, ``read_frames``) or
    a mapping with ``frames`` (N, H, W, 3) uint8, ``joints_2d`` (N, 17, 2) crop px and ``joints_3d``
    (N, 17, 3) camera-frame mm. frames: rows to use (default all). Other arguments as ``limb_patches``.
    Frames are read a chunk at a time, so only the patches are held in memory.
    """
    joints_2d, joints_3d, read_frames = _source_arrays(source)
    limbs = _check_limbs(limbs)
    rows = np.arange(len(joints_2d)) if frames is None else np.asarray(frames, dtype=np.int64).reshape(-1)
    toward, elevation, toward_z = limb_depth_labels(joints_3d[rows], limbs)
    patches, endpoints = [], []
    for start in range(0, len(rows), _FRAME_CHUNK):
        chunk = rows[start : start + _FRAME_CHUNK]
        cut, ends = limb_patches(read_frames(chunk), joints_2d[chunk], limbs, out_size, min_side, scale)
        patches.append(cut.reshape(-1, out_size, out_size, 3))
        endpoints.append(ends.reshape(-1, 2, 2))
    if not patches:
        patches, endpoints = [np.zeros((0, out_size, out_size, 3), np.uint8)], [np.zeros((0, 2, 2))]
    return LimbDepthSamples(
        patches=np.concatenate(patches),
        toward=toward.reshape(-1),
        elevation_deg=elevation.reshape(-1),
        limb=np.tile(limbs, len(rows)),
        frame=np.repeat(rows, len(limbs)),
        endpoints=np.concatenate(endpoints),
        toward_z=toward_z.reshape(-1),
    )


def brighter_end_guesses(
    frames: np.ndarray,
    part_labels: np.ndarray,
    joints_2d: np.ndarray,
    limbs: Sequence[int] = ARM_LEG_LIMBS,
    end_fraction: float = 0.4,
    min_pixels: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed rule, no learning: the end of the limb whose own pixels are brighter is the nearer one.

    For limb ``k`` of each frame, the pixels labelled with the limb's part (``part_labels``, ground truth)
    are split by their projection onto the 2D segment parent -> child: those within ``end_fraction`` of
    the segment from the parent and those within ``end_fraction`` of it from the child. The guess is
    ``toward`` (child nearer) when the child end's mean luminance (mean of R, G, B) is the higher.
    frames: (N, H, W, 3) uint8; part_labels: (N, H, W); joints_2d: (N, 17, 2) frame px.
    Returns guesses (N, L) bool and valid (N, L) bool: False where either end has fewer than
    ``min_pixels`` of the limb's pixels (hidden, or a limb shorter than 2 px), whose guess is False.
    """
    frames, part_labels = np.asarray(frames), np.asarray(part_labels)
    joints_2d = np.asarray(joints_2d, dtype=np.float64)
    if frames.ndim != 4 or frames.shape[-1] != 3 or part_labels.shape != frames.shape[:3]:
        raise ValueError(f"frames (N, H, W, 3) and part_labels (N, H, W) must match, got {frames.shape}, "
                         f"{part_labels.shape}")  # fmt: skip
    if joints_2d.shape != (len(frames), H36M.num_joints, 2):
        raise ValueError(f"joints_2d must be ({len(frames)}, {H36M.num_joints}, 2), got {joints_2d.shape}")
    if not 0 < end_fraction <= 0.5:
        raise ValueError(f"end_fraction must lie in (0, 0.5], got {end_fraction}")
    limbs = _check_limbs(limbs)
    ys, xs = np.mgrid[0 : frames.shape[1], 0 : frames.shape[2]].astype(np.float64)
    guesses = np.zeros((len(frames), len(limbs)), dtype=bool)
    valid = np.zeros_like(guesses)
    for n in range(len(frames)):
        luminance = frames[n].astype(np.float64).mean(axis=-1)
        for j, k in enumerate(limbs):
            parent, child = joints_2d[n, H36M.limb_parents[k]], joints_2d[n, H36M.limb_children[k]]
            axis = child - parent
            length2 = float(axis @ axis)
            mine = part_labels[n] == LIMB_PART[k]
            if length2 < 4.0 or not mine.any():
                continue
            t = ((xs[mine] - parent[0]) * axis[0] + (ys[mine] - parent[1]) * axis[1]) / length2
            values = luminance[mine]
            near_parent = values[(t >= 0.0) & (t <= end_fraction)]
            near_child = values[(t >= 1.0 - end_fraction) & (t <= 1.0)]
            if min(near_parent.size, near_child.size) < min_pixels:
                continue
            valid[n, j] = True
            guesses[n, j] = near_child.mean() > near_parent.mean()
    return guesses, valid


@dataclass(frozen=True)
class BinStats:
    """Accuracy of one elevation bin [low, high) (the last bin includes its high edge).

    count: samples in the bin. toward_fraction: fraction labelled toward. accuracy: fraction predicted
    right. balanced_accuracy: mean over the two classes of the fraction of that class predicted right
    (chance = 0.5 whatever the class balance; NaN unless both classes occur). NaN fields for an empty bin.
    """

    low: float
    high: float
    count: int
    toward_fraction: float
    accuracy: float
    balanced_accuracy: float


def balanced_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-class recall of boolean predictions; NaN unless both classes occur in ``truth``."""
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted and truth must have one shape, got {predicted.shape}, {truth.shape}")
    if truth.all() or not truth.any():
        return float("nan")
    return float((predicted[truth].mean() + (~predicted[~truth]).mean()) / 2)


def accuracy_by_elevation(
    predicted: np.ndarray,
    truth: np.ndarray,
    elevation_deg: np.ndarray,
    edges: Sequence[float] = ELEVATION_BINS,
) -> list[BinStats]:
    """Per elevation bin (consecutive ``edges``, degrees) plus a final all-samples row
    (low = edges[0], high = edges[-1]): counts, class balance, accuracy and balanced accuracy."""
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    elevation_deg = np.asarray(elevation_deg, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    if not (predicted.shape == truth.shape == elevation_deg.shape) or predicted.ndim != 1:
        raise ValueError("predicted, truth and elevation_deg must be 1-D of one length")
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be increasing, got {edges.tolist()}")
    # bin b holds [edges[b], edges[b+1]); the last bin also holds its upper edge
    which = np.searchsorted(edges, elevation_deg, side="right") - 1
    which[elevation_deg == edges[-1]] = len(edges) - 2
    bins = [(edges[b], edges[b + 1], which == b) for b in range(len(edges) - 1)]
    bins.append((edges[0], edges[-1], (elevation_deg >= edges[0]) & (elevation_deg <= edges[-1])))
    stats = []
    for low, high, mask in bins:
        count = int(mask.sum())
        nan = float("nan")
        stats.append(
            BinStats(
                low=float(low),
                high=float(high),
                count=count,
                toward_fraction=float(truth[mask].mean()) if count else nan,
                accuracy=float((predicted[mask] == truth[mask]).mean()) if count else nan,
                balanced_accuracy=balanced_accuracy(predicted[mask], truth[mask]) if count else nan,
            )
        )
    return stats
