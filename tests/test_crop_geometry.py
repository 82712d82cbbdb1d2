"""Crop geometry: person crops and the paper's limb boxes, hand-worked values and round trips."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from patchpose.crop_geometry import (
    apply_affine,
    crop_pixel_grid,
    invert_affine,
    limb_boxes,
    limb_patch_affines,
    person_crop_affine,
    warp_crop,
)


def test_hand_worked_crop():
    # Joints span x 100..300, y 200..260: centre (200, 230), larger side 200, margin 1.5 -> side 300 px.
    # Resampled to 100 px: s = 3; offset = centre - 150 + 1.5 = (51.5, 81.5).
    joints = np.array([[[100.0, 200.0], [300.0, 260.0], [150.0, 230.0]]])
    affine = person_crop_affine(joints, margin=1.5, frame_size=100)
    assert np.allclose(affine[0], [[3, 0, 51.5], [0, 3, 81.5]])
    # The crop's outer edges (-0.5 and 99.5) land on the box edges 50 and 350 (x), 80 and 380 (y).
    edges = apply_affine(affine, np.array([[[-0.5, -0.5], [99.5, 99.5]]]))
    assert np.allclose(edges[0], [[50, 80], [350, 380]])
    # The joints' box centre is the crop's centre (49.5, 49.5) in crop px.
    assert np.allclose(apply_affine(invert_affine(affine), np.array([[[200.0, 230.0]]])), [[[49.5, 49.5]]])


def test_minimum_side():
    affine = person_crop_affine(np.zeros((1, 17, 2)), margin=1.2, frame_size=64, min_side_px=32)
    assert np.isclose(affine[0, 0, 0], 0.5)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-500, 1500), min_size=6, max_size=6),
    st.floats(1.0, 2.0),
    st.integers(16, 256),
)
def test_inverse_round_trip(coords, margin, frame_size):
    joints = np.array(coords).reshape(1, 3, 2)
    affine = person_crop_affine(joints, margin, frame_size)
    back = apply_affine(affine, apply_affine(invert_affine(affine), joints))
    assert np.allclose(back, joints, atol=1e-6)
    crop = apply_affine(invert_affine(affine), joints)
    assert crop.min() >= -0.5 - 1e-6 and crop.max() <= frame_size - 0.5 + 1e-6


def test_pixel_grid_matches_affine():
    affine = np.array([[2.0, 0.0, 10.0], [0.0, 2.0, 20.0]])
    grid = crop_pixel_grid(affine, 4)
    assert grid.shape == (4, 4, 2)
    assert np.allclose(grid[0, 0], [10, 20]) and np.allclose(grid[1, 3], [16, 22])


def _pose_with_limb(child_xy, parent_xy, limb=5):
    joints = np.zeros((1, 17, 2))
    joints[0, :] = parent_xy
    child, parent = 6, 5  # limb 5 is left_knee -> left_ankle
    assert limb == 5
    joints[0, parent], joints[0, child] = parent_xy, child_xy
    return joints


def test_paper_limb_box_hand_worked():
    # Endpoints 40 px apart in x, 10 px in y: h x w = 10 x 40 -> max(28, 10) x max(28, 40) = 28 x 40
    # -> x 2.3 = 64.4 x 92 (h x w), centred on the limb centre (120, 105).
    joints = _pose_with_limb(child_xy=(140.0, 110.0), parent_xy=(100.0, 100.0))
    centres, sizes = limb_boxes(joints, min_side=28, scale=2.3)
    assert np.allclose(centres[0, 5], [120, 105])
    assert np.allclose(sizes[0, 5], [92.0, 64.4])  # (width, height)
    # Degenerate limb (both endpoints equal): the 28 px minimum box, then 2.3x.
    assert np.allclose(sizes[0, 0], [28 * 2.3, 28 * 2.3])


def test_patch_pixels_equal_image_pixels_through_the_affine():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(256, 256, 3), dtype=np.uint8)
    joints = _pose_with_limb(child_xy=(140.5, 110.5), parent_xy=(100.5, 100.5))
    centres, sizes = limb_boxes(joints, min_side=28, scale=2.3)
    affine = limb_patch_affines(centres[0, 5], sizes[0, 5], out_size=92, square=True)
    # Square padding keeps the aspect: side 92 -> 92 px patch, scale exactly 1,
    # offset = centre - 46 + 0.5 = (120.5 - 45.5, 105.5 - 45.5) = (75, 60): patch pixel (u, v) is image (75+u, 60+v).
    assert np.allclose(affine, [[1, 0, 75], [0, 1, 60]])
    patch = warp_crop(image, affine, 92, interpolation=0)  # nearest: exact pixel copies
    assert np.array_equal(patch, image[60 : 60 + 92, 75 : 75 + 92])


def test_box_at_the_corner_is_zero_filled():
    image = np.full((64, 64, 3), 200, np.uint8)
    # Centre (-0.5, -0.5), side 32 -> offset -16: patch pixel u is image pixel u - 16 (outside for u < 16).
    affine = limb_patch_affines(np.array([-0.5, -0.5]), np.array([32.0, 32.0]), out_size=32)
    patch = warp_crop(image, affine, 32, interpolation=0)
    assert np.all(patch[:16, :] == 0) and np.all(patch[:, :16] == 0)
    assert np.all(patch[16:, 16:] == 200)


def test_stretch_mode_fills_the_patch():
    affine = limb_patch_affines(np.array([50.0, 50.0]), np.array([92.0, 64.4]), out_size=64, square=False)
    assert np.isclose(affine[0, 0], 92 / 64) and np.isclose(affine[1, 1], 64.4 / 64)
