"""Batched cutting of axis-aligned patches from RGB frames and segmentations, in one pass, without aliasing.

``cut_patches(rgb, segmentation, affines, size)`` resamples, for every frame of a batch and every one of
its P patches, both modalities through the patch's affine (patch px -> frame px, pixel centres at
integers; ``patchpose.crop_geometry``), zeros wherever a tap falls outside the frame. Per patch and axis,
the sampling step s = |affine scale| (frame px per patch px) decides how:

* **s <= 1 + 1/size** (the box is at most one frame px wider than the patch: upsampling, or native size
  to within one px over the whole patch, e.g. the paper's 64.4 px minimum box in a 64 px patch): one
  bilinear tap at each patch pixel centre. This computes what ``patchpose.crop_geometry.warp_crop``
  (OpenCV ``warpAffine``, one patch of one modality per call) computes, to within rounding
  (tests/test_patches_sampler.py).
* **s > 1 + 1/size** (downscaling): the area average of the patch pixel's footprint, an s x s frame px
  square, so that textures finer than the patch's Nyquist limit (the world's limb rings, foreshortened)
  average out instead of aliasing into coarser false patterns. It is supersampled: k = ceil(s) bilinear
  taps per axis at the centres of k equal sub-intervals of the footprint, tap spacing s / k <= 1 frame
  px, so no frame pixel is skipped; the patch pixel is their mean, rounded once. (k is capped at
  ``MAX_SUPERSAMPLED_SIDE`` // size, 16 for 64 px patches; beyond that step the taps thin out.) For an
  integer s on pixel-aligned boxes that is exactly the mean of the s x s frame pixels under the footprint
  (OpenCV's ``INTER_AREA``); otherwise a box of width s smoothed by the taps' bilinear kernel. Taps
  outside the frame read zeros, so a footprint across the frame edge averages them in. The segmentation
  (colour-coded expected palette, linear in the part probabilities) is averaged the same way, which
  averages the probabilities. Both axes are decided separately (``square=False`` boxes).

Implementation:

* the sampling positions of the whole batch are computed at once (numpy, float32 maps: x depends on the
  patch column only, y on the patch row only, since the affines are axis aligned), rounded to a
  power-of-two grid fine enough (1/8192 px at 128 px frames) that float32 holds them exactly wherever
  the frame sits in the batch, so a frame's patches do not depend on the batch;
* per group of frames, one ``cv2.remap`` call per modality cuts all their patches with one tap per
  pixel, with the same sampling maps for RGB and segmentation: the group's frames are stacked one below
  the other into one tall zero-bordered 4-channel image per modality (OpenCV's bilinear kernels are
  fastest for 4 channels), and each block of map rows points into one frame. Positions further outside
  a frame than one pixel are clamped into its 2-pixel zero border, so they read exact zeros and never a
  neighbouring frame;
* the downscaled patches are then cut again, frame by frame and grouped by their factors (k_x, k_y): the
  supersampling grid of a patch is the affine of the same box at (k_x size) x (k_y size) px, one
  ``cv2.remap`` per modality on the frame's zero-bordered slot converted to float32 (exact taps), then
  ``cv2.resize(INTER_AREA)`` by the integer factors (the exact k_y x k_x block means) and one rounding,
  overwriting those patches. Cost: patches with s <= 1 + 1/size cost what they cost before (one check of
  their scales); a downscaled patch costs its one-tap cut plus k_x k_y float taps per pixel and a block mean;
* memory: the group is a few frames (``group_frames``), the output is the caller's batch, a
  supersampling call holds at most ``_SUPERSAMPLE_BYTES`` of taps.

Shapes: rgb (B, H, W, 3) uint8 (the dataset's ``frames``), segmentation (B, 3, H, W) uint8 (the
segmentation store's ``encoded``), affines (B, P, 2, 3) float; returns (B, P, 6, size, size) uint8,
channels R, G, B of the frame then R, G, B of the colour-coded segmentation.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["CHANNELS", "MAX_SUPERSAMPLED_SIDE", "cut_patches", "group_frames", "supersampling_factors"]

CHANNELS = ("r", "g", "b", "seg_r", "seg_g", "seg_b")
MAX_SUPERSAMPLED_SIDE = 1024  # px: taps per axis of one supersampled patch at most (k <= this // size; 16 MiB)
_BORDER = 2  # zero px around each frame in the stacked image
_LANES = 4  # channels per pixel in the stacked image (RGB + one lane never read back)
_OPENCV_MAX_SIDE = 32767  # cv2.remap's limit (SHRT_MAX) on image and map sides
_MAX_GROUP = 8  # frames per remap call: keeps map coordinates small, so float32 holds them finely
_SUPERSAMPLE_BYTES = 32 * 2**20  # float32 taps held by one supersampling remap call, at most


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


def supersampling_factors(affines: np.ndarray, size: int) -> np.ndarray:
    """(..., 2) int (k_x, k_y): taps per axis that each patch pixel averages; 1 = one bilinear tap.

    affines: (..., 2, 3) axis aligned, patch px -> frame px, for ``size``² px patches. Per axis, with step
    s = |scale| frame px per patch px: 1 where s <= 1 + 1/size (the box is at most one frame px wider than
    the patch), else ceil(s), at most ``MAX_SUPERSAMPLED_SIDE // size`` (and at least 1).
    """
    steps = np.abs(np.stack([affines[..., 0, 0], affines[..., 1, 1]], axis=-1))
    limit = max(1, MAX_SUPERSAMPLED_SIDE // int(size))
    factors = np.minimum(np.ceil(steps), limit).astype(np.int64)
    return np.where(steps * size <= size + 1, 1, factors)


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


def _supersampled_axis(scale, offset, factor: int, size: int, extent: int, quantum: float) -> np.ndarray:
    """Frame px (…, factor * size) of the taps along one axis: the centres of ``factor`` equal sub-intervals
    of each patch pixel's footprint, i.e. the same box's affine at ``factor * size`` px."""
    return _sampling_axis(scale / factor, offset + scale * (0.5 / factor - 0.5), factor * size, extent, quantum)


def _downscale_frame(out, slots, affines, factors, size, frame_size, quantum) -> None:
    """Overwrite the patches of one frame whose ``factors`` (P, 2) exceed 1 with their supersampled area
    averages (module docstring). out: (P, 6, size, size) uint8; slots: (2, slot_rows, slot_cols, lanes)
    uint8, the frame's zero-bordered RGB and segmentation; affines: (P, 2, 3)."""
    height, width = frame_size
    chosen = np.flatnonzero(np.any(factors > 1, axis=-1))
    if len(chosen) == 0:
        return
    sources = [slots[modality].astype(np.float32) for modality in (0, 1)]  # exact taps, rounded once at the end
    kinds, which = np.unique(factors[chosen], axis=0, return_inverse=True)
    for kind, (kx, ky) in enumerate(kinds.tolist()):
        of_kind = chosen[which.reshape(-1) == kind]
        tap_bytes = size * size * kx * ky * _LANES * np.dtype(np.float32).itemsize  # per patch
        per_call = max(1, min(_SUPERSAMPLE_BYTES // tap_bytes, (_OPENCV_MAX_SIDE - 1) // (ky * size)))
        for first in range(0, len(of_kind), per_call):
            p = of_kind[first : first + per_call]
            m, a = len(p), affines[p]
            x = _supersampled_axis(a[:, 0, 0], a[:, 0, 2], kx, size, width, quantum)  # (m, kx size)
            y = _supersampled_axis(a[:, 1, 1], a[:, 1, 2], ky, size, height, quantum)  # (m, ky size)
            shape = (m, ky * size, kx * size)
            map_x = np.broadcast_to(x[:, None, :].astype(np.float32), shape).reshape(m * ky * size, kx * size)
            map_y = np.broadcast_to(y[:, :, None].astype(np.float32), shape).reshape(m * ky * size, kx * size)
            for modality, source in enumerate(sources):
                taps = cv2.remap(
                    source, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
                )
                means = cv2.resize(taps, (size, m * size), interpolation=cv2.INTER_AREA)  # the ky x kx block means
                means = np.rint(means.reshape(m, size, size, _LANES)[..., :3])
                out[p, 3 * modality : 3 * modality + 3] = means.transpose(0, 3, 1, 2)


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
    factors = supersampling_factors(affines, size)  # (B, P, 2)
    downscaled = np.any(factors > 1, axis=(1, 2))  # (B,) frames with a patch to area-average
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
        for i in np.flatnonzero(downscaled[start : start + n]):  # their downscaled patches, cut again
            _downscale_frame(out[start + i], stacked[:, i], a[i], factors[start + i], size, (height, width), quantum)
    return out
