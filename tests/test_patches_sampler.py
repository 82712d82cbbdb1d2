"""The batched sampler: agrees with OpenCV's per-patch warp and with exact bilinear sampling, frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from patchpose.crop_geometry import limb_boxes, limb_patch_affines, warp_crop
from patchpose.patches.sampler import cut_patches, group_frames


def _random_affines(rng, count: int, frame: int, size: int, square: bool = True) -> np.ndarray:
    """Limb-patch affines (count, 16, 2, 3) from joints scattered over and around the frame."""
    joints = rng.uniform(-0.2 * frame, 1.2 * frame, size=(count, 17, 2))
    centres, sizes = limb_boxes(joints, min_side=28 * frame / 256, scale=2.3)
    return limb_patch_affines(centres, sizes, size, square=square)


def _exact_bilinear(image: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """(size, size, C) float64 bilinear samples of ``image`` (H, W, C) at the affine-mapped patch pixel
    centres, taps outside the image reading 0: the definition the sampler implements."""
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    x = affine[0, 0] * u + affine[0, 1] * v + affine[0, 2]
    y = affine[1, 0] * u + affine[1, 1] * v + affine[1, 2]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    height, width = image.shape[:2]

    def tap(row, col):
        inside = ((row >= 0) & (row < height) & (col >= 0) & (col < width))[..., None]
        return image[np.clip(row, 0, height - 1), np.clip(col, 0, width - 1)].astype(np.float64) * inside

    top = tap(y0, x0) * (1 - fx) + tap(y0, x0 + 1) * fx
    bottom = tap(y0 + 1, x0) * (1 - fx) + tap(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def _smooth_image(rng, frame: int) -> np.ndarray:
    """(frame, frame, 3) uint8, gradients below ~12 levels/px and dark near the border: OpenCV builds that
    quantise sampling positions to 1/32 px then differ from exact sampling by less than half a level."""
    ys, xs = np.mgrid[0:frame, 0:frame] / frame
    window = np.sin(np.pi * (xs + 0.5 / frame)) * np.sin(np.pi * (ys + 0.5 / frame))
    phases = rng.uniform(0, 2 * np.pi, size=(3, 2))
    channels = [0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * xs + a) * np.cos(2 * np.pi * 1.2 * ys + b) for a, b in phases]
    return np.round(230 * window[..., None] ** 2 * np.stack(channels, -1)).astype(np.uint8)


@pytest.mark.parametrize("square", [True, False])
def test_agrees_with_opencv_per_patch_within_rounding(square):
    rng = np.random.default_rng(1)
    frame, size = 128, 64
    rgb = np.stack([_smooth_image(rng, frame) for _ in range(3)])
    segmentation = np.stack([_smooth_image(rng, frame) for _ in range(3)]).transpose(0, 3, 1, 2).copy()
    affines = _random_affines(rng, 3, frame, size, square)
    patches = cut_patches(rgb, segmentation, affines, size)
    assert patches.shape == (3, 16, 6, size, size) and patches.dtype == np.uint8
    assert patches.any() and not patches.all()  # content and zeros where boxes leave the frame
    for n in range(3):
        seg_image = np.ascontiguousarray(segmentation[n].transpose(1, 2, 0))
        for k in range(16):
            reference = np.concatenate(
                [warp_crop(rgb[n], affines[n, k], size), warp_crop(seg_image, affines[n, k], size)], -1
            )
            difference = np.abs(patches[n, k].transpose(1, 2, 0).astype(int) - reference)
            assert difference.max() <= 1, f"frame {n} limb {k}"


def test_equals_exact_bilinear_sampling_on_noise():
    rng = np.random.default_rng(2)
    frame, size = 96, 48
    rgb = rng.integers(0, 256, size=(2, frame, frame, 3), dtype=np.uint8)
    segmentation = rng.integers(0, 256, size=(2, 3, frame, frame), dtype=np.uint8)
    affines = _random_affines(rng, 2, frame, size)
    patches = cut_patches(rgb, segmentation, affines, size)
    for n in range(2):
        image = np.concatenate([rgb[n], segmentation[n].transpose(1, 2, 0)], -1)
        for k in range(16):
            exact = _exact_bilinear(image, affines[n, k], size).transpose(2, 0, 1)
            assert np.abs(patches[n, k] - exact).max() <= 0.5 + 1e-2, f"frame {n} limb {k}"


def test_batches_and_groups_do_not_change_the_result():
    # More frames than one remap group: cutting them together or one by one gives the same bytes.
    rng = np.random.default_rng(3)
    frame, size, count = 48, 32, 2 * group_frames((48, 48), 16, 32) + 3
    rgb = rng.integers(0, 256, size=(count, frame, frame, 3), dtype=np.uint8)
    segmentation = rng.integers(0, 256, size=(count, 3, frame, frame), dtype=np.uint8)
    affines = _random_affines(rng, count, frame, size)
    together = cut_patches(rgb, segmentation, affines, size)
    alone = np.concatenate(
        [cut_patches(rgb[n : n + 1], segmentation[n : n + 1], affines[n : n + 1], size) for n in range(count)]
    )
    assert np.array_equal(together, alone)


def test_far_outside_the_frame_reads_zeros_not_the_neighbouring_frame():
    frame, size, count = 32, 16, 6
    rgb = np.full((count, frame, frame, 3), 255, np.uint8)
    segmentation = np.full((count, 3, frame, frame), 255, np.uint8)
    below = limb_patch_affines(np.array([15.5, 15.5 + 3 * frame]), np.array([16.0, 16.0]), size)  # a frame lower
    right = limb_patch_affines(np.array([15.5 + 3 * frame, 15.5]), np.array([16.0, 16.0]), size)
    inside = limb_patch_affines(np.array([15.5, 15.5]), np.array([16.0, 16.0]), size)
    affines = np.tile(np.stack([below, right, inside]), (count, 1, 1, 1))
    patches = cut_patches(rgb, segmentation, affines, size)
    assert not patches[:, :2].any() and np.all(patches[:, 2] == 255)


def test_bad_inputs_are_rejected():
    rgb = np.zeros((2, 16, 16, 3), np.uint8)
    segmentation = np.zeros((2, 3, 16, 16), np.uint8)
    affines = np.tile(limb_patch_affines(np.array([8.0, 8.0]), np.array([8.0, 8.0]), 8), (2, 16, 1, 1))
    with pytest.raises(ValueError, match="rgb must be"):
        cut_patches(rgb[..., :2], segmentation, affines, 8)
    with pytest.raises(ValueError, match="segmentation must be"):
        cut_patches(rgb, segmentation.transpose(0, 2, 3, 1), affines, 8)
    with pytest.raises(ValueError, match="affines must be"):
        cut_patches(rgb, segmentation, affines[:1], 8)
    rotated = affines.copy()
    rotated[0, 0, 0, 1] = 0.1
    with pytest.raises(ValueError, match="axis aligned"):
        cut_patches(rgb, segmentation, rotated, 8)
    broken = affines.copy()
    broken[1, 3, 1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cut_patches(rgb, segmentation, broken, 8)
