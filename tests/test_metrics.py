"""MPJPE / PA-MPJPE and per-action aggregation: hand-worked golden values and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from patchpose.metrics import (
    MEAN_OF_ACTION_MEANS_LABEL,
    MEAN_OVER_FRAMES_LABEL,
    TABLE_COLUMNS,
    mpjpe,
    pa_mpjpe,
    per_action_errors,
    per_action_table,
    per_frame_mpjpe,
    per_frame_pa_mpjpe,
    per_joint_errors,
    procrustes_align,
)

FINITE = {"allow_nan": False, "allow_infinity": False}
NUM_FRAMES = 2
POSE_SHAPE = (NUM_FRAMES, 17, 3)
# Generated poses: a fixed generic cloud (seeded, ~300 mm spread) plus hypothesis-drawn perturbations, so
# examples explore the space without collapsing to the degenerate all-equal clouds arrays() likes to try.
BASE_POSES_MM = np.random.default_rng(7).normal(0.0, 300.0, POSE_SHAPE)
poses_mm = arrays(np.float64, POSE_SHAPE, elements=st.floats(-150.0, 150.0, **FINITE)).map(lambda d: BASE_POSES_MM + d)
noise_mm = arrays(np.float64, POSE_SHAPE, elements=st.floats(-300.0, 300.0, **FINITE))
translations_mm = arrays(np.float64, 3, elements=st.floats(-5000.0, 5000.0, **FINITE))
rotation_vectors = arrays(np.float64, 3, elements=st.floats(-np.pi, np.pi, **FINITE))

# Octahedron with half-axes 1, 2, 3 (mm): centred, non-planar, distinct second moments (2, 8, 18).
OCTAHEDRON_123 = np.array([[1, 0, 0], [-1, 0, 0], [0, 2, 0], [0, -2, 0], [0, 0, 3], [0, 0, -3]], dtype=float)[None]


def well_conditioned(pred: np.ndarray, gt: np.ndarray) -> bool:
    """True when every frame's Procrustes fit is unique (covariance well away from rank-deficient/ties)."""
    centred_pred = pred - pred.mean(axis=1, keepdims=True)
    centred_gt = gt - gt.mean(axis=1, keepdims=True)
    singular = np.linalg.svd(np.einsum("nji,njk->nik", centred_pred, centred_gt), compute_uv=False)
    return bool(
        np.all(singular[:, 2] > 1e-3 * singular[:, 0])
        and np.all(singular[:, 1] - singular[:, 2] > 1e-3 * singular[:, 0])
    )


# ---------------------------------------------------------------- golden values (worked by hand)


def test_mpjpe_golden_one_joint_shifted_by_3_4_0():
    gt = np.random.default_rng(0).normal(0.0, 200.0, POSE_SHAPE)
    pred = gt.copy()
    pred[:, 5] += [3.0, 4.0, 0.0]
    # Joint 5 is off by |(3, 4, 0)| = 5 mm in both frames, 16 joints by 0 -> per frame (5 + 16*0) / 17 = 5/17.
    np.testing.assert_allclose(per_frame_mpjpe(pred, gt), [5 / 17, 5 / 17], rtol=1e-12)
    assert mpjpe(pred, gt) == pytest.approx(5 / 17, rel=1e-12)
    expected_joints = np.zeros((NUM_FRAMES, 17))
    expected_joints[:, 5] = 5.0
    np.testing.assert_allclose(per_joint_errors(pred, gt), expected_joints, atol=1e-12)


def test_mpjpe_golden_root_shift_moves_every_aligned_joint():
    gt = np.random.default_rng(1).normal(0.0, 200.0, POSE_SHAPE)
    pred = gt.copy()
    pred[:, 0] += [0.0, 0.0, 12.0]
    # After subtracting the root, the other 16 joints of pred sit 12 mm off (in -z), the root 0 mm:
    # (16 * 12 + 0) / 17 = 192/17 mm. Without root alignment only the root is off: 12/17 mm.
    assert mpjpe(pred, gt) == pytest.approx(192 / 17, rel=1e-12)
    assert mpjpe(pred, gt, root=None) == pytest.approx(12 / 17, rel=1e-12)
    # Aligning at another joint (8, thorax) instead: again only the pelvis is off -> 12/17.
    assert mpjpe(pred, gt, root=8) == pytest.approx(12 / 17, rel=1e-12)


def test_pa_mpjpe_golden_similar_prediction_is_zero():
    gt = np.random.default_rng(2).normal(0.0, 300.0, POSE_SHAPE)
    rotation = Rotation.from_rotvec([0.3, -1.2, 2.0]).as_matrix()
    pred = 0.7 * gt @ rotation.T + np.array([100.0, -2000.0, 4500.0])
    assert pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-9)


def test_pa_mpjpe_golden_stretched_octahedron_is_one_third():
    # gt: unit octahedron (+-1 on each axis). pred stretches x by 2. P^T G = diag(2,1,1) * sum g g^T =
    # diag(4, 2, 2): R = I, no reflection; s = trace(S) / ||P||^2 = (4+2+2) / (4+4+1+1+1+1) = 8/12 = 2/3.
    # Aligned x points: 2 * 2/3 = 4/3 (error 1/3); the four others: 2/3 (error 1/3) -> PA-MPJPE = 1/3 mm.
    gt = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)[None]
    pred = gt * np.array([2.0, 1.0, 1.0])
    assert pa_mpjpe(pred, gt) == pytest.approx(1 / 3, rel=1e-12)
    np.testing.assert_allclose(procrustes_align(pred, gt), pred * (2 / 3), atol=1e-12)
    # Moving pred by a similarity transform changes nothing.
    moved = 5.0 * pred @ Rotation.from_rotvec([1.0, 2.0, -0.5]).as_matrix().T + 40.0
    assert pa_mpjpe(moved, gt) == pytest.approx(1 / 3, rel=1e-9)


def test_pa_mpjpe_golden_mirror_image_is_not_aligned_away():
    # pred mirrors gt in x. P^T G = diag(-1,1,1) * diag(2, 8, 18) = diag(-2, 8, 18): the best orthogonal map
    # is the reflection itself, excluded. Over rotations, trace(R^T diag(-2,8,18)) peaks at R = I (24),
    # i.e. the smallest singular direction flips; s = 24 / (2 + 8 + 18) = 6/7. Errors of (6/7) pred vs gt:
    # x points 1 + 6/7 = 13/7, y points 2 - 12/7 = 2/7, z points 3 - 18/7 = 3/7 (two each)
    # -> mean (13 + 2 + 3) / 7 / 3 = 6/7 mm, not 0.
    mirror = np.array([-1.0, 1.0, 1.0])
    pred = OCTAHEDRON_123 * mirror
    assert pa_mpjpe(pred, OCTAHEDRON_123) == pytest.approx(6 / 7, rel=1e-12)
    np.testing.assert_allclose(procrustes_align(pred, OCTAHEDRON_123), pred * (6 / 7), atol=1e-12)
    # Undoing the mirror (which Procrustes may not do) gives 0, so the 6/7 is the reflection's cost.
    assert pa_mpjpe(pred * mirror, OCTAHEDRON_123) == pytest.approx(0.0, abs=1e-12)


def test_pa_mpjpe_is_per_frame_in_a_batch():
    unit = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
    gt = np.stack([unit, OCTAHEDRON_123[0]])
    pred = np.stack([unit * [2.0, 1.0, 1.0], OCTAHEDRON_123[0] * [-1.0, 1.0, 1.0]])
    np.testing.assert_allclose(per_frame_pa_mpjpe(pred, gt), [1 / 3, 6 / 7], rtol=1e-12)
    assert pa_mpjpe(pred, gt) == pytest.approx((1 / 3 + 6 / 7) / 2, rel=1e-12)


def test_pa_mpjpe_can_exceed_mpjpe_when_one_joint_is_off():
    # Procrustes minimises squared error: it spreads one joint's 5 mm over all joints, raising the mean.
    gt = np.random.default_rng(0).normal(0.0, 200.0, POSE_SHAPE)
    pred = gt.copy()
    pred[:, 5] += [3.0, 4.0, 0.0]
    assert pa_mpjpe(pred, gt) > mpjpe(pred, gt) == pytest.approx(5 / 17)


def test_procrustes_of_a_single_point_prediction_collapses_to_gt_centroid():
    gt = np.random.default_rng(3).normal(0.0, 100.0, (1, 17, 3))
    aligned = procrustes_align(np.full((1, 17, 3), 7.0), gt)
    np.testing.assert_allclose(aligned, np.broadcast_to(gt.mean(axis=1, keepdims=True), gt.shape))


# ---------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(gt=poses_mm, noise=noise_mm, rotvec=rotation_vectors, shift=translations_mm, scale=st.floats(0.1, 10.0))
def test_pa_mpjpe_invariant_to_similarity_of_prediction(gt, noise, rotvec, shift, scale):
    pred = gt + noise
    assume(well_conditioned(pred, gt))
    moved = scale * pred @ Rotation.from_rotvec(rotvec).as_matrix().T + shift
    np.testing.assert_allclose(per_frame_pa_mpjpe(moved, gt), per_frame_pa_mpjpe(pred, gt), rtol=1e-7, atol=1e-7)


@settings(max_examples=40, deadline=None)
@given(gt=poses_mm, noise=noise_mm)
def test_procrustes_never_raises_rms_error_above_root_alignment(gt, noise):
    # The least-squares similarity fit beats the root-aligned identity (s=1, R=I, a translation) in RMS.
    pred = gt + noise
    aligned = procrustes_align(pred, gt)
    rms_pa = np.sqrt(np.mean(np.sum((aligned - gt) ** 2, axis=-1), axis=1))
    rms_root = np.sqrt(np.mean(per_joint_errors(pred, gt) ** 2, axis=1))
    assert np.all(rms_pa <= rms_root + 1e-9)


@settings(max_examples=40, deadline=None)
@given(gt=poses_mm, noise=noise_mm)
def test_procrustes_output_is_a_proper_similarity_of_prediction(gt, noise):
    pred = gt + noise
    aligned = procrustes_align(pred, gt)
    # Pairwise distances scale by one positive factor per frame, and handedness (triple products) is kept.
    pairs_pred = np.linalg.norm(pred[:, :, None] - pred[:, None], axis=-1)
    pairs_aligned = np.linalg.norm(aligned[:, :, None] - aligned[:, None], axis=-1)
    factor = pairs_aligned[:, 0, 1:].sum(axis=1) / pairs_pred[:, 0, 1:].sum(axis=1)
    np.testing.assert_allclose(pairs_aligned, factor[:, None, None] * pairs_pred, rtol=1e-7, atol=1e-6)
    edges_pred = pred[:, 1:4] - pred[:, :1]
    edges_aligned = aligned[:, 1:4] - aligned[:, :1]
    np.testing.assert_allclose(
        np.linalg.det(edges_aligned), factor**3 * np.linalg.det(edges_pred), rtol=1e-6, atol=1e-3
    )


@settings(max_examples=40, deadline=None)
@given(gt=poses_mm, noise=noise_mm, shift=translations_mm)
def test_mpjpe_invariant_to_common_translation(gt, noise, shift):
    pred = gt + noise
    for root in (0, 8, None):
        np.testing.assert_allclose(
            per_frame_mpjpe(pred + shift, gt + shift, root), per_frame_mpjpe(pred, gt, root), rtol=1e-9, atol=1e-9
        )
    # Protocol 1 also ignores a translation of the prediction alone.
    np.testing.assert_allclose(per_frame_mpjpe(pred + shift, gt), per_frame_mpjpe(pred, gt), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------- per-action aggregation


def test_per_action_golden_conventions_differ():
    # A: one frame at 10 mm; B: three frames at 2 mm. Mean of action means (10 + 2) / 2 = 6;
    # mean over frames (10 + 2 + 2 + 2) / 4 = 16 / 4 = 4. Frames interleaved on purpose.
    errors = [2.0, 10.0, 2.0, 2.0]
    actions = ["B", "A", "B", "B"]
    summary = per_action_errors(errors, actions)
    assert summary.actions == ("A", "B"), "default order is sorted by name"
    assert summary.action_means == (10.0, 2.0) and summary.frame_counts == (1, 3)
    assert summary.mean_of_action_means == pytest.approx(6.0)
    assert summary.mean_over_frames == pytest.approx(4.0)
    assert summary.mean_for("B") == 2.0
    ordered = per_action_errors(errors, np.array(actions), action_order=["B", "A"])
    assert ordered.actions == ("B", "A") and ordered.action_means == (2.0, 10.0)
    with pytest.raises(KeyError, match="known: A, B"):
        summary.mean_for("C")


def test_per_action_table_golden_rows():
    # MPJPE as above; PA-MPJPE A: 4, B: 1, 1, 4 -> B mean 2; mean of means (4 + 2) / 2 = 3; over frames 10/4 = 2.5.
    rows = per_action_table([2.0, 10.0, 2.0, 2.0], [1.0, 4.0, 1.0, 4.0], ["B", "A", "B", "B"])
    assert [tuple(row) for row in rows] == [TABLE_COLUMNS] * 4
    assert rows[0] == {"action": "A", "frames": 1, "mpjpe_mm": 10.0, "pa_mpjpe_mm": 4.0}
    assert rows[1] == {"action": "B", "frames": 3, "mpjpe_mm": 2.0, "pa_mpjpe_mm": 2.0}
    assert rows[2] == {"action": MEAN_OF_ACTION_MEANS_LABEL, "frames": 4, "mpjpe_mm": 6.0, "pa_mpjpe_mm": 3.0}
    assert rows[3] == {"action": MEAN_OVER_FRAMES_LABEL, "frames": 4, "mpjpe_mm": 4.0, "pa_mpjpe_mm": 2.5}


@pytest.mark.parametrize(
    ("errors", "actions", "order", "message"),
    [
        ([1.0, 2.0], ["A"], None, "flat sequence of 2 labels"),
        ([1.0, np.nan], ["A", "B"], None, "errors_per_frame contains 1 non-finite"),
        ([], [], None, r"shape \(N,\) with N >= 1"),
        ([1.0, 2.0], ["A", "B"], ["A"], "missing from action_order: B"),
        ([1.0, 2.0], ["A", "B"], ["A", "B", "C"], "no frames: C"),
        ([1.0, 2.0], ["A", "B"], ["A", "B", "A"], "duplicates"),
    ],
)
def test_per_action_errors_rejects_bad_inputs(errors, actions, order, message):
    with pytest.raises(ValueError, match=message):
        per_action_errors(errors, actions, action_order=order)


def test_per_action_table_rejects_labels_clashing_with_average_rows():
    with pytest.raises(ValueError, match="clash"):
        per_action_table([1.0], [1.0], [MEAN_OVER_FRAMES_LABEL])


# ---------------------------------------------------------------- input validation


def test_non_finite_poses_are_rejected_naming_array_and_count():
    gt = np.zeros(POSE_SHAPE)
    pred = np.zeros(POSE_SHAPE)
    pred[0, 3, 1] = np.nan
    pred[1, 7, 2] = np.inf
    for metric in (mpjpe, pa_mpjpe, procrustes_align, per_frame_mpjpe, per_frame_pa_mpjpe, per_joint_errors):
        with pytest.raises(ValueError, match="pred contains 2 non-finite"):
            metric(pred, gt)
        with pytest.raises(ValueError, match="gt contains 2 non-finite"):
            metric(gt, pred)


def test_shape_errors_are_rejected():
    with pytest.raises(ValueError, match="same shape"):
        mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 16, 3)))
    with pytest.raises(ValueError, match="same shape"):
        pa_mpjpe(np.zeros((3, 17, 3)), np.zeros((2, 17, 3)))
    with pytest.raises(ValueError, match=r"pred must have shape \(N, J, 3\)"):
        mpjpe(np.zeros((17, 3)), np.zeros((17, 3)))
    with pytest.raises(ValueError, match="at least one frame"):
        pa_mpjpe(np.zeros((0, 17, 3)), np.zeros((0, 17, 3)))
    with pytest.raises(ValueError, match="root must be a joint index"):
        mpjpe(np.zeros((1, 17, 3)), np.zeros((1, 17, 3)), root=17)
