"""OriNet limb orientations: encode/decode round trips, Eq. 1 and Eq. 2, bone statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from patchpose.orientation import (
    BoneStatistics,
    bone_lengths,
    bone_statistics,
    decode_orientation,
    encode_orientation,
    orientation_residual_target,
    refine,
    residual_pose,
)
from patchpose.skeleton import H36M

FINITE = {"allow_nan": False, "allow_infinity": False}


def build_pose(root_mm: np.ndarray, directions: np.ndarray, lengths_mm: np.ndarray) -> np.ndarray:
    """One (17, 3) mm pose from a root and per-joint unit directions/lengths, walking ``H36M.parents``.

    Written independently of ``decode_orientation`` (joint-indexed, via the parents table).
    """
    pose = np.zeros((17, 3))
    pose[0] = root_mm
    for joint in range(1, 17):
        pose[joint] = pose[H36M.parents[joint]] + lengths_mm[joint - 1] * directions[joint - 1]
    return pose


@st.composite
def pose_batches(draw, max_frames: int = 3, num_frames: int | None = None) -> np.ndarray:
    """(N, 17, 3) mm poses: random bone directions (spherical angles), lengths 50-500 mm, root within 5 m."""
    if num_frames is None:
        num_frames = draw(st.integers(1, max_frames))
    poses = []
    for _ in range(num_frames):
        polar = draw(arrays(np.float64, 16, elements=st.floats(0.0, np.pi, **FINITE)))
        azimuth = draw(arrays(np.float64, 16, elements=st.floats(0.0, 2 * np.pi, **FINITE)))
        lengths = draw(arrays(np.float64, 16, elements=st.floats(50.0, 500.0, **FINITE)))
        root = draw(arrays(np.float64, 3, elements=st.floats(-5000.0, 5000.0, **FINITE)))
        directions = np.stack(
            [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=-1
        )
        poses.append(build_pose(root, directions, lengths))
    return np.stack(poses)


stats_strategy = arrays(np.float64, 16, elements=st.floats(50.0, 500.0, **FINITE)).map(
    lambda means: BoneStatistics(mean_mm=means, std_mm=np.zeros(16), num_poses=1)
)


def root_relative(poses: np.ndarray) -> np.ndarray:
    return poses - poses[:, :1]


@settings(max_examples=40, deadline=None)
@given(poses=pose_batches(), stats=stats_strategy)
def test_encode_then_decode_is_identity(poses, stats):
    orientations = encode_orientation(poses, stats)
    assert orientations.shape == (poses.shape[0], 16, 3)
    np.testing.assert_allclose(decode_orientation(orientations, stats), root_relative(poses), atol=1e-6)
    np.testing.assert_allclose(decode_orientation(orientations, stats, root=poses[:, 0]), poses, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(poses=pose_batches(), stats=stats_strategy)
def test_zero_residual_leaves_pose_unchanged(poses, stats):
    zero = np.zeros((poses.shape[0], 16, 3))
    assert np.array_equal(residual_pose(zero, stats), np.zeros_like(poses))
    np.testing.assert_array_equal(refine(poses, zero, stats), poses)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), stats=stats_strategy)
def test_ideal_residual_recovers_ground_truth(data, stats):
    gt = data.draw(pose_batches(max_frames=2))
    initial = data.draw(pose_batches(num_frames=gt.shape[0]))
    target = orientation_residual_target(gt, initial, stats)
    # Root-relative initial pose + residual = root-relative ground truth (the rebuild is linear).
    np.testing.assert_allclose(root_relative(initial) + residual_pose(target, stats), root_relative(gt), atol=1e-6)
    # With absolute poses the initial root is kept: X0 + residual = gt - gt_root + x0_root.
    expected = gt - gt[:, :1] + initial[:, :1]
    np.testing.assert_allclose(refine(initial, target, stats), expected, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), stats=stats_strategy)
def test_residual_pose_is_linear_with_fixed_root(data, stats):
    shape = (2, 16, 3)
    a = data.draw(arrays(np.float64, shape, elements=st.floats(-2.0, 2.0, **FINITE)))
    b = data.draw(arrays(np.float64, shape, elements=st.floats(-2.0, 2.0, **FINITE)))
    combined = residual_pose(a + 3.0 * b, stats)
    np.testing.assert_allclose(combined, residual_pose(a, stats) + 3.0 * residual_pose(b, stats), atol=1e-9)
    assert np.all(combined[:, 0] == 0.0), "the residual never moves the root"


def unit_stats() -> BoneStatistics:
    return BoneStatistics(mean_mm=np.full(16, 100.0), std_mm=np.zeros(16), num_poses=1)


def test_golden_encode_and_decode_by_hand():
    stats = BoneStatistics(mean_mm=np.arange(1, 17) * 10.0, std_mm=np.zeros(16), num_poses=3)
    pose = np.zeros((1, 17, 3))
    pose[0, 0] = [1.0, 2.0, 3.0]
    pose[0, 1] = [1.0, 2.0, 3.0 + 20.0]  # limb 0 pelvis->right_hip: (0, 0, 20) / 10 = (0, 0, 2)
    pose[0, 2] = pose[0, 1] + [0.0, -40.0, 0.0]  # limb 1 right_hip->right_knee: (0, -40, 0) / 20 = (0, -2, 0)
    u = encode_orientation(pose, stats)
    np.testing.assert_array_equal(u[0, 0], [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(u[0, 1], [0.0, -2.0, 0.0])
    # Limb 2 right_knee->right_ankle: right_ankle sits at the origin, so (0,0,0) - (1,-38,23) over 30 mm.
    np.testing.assert_allclose(u[0, 2], np.array([-1.0, 38.0, -23.0]) / 30.0)
    # Decoding one unit along x in limb 3 (pelvis->left_hip, mean 40 mm) puts left_hip at root + (40, 0, 0).
    delta = np.zeros((1, 16, 3))
    delta[0, 3] = [1.0, 0.0, 0.0]
    residual = residual_pose(delta, stats)
    np.testing.assert_array_equal(residual[0, 4], [40.0, 0.0, 0.0])
    np.testing.assert_array_equal(residual[0, 6], [40.0, 0.0, 0.0])  # descendants of left_hip move with it
    assert np.count_nonzero(np.abs(residual).sum(axis=-1)) == 3, "only left_hip, left_knee, left_ankle move"


def test_bone_lengths_and_statistics_by_hand():
    # Frame 0: every bone 100 mm; frame 1: every bone 300 mm -> mean 200, population std 100.
    directions = np.tile([0.0, 0.6, 0.8], (16, 1))
    poses = np.stack([build_pose(np.zeros(3), directions, np.full(16, length)) for length in (100.0, 300.0)])
    np.testing.assert_allclose(bone_lengths(poses), [[100.0] * 16, [300.0] * 16])
    stats = bone_statistics(poses)
    np.testing.assert_allclose(stats.mean_mm, 200.0)
    np.testing.assert_allclose(stats.std_mm, 100.0)
    assert stats.num_poses == 2
    with pytest.raises(ValueError):
        stats.mean_mm[0] = 1.0


def test_bone_statistics_json_round_trip():
    stats = BoneStatistics(mean_mm=np.linspace(50, 500, 16), std_mm=np.linspace(0, 15, 16), num_poses=7)
    restored = BoneStatistics.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert restored.equals(stats)
    assert restored.to_dict()["limb_names"][5] == "left_knee->left_ankle"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mean_mm": [float("nan")] + [100.0] * 15}, "mean_mm contains 1 non-finite"),
        ({"std_mm": [float("inf")] * 2 + [1.0] * 14}, "std_mm contains 2 non-finite"),
        ({"mean_mm": [0.0] + [100.0] * 15}, "non-positive for pelvis->right_hip"),
        ({"mean_mm": [100.0] * 15}, r"shape \(16,\)"),
        ({"num_poses": 0}, "num_poses must be >= 1"),
        ({"limb_names": ["a"] * 16}, "do not match the H36M limb order"),
    ],
)
def test_bone_statistics_rejects_bad_values(change, message):
    data = {"mean_mm": [100.0] * 16, "std_mm": [1.0] * 16, "num_poses": 4, **change}
    with pytest.raises(ValueError, match=message):
        BoneStatistics.from_dict(data)


def test_bone_statistics_rejects_missing_keys_and_degenerate_training_sets():
    with pytest.raises(ValueError, match="lack keys: std_mm"):
        BoneStatistics.from_dict({"mean_mm": [1.0] * 16, "num_poses": 1})
    with pytest.raises(ValueError, match="empty"):
        bone_statistics(np.zeros((0, 17, 3)))
    with pytest.raises(ValueError, match="non-positive"):
        bone_statistics(np.zeros((2, 17, 3)))  # every joint at one point: zero-length bones


def test_inputs_are_validated():
    stats = unit_stats()
    poses = np.zeros((2, 17, 3))
    poses[1, 3, 2] = np.nan
    with pytest.raises(ValueError, match="poses contains 1 non-finite"):
        encode_orientation(poses, stats)
    with pytest.raises(ValueError, match=r"shape \(N, 17, 3\)"):
        encode_orientation(np.zeros((2, 16, 3)), stats)
    with pytest.raises(ValueError, match=r"shape \(N, 16, 3\)"):
        decode_orientation(np.zeros((2, 17, 3)), stats)
    with pytest.raises(ValueError, match="root has 1 frames"):
        decode_orientation(np.zeros((2, 16, 3)), stats, root=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="delta_orientations has 3 frames"):
        refine(np.zeros((2, 17, 3)), np.zeros((3, 16, 3)), stats)
    with pytest.raises(ValueError, match="differ in shape"):
        orientation_residual_target(np.zeros((2, 17, 3)), np.zeros((1, 17, 3)), stats)
    with pytest.raises(ValueError, match="must be a BoneStatistics"):
        encode_orientation(np.zeros((1, 17, 3)), {"mean_mm": [1.0] * 16})
