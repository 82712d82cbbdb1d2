"""The batched sampler, frame by frame: one bilinear tap per pixel where a patch is at most native size (it
agrees with OpenCV's per-patch warp and with exact bilinear sampling), the area average of each pixel's
footprint where it is downscaled (hand-worked goldens, exact supersampling, gratings finer than the patch
can hold come out near their mean)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchpose.crop_geometry import box_affine, limb_boxes, limb_patch_affines, warp_crop
from patchpose.patches.sampler import MAX_SUPERSAMPLED_SIDE, cut_patches, group_frames, supersampling_factors


def _random_affines(rng, count: int, frame: int, size: int, square: bool = True) -> np.ndarray:
    """Limb-patch affines (count, 16, 2, 3) from joints scattered over and around the frame."""
    joints = rng.uniform(-0.2 * frame, 1.2 * frame, size=(count, 17, 2))
    centres, sizes = limb_boxes(joints, min_side=28 * frame / 256, scale=2.3)
    return limb_patch_affines(centres, sizes, size, square=square)


def _factor(step: float, size: int) -> int:
    """Taps per axis by the rule of the sampler's docstring: 1 up to one frame px wider than the patch."""
    return 1 if abs(step) * size <= size + 1 else math.ceil(abs(step))


def _factors(affine: np.ndarray, size: int) -> tuple[int, int]:
    return _factor(affine[0, 0], size), _factor(affine[1, 1], size)


def _fine_affine(affine: np.ndarray, size: int, kx: int, ky: int) -> np.ndarray:
    """The affine of the same box (outer pixel edges) at kx size x ky size px, from crop_geometry.box_affine."""
    box = np.array([affine[0, 0], affine[1, 1]]) * size
    centre = affine[:, 2] - np.array([affine[0, 0], affine[1, 1]]) / 2 + box / 2
    x_row, y_row = box_affine(centre, box, kx * size)[0], box_affine(centre, box, ky * size)[1]
    return np.stack([x_row, y_row])


def _exact_bilinear(image: np.ndarray, affine: np.ndarray, size) -> np.ndarray:
    """(height, width, C) float64 bilinear samples of ``image`` (H, W, C) at the affine-mapped patch pixel
    centres (size = width = height, or (width, height)), taps outside the image reading 0."""
    width, height = (size, size) if np.isscalar(size) else size
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    x = affine[0, 0] * u + affine[0, 1] * v + affine[0, 2]
    y = affine[1, 0] * u + affine[1, 1] * v + affine[1, 2]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    rows, cols = image.shape[:2]

    def tap(row, col):
        inside = ((row >= 0) & (row < rows) & (col >= 0) & (col < cols))[..., None]
        return image[np.clip(row, 0, rows - 1), np.clip(col, 0, cols - 1)].astype(np.float64) * inside

    top = tap(y0, x0) * (1 - fx) + tap(y0, x0 + 1) * fx
    bottom = tap(y0 + 1, x0) * (1 - fx) + tap(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def _exact_patch(image: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """(size, size, C) float64: the definition the sampler implements. Per pixel the mean of kx x ky exact
    bilinear taps on the same box sampled at kx size x ky size px (one tap where kx = ky = 1)."""
    kx, ky = _factors(affine, size)
    taps = _exact_bilinear(image, _fine_affine(affine, size, kx, ky), (kx * size, ky * size))
    return taps.reshape(size, ky, size, kx, -1).mean(axis=(1, 3))


def _smooth_image(rng, frame: int) -> np.ndarray:
    """(frame, frame, 3) uint8, gradients below ~12 levels/px and dark near the border: OpenCV builds that
    quantise sampling positions to 1/32 px then differ from exact sampling by less than half a level."""
    ys, xs = np.mgrid[0:frame, 0:frame] / frame
    window = np.sin(np.pi * (xs + 0.5 / frame)) * np.sin(np.pi * (ys + 0.5 / frame))
    phases = rng.uniform(0, 2 * np.pi, size=(3, 2))
    channels = [0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * xs + a) * np.cos(2 * np.pi * 1.2 * ys + b) for a, b in phases]
    return np.round(230 * window[..., None] ** 2 * np.stack(channels, -1)).astype(np.uint8)


def _cut_one(image: np.ndarray, affines: np.ndarray, size: int) -> np.ndarray:
    """Patches (P, 6, size, size) of one RGB image (H, W, 3), with the same image as its segmentation."""
    return cut_patches(image[None], image.transpose(2, 0, 1)[None].copy(), affines[None], size)[0]


def _opencv_patch(image: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """OpenCV per patch: ``warp_crop`` where one tap per pixel; else warpAffine of the same box at kx size x
    ky size px, then an INTER_AREA resize by (kx, ky) (each tap rounded, then the mean: one rounding more)."""
    kx, ky = _factors(affine, size)
    if (kx, ky) == (1, 1):
        return warp_crop(image, affine, size)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    fine = cv2.warpAffine(image, _fine_affine(affine, size, kx, ky), (kx * size, ky * size), flags=flags)
    return cv2.resize(fine, (size, size), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("square", [True, False])
def test_agrees_with_opencv_per_patch_within_rounding(square):
    # At most native size: OpenCV's warpAffine of the patch. Downscaled: OpenCV's warpAffine of the same box at
    # kx size x ky size px, then its INTER_AREA resize by (kx, ky) (one rounding more than the sampler's).
    rng = np.random.default_rng(1)
    frame, size = 128, 64
    rgb = np.stack([_smooth_image(rng, frame) for _ in range(3)])
    segmentation = np.stack([_smooth_image(rng, frame) for _ in range(3)]).transpose(0, 3, 1, 2).copy()
    affines = _random_affines(rng, 3, frame, size, square)
    patches = cut_patches(rgb, segmentation, affines, size)
    assert patches.shape == (3, 16, 6, size, size) and patches.dtype == np.uint8
    assert patches.any() and not patches.all()  # content and zeros where boxes leave the frame
    kinds = set()
    for n in range(3):
        seg_image = np.ascontiguousarray(segmentation[n].transpose(1, 2, 0))
        for k in range(16):
            kx, ky = _factors(affines[n, k], size)
            kinds.add((kx, ky) != (1, 1))
            reference = np.concatenate([_opencv_patch(image, affines[n, k], size) for image in (rgb[n], seg_image)], -1)
            difference = np.abs(patches[n, k].transpose(1, 2, 0).astype(int) - reference)
            assert difference.max() <= 1, f"frame {n} limb {k}, factors {(kx, ky)}"
    assert kinds == {False, True}  # both paths were exercised


def test_equals_exact_sampling_on_noise():
    # Noise has no smoothness to hide behind: every pixel is the exact definition, rounded once.
    rng = np.random.default_rng(2)
    frame, size = 96, 48
    rgb = rng.integers(0, 256, size=(2, frame, frame, 3), dtype=np.uint8)
    segmentation = rng.integers(0, 256, size=(2, 3, frame, frame), dtype=np.uint8)
    affines = np.concatenate([_random_affines(rng, 2, frame, size), _random_affines(rng, 2, frame, size, False)], 1)
    patches = cut_patches(rgb, segmentation, affines, size)
    factors = set()
    for n in range(2):
        image = np.concatenate([rgb[n], segmentation[n].transpose(1, 2, 0)], -1)
        for k in range(affines.shape[1]):
            factors.add(_factors(affines[n, k], size))
            exact = _exact_patch(image, affines[n, k], size).transpose(2, 0, 1)
            assert np.abs(patches[n, k] - exact).max() <= 0.5 + 1e-2, f"frame {n} limb {k}"
    assert (1, 1) in factors and {2, 3} <= {k for pair in factors for k in pair}


def test_factors_by_hand():
    # size 64: a box up to 65 px (s <= 1 + 1/64) keeps one tap; 66 px -> 2; 128 px (s = 2) -> 2; 129 px -> 3;
    # each axis on its own; a mirrored axis by |s|; at most MAX_SUPERSAMPLED_SIDE // 64 taps per axis.
    steps = np.array([[0.5, 1.0], [65 / 64, 66 / 64], [2.0, 129 / 64], [-2.5, 1.0], [1000.0, 0.9]])
    affines = np.zeros((len(steps), 2, 3))
    affines[:, 0, 0], affines[:, 1, 1] = steps[:, 0], steps[:, 1]
    assert supersampling_factors(affines, 64).tolist() == [
        [1, 1], [1, 2], [2, 3], [3, 1], [MAX_SUPERSAMPLED_SIDE // 64, 1]
    ]  # fmt: skip


def test_2x_downscale_of_a_checkerboard_is_its_area_average_not_every_other_pixel():
    # 1 px checkerboard, 200 where x + y is even, else 0. A 2x box whose edges lie on pixel centres (x from 0 to
    # 2 size): patch pixel u covers frame x in [2u, 2u + 2], centre 2u + 1, an integer. One bilinear tap there
    # reads pixel (2u + 1, 2v + 1), always 200: the checkerboard aliases to flat white. Its footprint holds
    # half of pixel 2u, pixel 2u + 1 and half of pixel 2u + 2 per axis: a quarter 200, a quarter 0, ... = 100.
    frame, size = 40, 16
    ys, xs = np.mgrid[0:frame, 0:frame]
    image = np.repeat(np.where((xs + ys) % 2 == 0, 200, 0).astype(np.uint8)[..., None], 3, -1)
    affine = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]])  # patch px u -> frame px 2u + 1
    assert np.allclose(_fine_affine(affine, size, 2, 2), [[1, 0, 0.5], [0, 1, 0.5]])  # taps at 2u + 0.5, 2u + 1.5
    patch = _cut_one(image, affine[None], size)[0]
    assert np.all(patch == 100)


def test_3x_downscale_of_stripes_is_the_mean_of_each_3_by_3_block():
    # Vertical stripes 240, 0, 0, 240, 0, 0, ... and a 3x box on pixel edges (x from -0.5 to 3 size - 0.5):
    # patch pixel u is centred on frame pixel 3u + 1 (a 0 stripe, where one tap reads 0) and covers pixels 3u,
    # 3u + 1, 3u + 2: (240 + 0 + 0) / 3 = 80. Rows likewise, on an image constant along y.
    frame, size = 48, 16
    image = np.zeros((frame, frame, 3), np.uint8)
    image[:, 0::3] = 240
    affine = box_affine(np.array([23.5, 23.5]), np.array([48.0, 48.0]), size)  # the whole frame, 3 px per patch px
    assert np.allclose(affine, [[3, 0, 1], [0, 3, 1]])
    patch = _cut_one(image, affine[None], size)[0]
    assert np.all(patch == 80)


@settings(max_examples=60, deadline=None)
@given(
    step=st.floats(2.0, 4.0),
    frequency_in_band=st.floats(0.0, 1.0),
    phase=st.floats(0.0, 2 * np.pi),
    along_y=st.booleans(),
    other_step=st.floats(0.5, 4.0),
    centre=st.tuples(st.floats(-4.0, 4.0), st.floats(-4.0, 4.0)),
)
def test_a_grating_finer_than_the_patch_can_hold_comes_out_near_its_mean(
    step, frequency_in_band, phase, along_y, other_step, centre
):
    # A cosine grating 128 + 100 cos(2 pi f x) with f in [1/s, 1/2] cycles per frame px: beyond the patch's
    # Nyquist limit 1/(2s), from the first zero of the s-px box to the frame's own limit. The supersampled box
    # (k = ceil(s) taps, spacing s/k) passes |sin(pi f s) / (k sin(pi f s / k))| of it, at most 1/3 over this
    # band for 2 <= s <= 4 (worst at k = 3, f s = 3/2), and a bilinear tap attenuates further: every pixel lies
    # within 100/3 of the mean, plus 1 level of rounding (input and output). One tap per pixel passes the grating
    # at up to its full amplitude, as alias stripes of a lower frequency.
    frame, size = 160, 16
    frequency = 1 / step + frequency_in_band * (0.5 - 1 / step)
    grating = np.round(128 + 100 * np.cos(2 * np.pi * frequency * np.arange(frame) + phase)).astype(np.uint8)
    image = np.repeat(np.repeat(grating[None, :, None], frame, 0), 3, -1)
    sides = np.array([step, other_step]) * size
    if along_y:
        image, sides = np.ascontiguousarray(image.transpose(1, 0, 2)), sides[::-1]
    affine = box_affine(np.array([79.5, 79.5]) + np.array(centre), sides, size)  # inside the frame
    patch = _cut_one(image, affine[None], size)[0].astype(int)
    assert np.abs(patch - 128).max() <= 100 / 3 + 1


def test_batches_and_groups_do_not_change_the_result():
    # More frames than one remap group: cutting them together or one by one gives the same bytes, on both paths.
    rng = np.random.default_rng(3)
    frame, size, count = 48, 32, 2 * group_frames((48, 48), 16, 32) + 3
    rgb = rng.integers(0, 256, size=(count, frame, frame, 3), dtype=np.uint8)
    segmentation = rng.integers(0, 256, size=(count, 3, frame, frame), dtype=np.uint8)
    affines = _random_affines(rng, count, frame, size)
    assert len(np.unique(supersampling_factors(affines, size))) >= 3  # one tap, and at least two factors
    together = cut_patches(rgb, segmentation, affines, size)
    alone = np.concatenate(
        [cut_patches(rgb[n : n + 1], segmentation[n : n + 1], affines[n : n + 1], size) for n in range(count)]
    )
    assert np.array_equal(together, alone)


@pytest.mark.parametrize("side", [16.0, 48.0])  # one tap per pixel; 3 x 3 taps
def test_far_outside_the_frame_reads_zeros_not_the_neighbouring_frame(side):
    frame, size, count = 32, 16, 6
    rgb = np.full((count, frame, frame, 3), 255, np.uint8)
    segmentation = np.full((count, 3, frame, frame), 255, np.uint8)
    far = 1.5 * side + frame + 2
    below = limb_patch_affines(np.array([15.5, 15.5 + far]), np.array([side, side]), size)  # a frame lower
    right = limb_patch_affines(np.array([15.5 + far, 15.5]), np.array([side, side]), size)
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
