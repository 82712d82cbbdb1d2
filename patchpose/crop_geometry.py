"""Crop geometry: person-centred frame crops, the paper's limb boxes, and their affines.

Pixel convention (both images): pixel centres at integer coordinates, pixel
``i`` spans ``[i - 0.5, i + 0.5]``. A crop affine ``A`` (2, 3) maps crop
pixels to original-image pixels: ``[x, y] = A @ [u, v, 1]``. A crop of side
``S`` original px centred at ``(cx, cy)`` and resampled to ``F`` px has
``s = S / F`` and ``A = [[s, 0, cx - S/2 + s/2], [0, s, cy - S/2 + s/2]]``.
"""

from __future__ import annotations

import cv2
import numpy as np

from patchpose.skeleton import H36M

__all__ = [
    "box_affine",
    "person_crop_affine",
    "jittered_person_crop_affine",
    "limb_boxes",
    "limb_patch_affines",
    "apply_affine",
    "invert_affine",
    "crop_pixel_grid",
    "warp_crop",
]


def box_affine(centre: np.ndarray, size: np.ndarray, out_size: int) -> np.ndarray:
    """Affines (..., 2, 3) mapping an ``out_size``² crop onto boxes of ``size`` (..., 2) = (width, height)
    original px centred at ``centre`` (..., 2): the crop's outer pixel edges land on the box's edges."""
    centre, size = np.asarray(centre, dtype=np.float64), np.asarray(size, dtype=np.float64)
    scale = size / out_size
    affine = np.zeros(centre.shape[:-1] + (2, 3))
    affine[..., 0, 0], affine[..., 1, 1] = scale[..., 0], scale[..., 1]
    affine[..., :, 2] = centre - size / 2 + scale / 2
    return affine


def _joint_box(joints_px, margin: float, frame_size: int, min_side_px: float):
    """(low, high, side): the joints' bounding box (N, 2) x (N, 2) px and the ground-truth crop side (N,) px."""
    joints_px = np.asarray(joints_px, dtype=np.float64)
    if joints_px.ndim != 3 or joints_px.shape[-1] != 2:
        raise ValueError(f"joints_px must be (N, J, 2), got {joints_px.shape}")
    if not np.all(np.isfinite(joints_px)):
        raise ValueError("joints_px holds NaN or inf")
    if margin < 1 or frame_size < 1:
        raise ValueError(f"margin must be >= 1 and frame_size >= 1, got {margin}, {frame_size}")
    low, high = joints_px.min(axis=1), joints_px.max(axis=1)
    return low, high, np.maximum(margin * (high - low).max(axis=1), min_side_px)


def person_crop_affine(joints_px: np.ndarray, margin: float, frame_size: int, min_side_px: float = 32.0) -> np.ndarray:
    """Square crop around each frame's joints (the ground-truth person box).

    joints_px: (N, J, 2) original-image px. The crop is centred on the joints'
    bounding-box centre with side ``margin * max(box width, box height)``
    (at least ``min_side_px``). Returns (N, 2, 3) float64 crop px -> original px.
    """
    low, high, side = _joint_box(joints_px, margin, frame_size, min_side_px)
    return box_affine((low + high) / 2, np.stack([side, side], axis=-1), frame_size)


def jittered_person_crop_affine(
    joints_px: np.ndarray,
    margin: float,
    frame_size: int,
    centre_noise: np.ndarray,
    log_scale_noise: np.ndarray,
    min_side_px: float = 32.0,
) -> np.ndarray:
    """``person_crop_affine``'s crop moved and rescaled by given noise, clamped so every joint stays inside.

    joints_px: (N, J, 2) original-image px. With S the ground-truth crop side (px) and c its centre:
    centre_noise (N, 2): the centre's shift (x, y) in units of S; log_scale_noise (N,): the natural log of
    the side's factor. The side is ``S * exp(log_scale_noise)``, at least the joints' larger box side (and
    ``min_side_px``); the centre ``c + centre_noise * S`` is then moved, per axis, the least distance that
    keeps every joint within the crop's outer pixel edges. Zero noise gives ``person_crop_affine``'s crop.
    Returns (N, 2, 3) float64 crop px -> original px.
    """
    low, high, side = _joint_box(joints_px, margin, frame_size, min_side_px)
    centre_noise, log_scale_noise = np.asarray(centre_noise, np.float64), np.asarray(log_scale_noise, np.float64)
    if centre_noise.shape != low.shape or log_scale_noise.shape != side.shape:
        raise ValueError(
            f"centre_noise must be {low.shape} and log_scale_noise {side.shape} for {len(low)} frames, got "
            f"{centre_noise.shape} and {log_scale_noise.shape}"
        )
    if not (np.all(np.isfinite(centre_noise)) and np.all(np.isfinite(log_scale_noise))):
        raise ValueError("centre_noise or log_scale_noise holds NaN or inf")
    extent = (high - low).max(axis=1)
    jittered = np.maximum(side * np.exp(log_scale_noise), np.maximum(extent, min_side_px))
    half = jittered[:, None] / 2
    centre = np.clip((low + high) / 2 + centre_noise * side[:, None], high - half, low + half)
    return box_affine(centre, np.stack([jittered, jittered], axis=-1), frame_size)


def limb_boxes(joints_2d: np.ndarray, min_side: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The paper's limb boxes (§3.2, §4.1) for the 16 limbs of ``H36M.limbs``.

    joints_2d: (N, 17, 2) px. Per limb: the tight box of its two endpoints, h x w, is centre-padded to
    max(min_side, h) x max(min_side, w) (the paper: 28 px at a 256² frame), then rescaled by ``scale``
    (paper: 2.3) about the limb centre. Returns centres (N, 16, 2) and sizes (N, 16, 2) = (width, height) px.
    """
    joints_2d = np.asarray(joints_2d, dtype=np.float64)
    if joints_2d.ndim != 3 or joints_2d.shape[1:] != (H36M.num_joints, 2):
        raise ValueError(f"joints_2d must be (N, 17, 2), got {joints_2d.shape}")
    if not np.all(np.isfinite(joints_2d)):
        raise ValueError("joints_2d holds NaN or inf")
    if min_side < 0 or scale <= 0:
        raise ValueError(f"min_side must be >= 0 and scale > 0, got {min_side}, {scale}")
    child, parent = joints_2d[:, H36M.limb_children], joints_2d[:, H36M.limb_parents]
    centres = (child + parent) / 2
    sizes = np.maximum(np.abs(child - parent), min_side) * scale
    return centres, sizes


def limb_patch_affines(centres: np.ndarray, sizes: np.ndarray, out_size: int, square: bool = True) -> np.ndarray:
    """Affines (..., 2, 3) from ``out_size``² patch px to frame px for limb boxes.

    square=True (our reading of "zero padded and enlarged"): the box is padded to a square of its longer
    side about its centre, so the aspect ratio is kept. square=False: the box is stretched to the square.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    if square:
        side = sizes.max(axis=-1, keepdims=True)
        sizes = np.concatenate([side, side], axis=-1)
    return box_affine(centres, sizes, out_size)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points (..., J, 2) through affines (..., 2, 3) -> (..., J, 2)."""
    affine, points = np.asarray(affine, dtype=np.float64), np.asarray(points, dtype=np.float64)
    return points @ np.swapaxes(affine[..., :, :2], -1, -2) + affine[..., None, :, 2]


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of affines (..., 2, 3): original px -> crop px."""
    affine = np.asarray(affine, dtype=np.float64)
    linear_inverse = np.linalg.inv(affine[..., :, :2])
    offset = -(linear_inverse @ affine[..., :, 2:])
    return np.concatenate([linear_inverse, offset], axis=-1)


def crop_pixel_grid(affine: np.ndarray, frame_size: int) -> np.ndarray:
    """Original-image px of every crop pixel centre: affine (2, 3) -> (F, F, 2) as (x, y)."""
    v, u = np.mgrid[0:frame_size, 0:frame_size].astype(np.float64)
    return apply_affine(affine, np.stack([u, v], axis=-1).reshape(1, -1, 2))[0].reshape(frame_size, frame_size, 2)


def warp_crop(
    image: np.ndarray, affine: np.ndarray, out_size: int, interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """Resample ``image`` (H, W[, C]) through one affine (2, 3) (crop px -> image px) to ``out_size``²;
    zeros where the crop leaves the image."""
    return cv2.warpAffine(
        image,
        np.asarray(affine, dtype=np.float64),
        (out_size, out_size),
        flags=interpolation | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
