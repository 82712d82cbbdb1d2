"""Batched bilinear cutting of axis-aligned patches from RGB frames and segmentations, in one pass.

``cut_patches(rgb, segmentation, affines, size)`` resamples, for every frame of a batch and every one of
its P patches, both modalities through the patch's affine (patch px -> frame px, pixel centres at
integers; ``patchpose.crop_geometry``): bilinear interpolation, zeros wherever a tap falls outside the
frame. It computes what ``patchpose.crop_geometry.warp_crop`` (OpenCV ``warpAffine``, one patch of one
modality per call) computes, to within rounding (tests/test_patches_sampler.py), but

* the sampling positions of the whole batch are computed at once (numpy, float32 maps: x depends on the
  patch column only, y on the patch row only, since the affines are axis aligned), rounded to a
  power-of-two grid fine enough (1/8192 px at 128 px frames) that float32 holds them exactly wherever
  the frame sits in the batch, so a frame's patches do not depend on the batch;
* per group of frames, one ``cv2.remap`` call per modality cuts all their patches, with the same
  sampling maps for RGB and segmentation: the group's frames are stacked one below the other into one
  tall zero-bordered 4-channel image per modality (OpenCV's bilinear kernels are fastest for 4
  channels), and each block of map rows points into one frame. Positions further outside a frame than
  one pixel are clamped into its 2-pixel zero border, so they read exact zeros and never a neighbouring
  frame;
* memory: the group is a few frames (``group_frames``), the output is the caller's batch.

Shapes: rgb (B, H, W, 3) uint8 (the dataset's ``frames``), segmentation (B, 3, H, W) uint8 (the
segmentation store's ``encoded``), affines (B, P, 2, 3) float; returns (B, P, 6, size, size) uint8,
channels R, G, B of the frame then R, G, B of the colour-coded segmentation.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["CHANNELS", "cut_patches", "group_frames"]

CHANNELS = ("r", "g", "b", "seg_r", "seg_g", "seg_b")
_BORDER = 2  # zero px around each frame in the stacked image
_LANES = 4  # channels per pixel in the stacked image (RGB + one lane never read back)
_OPENCV_MAX_SIDE = 32767  # cv2.remap's limit (SHRT_MAX) on image and map sides
_MAX_GROUP = 8  # frames per remap call: keeps map coordinates small, so float32 holds them finely


def group_frames(frame_size: tuple[int, int], patches_per_frame: int, size: int) -> int:
    """Frames cut per ``cv2.remap`` call: as many as OpenCV's side limits allow, at most ``_MAX_GROUP``."""
    stacked_rows = frame_size[0] + 2 * _BORDER
    map_rows = patches_per_frame * size
    fit = min((_OPENCV_MAX_SIDE - 1) // stacked_rows, (_OPENCV_MAX_SIDE - 1) // map_rows)
    if fit < 1 or size >= _OPENCV_MAX_SIDE or frame_size[1] + 2 * _BORDER >= _OPENCV_MAX_SIDE:
        raise ValueError(
            f"frames of {frame_size} px with {patches_per_frame} patches of {size} px exceed OpenCV's limits"
        )
    return min(fit, _MAX_GROUP)


def _check_inputs(rgb: np.ndarray, segmentation: np.ndarray, affines: np.ndarray, size: int) -> None:
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (B, H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    batch, height, width, _ = rgb.shape
    if segmentation.shape != (batch, 3, height, width) or segmentation.dtype != np.uint8:
        raise ValueError(
            f"segmentation must be {(batch, 3, height, width)} uint8, got {segmentation.shape} {segmentation.dtype}"
        )
    if affines.ndim != 4 or affines.shape[0] != batch or affines.shape[2:] != (2, 3):
        raise ValueError(f"affines must be ({batch}, P, 2, 3), got {affines.shape}")
    if not np.all(np.isfinite(affines)):
        raise ValueError("affines hold NaN or inf")
    if np.any(affines[..., 0, 1] != 0) or np.any(affines[..., 1, 0] != 0):
        raise ValueError("affines must be axis aligned (no rotation or shear)")
    if size < 1:
        raise ValueError(f"patch size must be >= 1 px, got {size}")


def _position_quantum(largest_coordinate: int) -> float:
    """The finest power-of-two grid (px) on which float32 holds every position up to ``largest_coordinate``
    exactly. Positions on it keep their fractional part when a frame's slot offset is added, so a patch does
    not depend on where its frame sits in the stacked image (it is 1/8192 px for 128 px frames)."""
    return 2.0 ** -(np.finfo(np.float32).nmant + 1 - int(np.ceil(np.log2(largest_coordinate + 1))))


def _sampling_axis(scale: np.ndarray, offset: np.ndarray, size: int, extent: int, quantum: float) -> np.ndarray:
    """Frame px (…, size) of patch px 0..size-1 along one axis, clamped into the 2 px zero border,
    shifted by the border and rounded to ``quantum``."""
    positions = scale[..., None] * np.arange(size) + offset[..., None]
    return np.round((np.clip(positions, -_BORDER, extent) + _BORDER) / quantum) * quantum


def cut_patches(rgb: np.ndarray, segmentation: np.ndarray, affines: np.ndarray, size: int) -> np.ndarray:
    """(B, P, 6, size, size) uint8 patches of both modalities; see the module docstring."""
    rgb, segmentation = np.ascontiguousarray(rgb), np.ascontiguousarray(segmentation)  # OpenCV reads them
    affines = np.asarray(affines, dtype=np.float64)
    size = int(size)
    _check_inputs(rgb, segmentation, affines, size)
    batch, height, width, _ = rgb.shape
    patches_per_frame = affines.shape[1]
    out = np.empty((batch, patches_per_frame, 6, size, size), dtype=np.uint8)
    group = group_frames((height, width), patches_per_frame, size)
    slot_rows, slot_cols = height + 2 * _BORDER, width + 2 * _BORDER
    # per modality, the group's frames one below the other, each in a zero border, 4 lanes per pixel
    stacked = np.zeros((2, group, slot_rows, slot_cols, _LANES), dtype=np.uint8)  # (modality, frame, y, x, lane)
    map_x = np.empty((group, patches_per_frame, size, size), dtype=np.float32)
    map_y = np.empty_like(map_x)
    slot_top = np.arange(group)[:, None, None, None] * slot_rows  # first row of each frame's slot
    quantum = _position_quantum(max(group * slot_rows, slot_cols))
    cut = np.empty((group * patches_per_frame * size, size, _LANES), dtype=np.uint8)
    inner = (slice(_BORDER, _BORDER + height), slice(_BORDER, _BORDER + width))
    for start in range(0, batch, group):
        n = min(group, batch - start)
        for i in range(n):  # OpenCV writes the 4-lane pixels in place; the 4th lane is never read back
            rgb_slot, segmentation_slot = stacked[0, i, inner[0], inner[1]], stacked[1, i, inner[0], inner[1]]
            cv2.cvtColor(rgb[start + i], cv2.COLOR_RGB2RGBA, dst=rgb_slot)
            planes = segmentation[start + i]
            cv2.merge([planes[0], planes[1], planes[2], planes[2]], dst=segmentation_slot)
        a = affines[start : start + n]
        x = _sampling_axis(a[..., 0, 0], a[..., 0, 2], size, width, quantum)  # (n, P, size) over patch columns
        y = _sampling_axis(a[..., 1, 1], a[..., 1, 2], size, height, quantum)  # (n, P, size) over patch rows
        map_x[:n] = x[:, :, None, :]
        map_y[:n] = y[:, :, :, None] + slot_top[:n]
        rows = n * patches_per_frame * size
        # (n * P, 6, size * size) view of this group's output: one row per patch, one plane per channel
        planar = out[start : start + n].reshape(n * patches_per_frame, 6, size * size)
        for modality in range(2):  # the same sampling maps cut RGB and segmentation
            cv2.remap(
                stacked[modality, :n].reshape(n * slot_rows, slot_cols, _LANES),
                map_x[:n].reshape(rows, size),
                map_y[:n].reshape(rows, size),
                interpolation=cv2.INTER_LINEAR,
                dst=cut[:rows],
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
            colours = [planar[:, 3 * modality + colour] for colour in range(3)]
            cv2.mixChannels(
                [cut[:rows].reshape(n * patches_per_frame, size * size, _LANES)], colours, [0, 0, 1, 1, 2, 2]
            )
    return out
