"""Patch geometry, worked by hand: the paper's limb box, its patch pixels, the frame corner, degenerate limbs."""

from __future__ import annotations

import numpy as np
import pytest

from patchpose.crop_geometry import apply_affine
from patchpose.patches.geometry import LimbPatchGeometry, check_joints_2d, limb_patch_geometry, whole_frame_geometry
from patchpose.patches.sampler import cut_patches
from patchpose.skeleton import H36M

LEFT_KNEE_TO_ANKLE = H36M.limb_names.index("left_knee->left_ankle")
PAPER = {"min_side_at_256": 28.0, "scale": 2.3}


def _pose(parent_xy, child_xy, rest_xy=(128.0, 128.0)) -> np.ndarray:
    """(1, 17, 2): every joint at ``rest_xy`` except the left knee (parent) and ankle (child)."""
    joints = np.tile(np.asarray(rest_xy, dtype=np.float64), (1, 17, 1))
    joints[0, H36M.joint_index("left_knee")] = parent_xy
    joints[0, H36M.joint_index("left_ankle")] = child_xy
    return joints


def _cut(image: np.ndarray, affines: np.ndarray, size: int) -> np.ndarray:
    """Patches (P, 6, size, size) of one RGB image, with the same image as its 'segmentation'."""
    return cut_patches(image[None], image.transpose(2, 0, 1)[None].copy(), affines[None], size)[0]


def test_box_10_by_40_becomes_28_by_40_then_64_4_by_92():
    # Endpoints 40 px apart in x and 10 px in y at a 256² frame: h x w = 10 x 40 -> max(28, 10) x max(28, 40)
    # = 28 x 40 -> x 2.3 = 64.4 x 92, centred on the limb centre (120, 105).
    joints = _pose(parent_xy=(100.0, 100.0), child_xy=(140.0, 110.0))
    boxes, affines = limb_patch_geometry(joints, (256, 256), LimbPatchGeometry(**PAPER, cache_size=64))
    assert np.allclose(boxes[0, LEFT_KNEE_TO_ANKLE], [120, 105, 92, 64.4])  # centre x, y, width, height
    # Square padding: the 92 px side fills the 64 px patch, s = 92 / 64 px per patch px, both axes.
    s = 92 / 64
    assert np.allclose(affines[0, LEFT_KNEE_TO_ANKLE], [[s, 0, 120 - 46 + s / 2], [0, s, 105 - 46 + s / 2]])


def test_patch_pixels_are_the_image_pixels_through_the_affine_and_zero_outside():
    # Endpoints on pixel centres + 0.5 put the box centre at (230.5, 105.5); with a 92 px patch the scale is 1
    # and the offset (230.5 - 46 + 0.5, 105.5 - 46 + 0.5) = (185, 60): patch pixel (u, v) is image pixel
    # (185 + u, 60 + v), which leaves the 256 px frame for u >= 71.
    rng = np.random.default_rng(0)
    image = rng.integers(1, 256, size=(256, 256, 3), dtype=np.uint8)
    joints = _pose(parent_xy=(210.5, 100.5), child_xy=(250.5, 110.5))
    _, affines = limb_patch_geometry(joints, (256, 256), LimbPatchGeometry(**PAPER, cache_size=92))
    assert np.allclose(affines[0, LEFT_KNEE_TO_ANKLE], [[1, 0, 185], [0, 1, 60]])
    patch = _cut(image, affines[0], 92)[LEFT_KNEE_TO_ANKLE]  # (6, 92, 92)
    expected = image[60:152, 185:256].transpose(2, 0, 1)
    assert np.array_equal(patch[:3, :, :71], expected) and np.array_equal(patch[3:, :, :71], expected)
    assert not patch[:, :, 71:].any()


def test_patch_pixels_follow_a_fractional_affine_exactly():
    # On an image that is linear in x and y (I = x + y), bilinear sampling is exact: a patch pixel is the
    # value at its affine-mapped frame position, wherever that lies inside the frame; zero beyond a pixel out.
    ys, xs = np.mgrid[0:128, 0:128]
    image = np.repeat((xs + ys).astype(np.uint8)[..., None], 3, axis=-1)
    joints = _pose(parent_xy=(20.0, 30.0), child_xy=(43.0, 71.0), rest_xy=(64.0, 64.0))
    _, affines = limb_patch_geometry(joints, (128, 128), LimbPatchGeometry(**PAPER, cache_size=64))
    patch = _cut(image, affines[0], 64)[LEFT_KNEE_TO_ANKLE, 0].astype(np.float64)
    v, u = np.mgrid[0:64, 0:64]
    x, y = np.moveaxis(apply_affine(affines[0, LEFT_KNEE_TO_ANKLE], np.stack([u, v], -1).reshape(1, -1, 2)), -1, 0)
    x, y = x.reshape(64, 64), y.reshape(64, 64)
    inside = (x >= 0) & (x <= 127) & (y >= 0) & (y <= 127)
    outside = (x < -1) | (x > 128) | (y < -1) | (y > 128)
    assert inside.sum() > 1000 and outside.sum() > 100  # the box leaves the frame at the top
    assert np.abs(patch - (x + y))[inside].max() <= 0.5 + 1e-3
    assert not patch[outside].any()


def test_box_at_the_image_corner_is_zero_filled():
    # Limb from (0, 0) to (5, 5): box 5 x 5 -> 28 x 28 -> 64.4 x 64.4 centred at (2.5, 2.5). Patch pixel u maps to
    # x = 2.5 - 32.2 + s/2 + s u with s = 64.4 / 64, which is < -1 (zero) for u <= 28 and inside for u >= 30.
    image = np.full((256, 256, 3), 200, np.uint8)
    joints = _pose(parent_xy=(0.0, 0.0), child_xy=(5.0, 5.0))
    _, affines = limb_patch_geometry(joints, (256, 256), LimbPatchGeometry(**PAPER, cache_size=64))
    patch = _cut(image, affines[0], 64)[LEFT_KNEE_TO_ANKLE]
    assert not patch[:, :29, :].any() and not patch[:, :, :29].any()
    assert np.all(patch[:, 30:, 30:] == 200)


@pytest.mark.parametrize(("frame_side", "min_side"), [(256, 28.0), (128, 14.0)])
def test_degenerate_limb_gets_the_minimum_box(frame_side, min_side):
    # Both endpoints equal: the tight box is 0 x 0 -> the minimum side (28 px at 256², scaled with the frame).
    joints = _pose(parent_xy=(60.0, 70.0), child_xy=(60.0, 70.0), rest_xy=(60.0, 70.0))
    geometry = LimbPatchGeometry(**PAPER, cache_size=64)
    assert geometry.min_side_px((frame_side, frame_side)) == min_side
    boxes, _ = limb_patch_geometry(joints, (frame_side, frame_side), geometry)
    assert np.allclose(boxes[0, :, 2:], min_side * 2.3)  # every limb is degenerate here
    assert np.allclose(boxes[0, :, :2], [60, 70])


def test_stretch_instead_of_square_padding():
    joints = _pose(parent_xy=(100.0, 100.0), child_xy=(140.0, 110.0))
    geometry = LimbPatchGeometry(**PAPER, square=False, cache_size=64)
    _, affines = limb_patch_geometry(joints, (256, 256), geometry)
    assert np.allclose(np.diagonal(affines[0, LEFT_KNEE_TO_ANKLE, :, :2]), [92 / 64, 64.4 / 64])


def test_whole_frame_is_one_patch():
    # A 128 px frame into 64 px: s = 2, offset -0.5 + s/2 = 0.5 (the mean of each 2 x 2 block).
    boxes, affines = whole_frame_geometry(3, (128, 128), 64)
    assert boxes.shape == (3, 1, 4) and affines.shape == (3, 1, 2, 3)
    assert np.allclose(affines[:, 0], [[2, 0, 0.5], [0, 2, 0.5]])
    image = np.zeros((128, 128, 3), np.uint8)
    image[::2, ::2] = 40  # one pixel of four: every 2 x 2 block averages to 10
    assert np.all(_cut(image, affines[0], 64) == 10)


def test_bad_joints_are_named():
    joints = np.zeros((4, 17, 2))
    joints[2, H36M.joint_index("head")] = np.nan
    with pytest.raises(ValueError, match=r"preds\.npz: joints_2d holds NaN or inf \(first at frame 2, joint head"):
        check_joints_2d("preds.npz", joints, 4)
    with pytest.raises(ValueError, match=r"preds\.npz: joints_2d must have shape \(4, 17, 2\), got \(4, 16, 2\)"):
        check_joints_2d("preds.npz", np.zeros((4, 16, 2)), 4)
    with pytest.raises(ValueError, match="must have shape"):
        check_joints_2d("preds.npz", np.zeros((3, 17, 2)), 4)
    assert check_joints_2d("preds.npz", np.ones((4, 17, 2), np.float32), 4).dtype == np.float64


def test_bad_geometry_is_rejected():
    with pytest.raises(ValueError, match="scale > 0"):
        LimbPatchGeometry(scale=0.0)
