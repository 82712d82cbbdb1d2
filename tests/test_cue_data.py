"""Cue-test data: depth-sign labels, elevation, patch placement, binning arithmetic, a tiny rendered store."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from patchpose.config import validate_config
from patchpose.crop_geometry import warp_crop
from patchpose.dataset_format import open_dataset
from patchpose.parts import LIMB_PART, PART_NAMES
from patchpose.skeleton import H36M
from patchpose.synthetic.cue_data import (
    ARM_LEG_LIMBS,
    accuracy_by_elevation,
    balanced_accuracy,
    brighter_end_guesses,
    limb_depth_labels,
    limb_depth_samples,
    limb_patches,
)
from patchpose.synthetic.params import world_params_for_split
from patchpose.synthetic.split import render_split
from tests.conftest import default_config

LEFT_ELBOW = H36M.joint_index("left_elbow")
LEFT_SHOULDER = H36M.joint_index("left_shoulder")
LOWER_ARM_LIMB = H36M.joint_index("left_wrist") - 1  # limb k ends in joint k + 1: left_elbow -> left_wrist


def _skeleton_with_limb(child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """(1, 17, 3) camera-frame joints: a plausible spread-out body far in front of the camera, with the
    left lower arm (elbow -> wrist) replaced by parent -> child."""
    rng = np.random.default_rng(0)
    joints = np.array([0.0, 0.0, 5000.0]) + rng.uniform(-300, 300, size=(17, 3))
    joints[LEFT_ELBOW], joints[H36M.joint_index("left_wrist")] = parent, child
    return joints[None]


def test_arm_leg_limbs_are_the_eight_arm_and_leg_segments():
    assert ARM_LEG_LIMBS == (1, 2, 4, 5, 11, 12, 14, 15)
    names = {PART_NAMES[LIMB_PART[k]] for k in ARM_LEG_LIMBS}
    assert names == {
        f"{s}_{p}" for s in ("left", "right") for p in ("upper_arm", "lower_arm", "upper_leg", "lower_leg")
    }


@pytest.mark.parametrize(
    ("child", "parent", "toward", "elevation"),
    [
        ((0, 0, 4800), (0, 0, 5200), True, 90.0),  # along the optical axis, child nearer
        ((0, 0, 5200), (0, 0, 4800), False, 90.0),
        ((150, 0, 5000), (-150, 0, 5000), False, 0.0),  # parallel to the image plane: a tie counts as away
        ((0, 129.9, 4925), (0, -129.9, 5075), True, 30.0),  # 30 deg toward: dz = -150 over a 300 mm limb
        ((0, 129.9, 5075), (0, -129.9, 4925), False, 30.0),
    ],
)
def test_labels_on_axis(child, parent, toward, elevation):
    # every midpoint lies on the optical axis, so the ray through it is the axis
    toward_out, elevation_out, _ = limb_depth_labels(_skeleton_with_limb(np.array(child), np.array(parent)))
    k = ARM_LEG_LIMBS.index(LOWER_ARM_LIMB)
    c, p = np.array(child, float), np.array(parent, float)
    ray = (c + p) / np.linalg.norm(c + p)
    expected = np.degrees(np.arcsin(abs((c - p) @ ray) / np.linalg.norm(c - p)))
    assert toward_out[0, k] == toward
    assert elevation_out[0, k] == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(elevation, abs=0.01)


def test_labels_follow_the_viewing_ray_not_the_optical_axis():
    # off-axis midpoint (2000, 0, 4000): a limb perpendicular to the ray through it has a z difference
    # but no extent along the ray -> elevation 0; a limb along that ray -> 90
    m, ray = np.array([2000.0, 0, 4000.0]), np.array([2000.0, 0, 4000.0]) / np.hypot(2000, 4000)
    side = np.cross(ray, [0, 1, 0])  # perpendicular to the ray, in the x-z plane
    k = ARM_LEG_LIMBS.index(LOWER_ARM_LIMB)
    assert side[2] > 0.4  # the child end of m + side is farther in z
    _, elevation, _ = limb_depth_labels(_skeleton_with_limb(m + 150 * side, m - 150 * side))
    assert elevation[0, k] == pytest.approx(0.0, abs=1e-6)
    # tilt it 20 mm toward the camera along the ray: toward, though the child's z is still larger
    toward, elevation, toward_z = limb_depth_labels(
        _skeleton_with_limb(m + 150 * side - 10 * ray, m - 150 * side + 10 * ray)
    )
    assert toward[0, k] and not toward_z[0, k]
    assert elevation[0, k] == pytest.approx(np.degrees(np.arcsin(20 / np.hypot(300, 20))), abs=1e-9)
    toward, elevation, _ = limb_depth_labels(_skeleton_with_limb(m - 150 * ray, m + 150 * ray))
    assert elevation[0, k] == pytest.approx(90.0, abs=1e-6) and toward[0, k]


def test_toward_means_child_nearer_the_camera_centre():
    rng = np.random.default_rng(1)
    joints = np.array([0.0, 0.0, 4500.0]) + rng.normal(0, 400, size=(200, 17, 3))
    toward, elevation, _ = limb_depth_labels(joints, range(16))
    distance = np.linalg.norm(joints, axis=-1)
    nearer = distance[:, H36M.limb_children] < distance[:, H36M.limb_parents]
    np.testing.assert_array_equal(toward, nearer)
    assert elevation.min() >= 0 and elevation.max() <= 90


def test_labels_reject_degenerate_limbs():
    joints = _skeleton_with_limb(np.array([0, 0, 5000.0]), np.array([0, 0, 5000.0]))
    with pytest.raises(ValueError, match="zero-length"):
        limb_depth_labels(joints)
    with pytest.raises(ValueError, match="limbs"):
        limb_depth_labels(joints, [16])


def test_patch_is_centred_on_the_limb_midpoint():
    size, out = 64, 32
    rng = np.random.default_rng(2)
    joints_2d = rng.integers(12, 52, size=(3, 17, 2)).astype(float)
    wrist = LOWER_ARM_LIMB + 1
    joints_2d[:, wrist] = joints_2d[:, LEFT_ELBOW] + 2 * rng.integers(-5, 6, size=(3, 2))  # midpoint on a pixel
    mid = ((joints_2d[:, wrist] + joints_2d[:, LEFT_ELBOW]) / 2).astype(int)
    frames = np.zeros((3, size, size, 3), dtype=np.uint8)
    for n, (x, y) in enumerate(mid):
        frames[n, y - 1 : y + 2, x - 1 : x + 2] = 255  # a bright 3x3 dot on the midpoint
    patches, endpoints = limb_patches(frames, joints_2d, (LOWER_ARM_LIMB, 1), out_size=out, min_side=7, scale=2.3)
    assert patches.shape == (3, 2, out, out, 3) and patches.dtype == np.uint8
    centre = (out - 1) / 2
    np.testing.assert_allclose(endpoints.mean(axis=2), centre, atol=1e-9)  # midpoint -> patch centre
    ys, xs = np.mgrid[0:out, 0:out]
    for n in range(3):
        weights = patches[n, 0, :, :, 0].astype(float)
        assert weights.sum() > 0
        assert (weights * xs).sum() / weights.sum() == pytest.approx(centre, abs=0.3)
        assert (weights * ys).sum() / weights.sum() == pytest.approx(centre, abs=0.3)


def test_patch_size_follows_the_paper_box():
    # a horizontal limb of 40 px in a 256 frame: box 40 x 28 -> x 2.3 -> square side 92 px
    joints_2d = np.full((1, 17, 2), 128.0)
    joints_2d[0, LOWER_ARM_LIMB + 1] = (148.0, 128.0)
    joints_2d[0, LEFT_ELBOW] = (108.0, 128.0)
    frames = np.zeros((1, 256, 256, 3), dtype=np.uint8)
    _, endpoints = limb_patches(frames, joints_2d, (LOWER_ARM_LIMB,), out_size=92)
    # one patch px = one frame px: the endpoints stay 40 px apart
    assert endpoints[0, 0, 0, 0] - endpoints[0, 0, 1, 0] == pytest.approx(40.0)
    _, endpoints = limb_patches(frames, joints_2d, (LOWER_ARM_LIMB,), out_size=46)
    assert endpoints[0, 0, 0, 0] - endpoints[0, 0, 1, 0] == pytest.approx(20.0)


def test_balanced_accuracy_arithmetic():
    truth = np.array([1, 1, 1, 0], bool)
    assert balanced_accuracy(np.ones(4, bool), truth) == 0.5  # majority guess: 75% accuracy, 50% balanced
    assert balanced_accuracy(np.array([1, 0, 1, 0], bool), truth) == pytest.approx((2 / 3 + 1) / 2)
    assert np.isnan(balanced_accuracy(np.ones(3, bool), np.ones(3, bool)))


def test_accuracy_by_elevation_bins():
    elevation = np.array([0.0, 14.9, 15.0, 29.0, 45.0, 60.0, 89.0, 90.0])
    truth = np.array([1, 0, 1, 0, 1, 1, 0, 1], bool)
    predicted = np.array([1, 1, 1, 0, 0, 1, 0, 1], bool)
    stats = accuracy_by_elevation(predicted, truth, elevation)
    assert [(s.low, s.high, s.count) for s in stats] == [(0, 15, 2), (15, 30, 2), (30, 60, 1), (60, 90, 3), (0, 90, 8)]
    assert [s.accuracy for s in stats[:4]] == [0.5, 1.0, 0.0, 1.0]
    assert stats[0].toward_fraction == 0.5 and stats[0].balanced_accuracy == 0.5
    assert np.isnan(stats[2].balanced_accuracy)  # one class only
    assert stats[4].accuracy == pytest.approx(6 / 8)
    assert stats[4].toward_fraction == pytest.approx(5 / 8)
    empty = accuracy_by_elevation(predicted[:1], truth[:1], elevation[:1])
    assert empty[1].count == 0 and np.isnan(empty[1].accuracy)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> Path:
    """15 actions x 2 test subjects x 1 camera at 64 px: 30 frames, about a second."""
    config = default_config()
    config["dataset"]["synthetic"].update(frame_size=64, test_poses_per_action=1, cameras=[54138969])
    world = world_params_for_split(validate_config(config)["dataset"]["synthetic"], "test")
    directory = tmp_path_factory.mktemp("cue")
    render_split(directory / "test.zarr", directory / "test.png", "test", world, seed=0)
    return directory / "test.zarr"


def test_samples_from_a_rendered_store(tiny_store):
    store = open_dataset(tiny_store)
    samples = limb_depth_samples(tiny_store, out_size=32)
    m = store.num_frames * len(ARM_LEG_LIMBS)
    assert samples.patches.shape == (m, 32, 32, 3) and samples.patches.dtype == np.uint8
    assert samples.toward.shape == samples.elevation_deg.shape == samples.limb.shape == samples.frame.shape == (m,)
    np.testing.assert_array_equal(samples.frame[:: len(ARM_LEG_LIMBS)], np.arange(store.num_frames))
    toward, elevation, _ = limb_depth_labels(store.joints_3d)
    np.testing.assert_array_equal(samples.toward, toward.reshape(-1))
    np.testing.assert_allclose(samples.elevation_deg, elevation.reshape(-1))
    # an opened store and a subset of frames give the same rows
    subset = limb_depth_samples(store, out_size=32, frames=[3, 7])
    rows = np.isin(samples.frame, [3, 7])
    np.testing.assert_array_equal(subset.patches, samples.patches[rows])
    # the patch centre lies on the limb's own part in most patches (occlusion and thin limbs aside)
    labels = store.read_part_labels(np.arange(store.num_frames))
    label_frames = np.repeat(labels[..., None], 3, axis=-1)
    label_patches, _ = limb_patches(label_frames, store.joints_2d, out_size=32, interpolation=cv2.INTER_NEAREST)
    centre = label_patches[:, :, 15:17, 15:17, 0].reshape(store.num_frames, len(ARM_LEG_LIMBS), -1)
    own = np.asarray(LIMB_PART)[list(ARM_LEG_LIMBS)][None, :, None]
    assert (centre == own).any(axis=-1).mean() > 0.6


def test_samples_from_arrays_match_warp_crop():
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, size=(2, 48, 48, 3), dtype=np.uint8)
    joints_2d = rng.uniform(5, 43, size=(2, 17, 2))
    joints_3d = np.array([0, 0, 4000.0]) + rng.normal(0, 300, size=(2, 17, 3))
    samples = limb_depth_samples({"frames": frames, "joints_2d": joints_2d, "joints_3d": joints_3d}, limbs=(2,))
    assert samples.patches.shape == (2, 64, 64, 3)
    patches, _ = limb_patches(frames, joints_2d, (2,))
    np.testing.assert_array_equal(samples.patches, patches[:, 0])
    assert warp_crop(frames[0], np.eye(2, 3), 8).shape == (8, 8, 3)


def test_the_brighter_end_rule_reads_the_limb_s_own_pixels_end_against_end():
    # one 40 px frame, the left lower arm from (8, 20) (elbow, parent) to (32, 20) (wrist, child): a 4-px-high
    # band of its part whose brightness rises toward the wrist, a brighter other part beside it at the elbow
    size, limb = 40, LOWER_ARM_LIMB
    joints = np.full((1, 17, 2), 2.0)
    joints[0, LEFT_ELBOW], joints[0, H36M.joint_index("left_wrist")] = (8.0, 20.0), (32.0, 20.0)
    labels = np.zeros((1, size, size), np.uint8)
    labels[0, 18:22, 8:33] = LIMB_PART[limb]
    labels[0, 10:14, 0:14] = PART_NAMES.index("torso")
    ramp = np.broadcast_to(np.linspace(60, 120, size)[None, :, None], (size, size, 3))
    frames = np.zeros((1, size, size, 3), np.uint8)
    frames[0] = np.where((labels[0] == LIMB_PART[limb])[..., None], ramp, 250).astype(np.uint8)
    guesses, valid = brighter_end_guesses(frames, labels, joints, limbs=[limb])
    assert guesses.shape == valid.shape == (1, 1) and valid[0, 0] and guesses[0, 0]  # wrist brighter: toward
    flipped = frames[:, :, ::-1].copy()  # brightness now falls toward the wrist; the other part stays bright
    guesses, valid = brighter_end_guesses(flipped, labels, joints, limbs=[limb])
    assert valid[0, 0] and not guesses[0, 0]
    hidden = labels.copy()
    hidden[0, :, 22:] = 0  # the wrist end (the last 40% of the segment) is covered by something else: no guess
    guesses, valid = brighter_end_guesses(frames, hidden, joints, limbs=[limb])
    assert not valid[0, 0] and not guesses[0, 0]
    with pytest.raises(ValueError, match="part_labels"):
        brighter_end_guesses(frames, labels[:, :-1], joints)
    with pytest.raises(ValueError, match="joints_2d"):
        brighter_end_guesses(frames, labels, joints[:, :16])
    with pytest.raises(ValueError, match="end_fraction"):
        brighter_end_guesses(frames, labels, joints, end_fraction=0.7)
