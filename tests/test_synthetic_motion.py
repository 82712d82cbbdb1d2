"""Synthetic motion: rotation helpers, forward kinematics, arm IK, props and the 15 action families."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchpose.skeleton import H36M
from patchpose.synthetic import kinematics as kin
from patchpose.synthetic.body import H36M_MEAN_BONE_LENGTHS_MM, make_subject
from patchpose.synthetic.motion import ACTIONS, SUPPORTS, MotionBuilder, sample_angles, sample_sequence
from patchpose.synthetic.props import Box, make_chair

BODY = make_subject("S9", np.random.default_rng(7))
HEAD_CENTRE = (9, 10)  # the head as the midpoint of the nose and head-top joints


def _pose(**angles) -> np.ndarray:
    a = np.zeros(kin.NUM_DOFS)
    for name, value in angles.items():
        a[kin.DOF_INDEX[name]] = value
    return a


def _bone_lengths(joints: np.ndarray) -> np.ndarray:
    return np.linalg.norm(joints[..., H36M.limb_children, :] - joints[..., H36M.limb_parents, :], axis=-1)


def _canonical(joints: np.ndarray) -> np.ndarray:
    """Root-relative joints rotated about z so the hip line points along +x (the subject faces +y)."""
    rel = joints - joints[:, :1]
    forward = np.cross([0.0, 0.0, 1.0], rel[:, 1] - rel[:, 4])
    yaw = np.arctan2(forward[:, 0], forward[:, 1])
    return np.einsum("fij,fkj->fki", kin.rotation_z(yaw), rel)


def _sequences(action: str, seeds=range(4), frames: int = 120):
    return [sample_sequence(action, BODY, frames, np.random.default_rng(seed)) for seed in seeds]


# --- rotation helpers -------------------------------------------------------------------------------


@given(st.lists(st.floats(-7.0, 7.0), min_size=3, max_size=3))
@settings(max_examples=60, deadline=None)
def test_axis_angle_is_a_rotation_about_its_axis(rotvec):
    v = np.array(rotvec)
    r = kin.axis_angle_to_matrix(v)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_allclose(r @ v, v, atol=1e-9)  # the axis is fixed


def test_axis_rotations_and_euler_agree_with_axis_angle():
    np.testing.assert_allclose(kin.axis_angle_to_matrix([0, 0, np.pi / 2]) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(kin.rotation_x(np.pi / 2) @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(kin.rotation_y(np.pi / 2) @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    angles = np.random.default_rng(0).uniform(-3, 3, size=(5, 3))
    for a in angles:
        for i, axis in enumerate(np.eye(3)):
            np.testing.assert_allclose(kin._axis_rotation(a[i], i), kin.axis_angle_to_matrix(a[i] * axis), atol=1e-12)
        expected = kin.rotation_z(a[0]) @ kin.rotation_x(a[1]) @ kin.rotation_y(a[2])
        np.testing.assert_allclose(kin.euler_to_matrix(a, "zxy"), expected, atol=1e-12)
    np.testing.assert_allclose(kin.euler_to_matrix(angles, "xyz")[3], kin.euler_to_matrix(angles[3], "xyz"))
    tiny = kin.axis_angle_to_matrix([1e-10, 0, 0])
    np.testing.assert_allclose(tiny, np.eye(3), atol=1e-9)
    with pytest.raises(ValueError, match="order"):
        kin.euler_to_matrix(angles[0], "xxw")


# --- forward kinematics -------------------------------------------------------------------------------


@given(
    st.lists(st.floats(0.0, 1.0), min_size=kin.NUM_DOFS, max_size=kin.NUM_DOFS),
    st.lists(st.floats(0.7, 1.3), min_size=16, max_size=16),
)
@settings(max_examples=60, deadline=None)
def test_fk_preserves_every_bone_length(fractions, scales):
    lo, hi = kin.LIMITS_DEG[:, 0], kin.LIMITS_DEG[:, 1]
    angles = lo + np.array(fractions) * (hi - lo)
    lengths = H36M_MEAN_BONE_LENGTHS_MM * np.array(scales)
    np.testing.assert_allclose(_bone_lengths(kin.forward_kinematics(angles, lengths)), lengths, rtol=1e-12)


def test_fk_bone_lengths_vectorised_with_a_subject_body():
    angles = np.random.default_rng(1).uniform(kin.LIMITS_DEG[:, 0], kin.LIMITS_DEG[:, 1], size=(200, kin.NUM_DOFS))
    joints = kin.forward_kinematics(angles, BODY)
    assert joints.shape == (200, 17, 3)
    np.testing.assert_allclose(_bone_lengths(joints), np.broadcast_to(BODY.bone_lengths_mm, (200, 16)), rtol=1e-12)


def test_frame_conventions():
    """z up, facing +y, the subject's left at -x; each angle moves the limb the documented way."""
    rest = kin.forward_kinematics(np.zeros(kin.NUM_DOFS), BODY)
    assert np.all(rest[list(H36M.left_joints), 0] < 0) and np.all(rest[list(H36M.right_joints), 0] > 0)
    assert rest[10, 2] > rest[8, 2] > rest[0, 2] > rest[2, 2] > rest[3, 2] and rest[9, 1] > 0
    j = kin.forward_kinematics(_pose(l_sh_flex=90), BODY)
    assert j[13, 1] - j[11, 1] == pytest.approx(BODY.bone_lengths_mm[11:13].sum())  # arm forward
    j = kin.forward_kinematics(_pose(r_sh_abd=90, l_sh_abd=90), BODY)
    assert j[16, 0] - j[14, 0] > 500 and j[13, 0] - j[11, 0] < -500  # both arms outward
    j = kin.forward_kinematics(_pose(r_hip_flex=90, r_knee=90), BODY)
    assert j[2, 1] > 400 and abs(j[2, 2] - j[1, 2]) < 1e-9 and j[3, 2] < j[2, 2] - 400  # seated leg
    j = kin.forward_kinematics(_pose(spine_flex=60), BODY)
    assert j[8, 1] > 200  # bending forward
    j = kin.forward_kinematics(_pose(root_yaw=90), BODY)
    assert j[9, 0] < -30  # turned to the left: the nose points to -x
    j = kin.forward_kinematics(_pose(l_elbow=90, l_sh_rot=90), BODY)
    assert j[13, 0] - j[12, 0] == pytest.approx(
        BODY.bone_lengths_mm[12]
    )  # internal rotation brings the left forearm across the body


def test_mirrored_angles_mirror_the_pose():
    angles = np.random.default_rng(2).uniform(kin.LIMITS_DEG[:, 0], kin.LIMITS_DEG[:, 1], size=(50, kin.NUM_DOFS))
    joints = kin.forward_kinematics(angles, BODY)
    mirrored = kin.forward_kinematics(kin.mirror_angles(angles), BODY)
    np.testing.assert_allclose(mirrored, joints[:, H36M.flip_permutation] * [-1, 1, 1], atol=1e-9)
    np.testing.assert_array_equal(kin.mirror_angles(kin.mirror_angles(angles)), angles)


def test_clip_to_limits_and_angle_validation():
    wild = np.random.default_rng(3).uniform(-500, 500, size=(100, kin.NUM_DOFS))
    clipped = kin.clip_to_limits(wild)
    assert np.all(clipped >= kin.LIMITS_DEG[:, 0]) and np.all(clipped <= kin.LIMITS_DEG[:, 1])
    yaw = kin.DOF_INDEX["root_yaw"]
    np.testing.assert_allclose(np.cos(np.deg2rad(clipped[:, yaw])), np.cos(np.deg2rad(wild[:, yaw])), atol=1e-9)
    assert kin.JOINT_LIMITS_DEG["l_knee"] == (0.0, 150.0) and kin.JOINT_LIMITS_DEG["r_hip_abd"] == (-30.0, 60.0)
    with pytest.raises(ValueError, match="angles must be"):
        kin.forward_kinematics(np.zeros((4, 24)), BODY)
    with pytest.raises(ValueError, match="bone lengths"):
        kin.forward_kinematics(np.zeros(kin.NUM_DOFS), np.ones(15))


def test_arm_ik_puts_the_wrist_on_reachable_targets():
    rng = np.random.default_rng(4)
    n = 300
    angles = np.zeros((n, kin.NUM_DOFS))
    angles[:, :9] = rng.uniform(-20, 20, size=(n, 9))
    joints, frames = kin.forward_kinematics(angles, BODY, return_frames=True)
    for side, shoulder, wrist in (("r", 14, 16), ("l", 11, 13)):
        upper, fore = BODY.bone_lengths_mm[shoulder], BODY.bone_lengths_mm[shoulder + 1]
        direction = rng.normal(size=(n, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        target = joints[:, shoulder] + direction * rng.uniform(170, 0.98 * (upper + fore), size=(n, 1))
        solved = kin.arm_ik(joints[:, shoulder], frames["thorax"], target, upper, fore, side, rng.uniform(-90, 90, n))
        posed = angles.copy()
        posed[:, [kin.DOF_INDEX[f"{side}_{d}"] for d in ("sh_flex", "sh_abd", "sh_rot", "elbow")]] = solved
        np.testing.assert_allclose(kin.forward_kinematics(posed, BODY)[:, wrist], target, atol=1e-6)
    with pytest.raises(ValueError, match="side"):
        kin.arm_ik(joints[:, 14], frames["thorax"], target, upper, fore, "x")


# --- props --------------------------------------------------------------------------------------------


def test_box_rotation_contains_and_transform():
    box = Box((100.0, 0.0, 50.0), (40.0, 20.0, 50.0), np.pi / 2, "test")
    np.testing.assert_allclose(box.rotation @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    assert box.contains([100.0, 35.0, 50.0]) and not box.contains([135.0, 0.0, 50.0])  # long axis along y now
    assert box.corners().shape == (8, 3)
    moved = box.transformed(np.pi / 2, (0.0, 0.0, 10.0))
    np.testing.assert_allclose(moved.centre, [0.0, 100.0, 60.0], atol=1e-9)
    assert moved.yaw == pytest.approx(np.pi)
    np.testing.assert_allclose(np.sort(moved.corners(), axis=0), np.sort(box.corners() @ kin.rotation_z(np.pi / 2).T
                                                                          + [0, 0, 10], axis=0), atol=1e-9)  # fmt: skip
    with pytest.raises(ValueError, match="half_size"):
        Box((0, 0, 0), (1, 0, 1))


def test_make_chair_geometry():
    seat, backrest, *legs = make_chair(450.0, 460.0, 440.0, back_y_mm=-150.0)
    assert seat.centre[2] + seat.half_size[2] == pytest.approx(450.0)  # seat top at the seat height
    assert seat.centre[1] - seat.half_size[1] == pytest.approx(-150.0)  # back edge behind the pelvis
    assert backrest.centre[1] < 0 and backrest.centre[2] - backrest.half_size[2] == pytest.approx(450.0)
    assert len(legs) == 4
    for leg in legs:
        assert leg.centre[2] - leg.half_size[2] == pytest.approx(0.0)  # on the floor
        assert leg.centre[2] + leg.half_size[2] == pytest.approx(seat.centre[2] - seat.half_size[2])
    with pytest.raises(ValueError, match="seat_height_mm"):
        make_chair(20.0)


# --- action families ----------------------------------------------------------------------------------


def test_actions_are_the_15_canonical_names():
    assert ACTIONS[0] == "Directions" and ACTIONS[8] == "Sitting" and ACTIONS[-1] == "WalkTogether"
    assert len(ACTIONS) == 15


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_is_well_formed(action):
    for seed in range(3):
        angles = sample_angles(action, BODY, 150, np.random.default_rng(seed))
        a = angles.angles_deg
        assert a.shape == (150, kin.NUM_DOFS) and angles.reference_deg.shape == (kin.NUM_DOFS,)
        assert np.all(a >= kin.LIMITS_DEG[:, 0]) and np.all(a <= kin.LIMITS_DEG[:, 1]), "angles within the limits"
        seq = sample_sequence(action, BODY, 150, np.random.default_rng(seed))
        np.testing.assert_array_equal(seq.angles_deg, a)  # sample_sequence poses exactly these angles
        assert seq.action == action and seq.support in SUPPORTS
        assert seq.joints.shape == (150, 17, 3) and np.all(np.isfinite(seq.joints))
        np.testing.assert_allclose(_bone_lengths(seq.joints), np.broadcast_to(BODY.bone_lengths_mm, (150, 16)))
        assert seq.joints[:, [3, 6], 2].min() >= 0.0, "ankles above the floor"
        if seq.support != "floor":
            assert np.all(seq.joints[:, 10, 2] > seq.joints[:, 0, 2]), "head above the pelvis"
        if seq.support in ("standing", "chair_transition"):
            np.testing.assert_allclose(seq.joints[:, [3, 6], 2].min(axis=1), 80.0)  # a foot on the floor
        assert (len(seq.props) == 6) == seq.support.startswith("chair")


def test_sitting_rests_on_the_chair_with_thighs_near_horizontal():
    for seq in _sequences("Sitting", range(6)):
        j, (seat, backrest, *_) = seq.joints, seq.props
        assert seq.support == "chair"
        top = seat.centre[2] + seat.half_size[2]
        assert np.all((j[:, 0, 2] - top > 0) & (j[:, 0, 2] - top < 60)), "pelvis within 60 mm above the seat top"
        rise = np.abs(j[:, [2, 5], 2] - j[:, [1, 4], 2])  # knee height - hip height, (F, 2)
        lower = rise.min(axis=1)  # a crossed leg rides ~170 mm higher on the other knee
        assert np.median(lower) < 100 and np.all(lower < 150) and np.all(rise < 250), "thighs roughly horizontal"
        thigh, shank = j[:, [2, 5]] - j[:, [1, 4]], j[:, [3, 6]] - j[:, [2, 5]]
        cos = np.sum(thigh * shank, -1) / np.linalg.norm(thigh, axis=-1) / np.linalg.norm(shank, axis=-1)
        assert np.all(np.degrees(np.arccos(cos)).max(axis=1) > 60), "knees flexed"
        assert np.all(j[:, [3, 6], 1] > seat.centre[1] - seat.half_size[1]), "feet in front of the backrest"
        assert backrest.centre[1] + backrest.half_size[1] < j[:, [0, 7, 8], 1].min(), "backrest behind the back"
        for box in seq.props:  # the torso, hips and knees never inside the chair
            assert not box.contains(j[:, [0, 1, 2, 4, 5, 7, 8, 9, 10]]).any()


def test_sitting_down_sits_low_on_a_chair_or_on_the_floor():
    supports = set()
    for seed in range(12):
        seq = sample_sequence("SittingDown", BODY, 100, np.random.default_rng(seed))
        supports.add(seq.support)
        j = seq.joints
        if seq.support == "floor":
            assert np.all(j[:, 0, 2] < 300) and not seq.props
        else:
            assert seq.support == "chair_transition"
            mid = j[:, [3, 6], :2].mean(axis=1)
            np.testing.assert_allclose(mid, np.broadcast_to(mid[0], mid.shape), atol=1e-6)  # feet planted
            seat = seq.props[0]
            top = seat.centre[2] + seat.half_size[2]
            assert np.all(j[:, 0, 2] > top) and top < 600, "a low seat under a pelvis that never sinks into it"
            reference = sample_angles("SittingDown", BODY, 100, np.random.default_rng(seed)).reference_deg
            assert reference[[kin.DOF_INDEX["l_knee"], kin.DOF_INDEX["r_knee"]]].min() > 85, "seated reference"
            for box in seq.props:
                assert not box.contains(j[:, [0, 1, 2, 4, 5, 7, 8]]).any()
    assert supports == {"floor", "chair_transition"}


def test_bending_forward_keeps_the_feet_under_the_body():
    """Purchases bends at the hips (pelvis tilt compensated at the hips), so the legs stay under it."""
    offsets = []
    for seq in _sequences("Purchases", range(8), 200):
        j = seq.joints
        torso, leg = j[:, 8] - j[:, 0], j[:, [3, 6]].mean(axis=1) - j[:, 0]
        bent = np.degrees(np.arccos(torso[:, 2] / np.linalg.norm(torso, axis=1))) > 30
        offsets.append(np.degrees(np.arccos(-leg[bent, 2] / np.linalg.norm(leg[bent], axis=1))))
    offsets = np.concatenate(offsets)
    assert offsets.size > 50 and offsets.max() < 15


def test_walking_ankles_alternate():
    for seq in _sequences("Walking", range(4), 200):
        c = _canonical(seq.joints)
        forward = c[:, [3, 6], 1] - c[:, [1, 4], 1].mean(axis=1, keepdims=True)
        assert np.corrcoef(forward[:, 0], forward[:, 1])[0, 1] < -0.5
        assert np.ptp(forward[:, 0]) > 250, "a real stride"


def test_phoning_keeps_a_wrist_at_the_head():
    near = []
    for seq in _sequences("Phoning", range(6), 200):
        head = seq.joints[:, HEAD_CENTRE].mean(axis=1, keepdims=True)
        near.append(np.linalg.norm(seq.joints[:, [13, 16]] - head, axis=-1).min(axis=1) < 150)
    assert np.mean(near) > 0.8 and np.median([n.mean() for n in near]) > 0.9


def test_determinism_and_variety():
    for action in ("Walking", "Sitting", "Posing"):
        a = sample_sequence(action, BODY, 60, np.random.default_rng(11))
        b = sample_sequence(action, BODY, 60, np.random.default_rng(11))
        c = sample_sequence(action, BODY, 60, np.random.default_rng(12))
        np.testing.assert_array_equal(a.joints, b.joints)
        assert [p.centre.tolist() for p in a.props] == [p.centre.tolist() for p in b.props]
        assert np.abs(a.joints - c.joints).max() > 50
        assert np.abs(a.joints[0] - a.joints[-1]).max() > 10, "frames vary within a sequence"


def test_the_15_actions_differ():
    """Mean heading-aligned root-relative poses (12 sequences each) differ by > 10 mm per joint on average
    (the closest pair, Discussion / Smoking, sits at ~16-20 mm; most pairs at 30-300 mm)."""
    means = {a: np.concatenate([_canonical(s.joints) for s in _sequences(a, range(12), 60)]).mean(0) for a in ACTIONS}
    for a, b in itertools.combinations(ACTIONS, 2):
        assert np.linalg.norm(means[a] - means[b], axis=-1).mean() > 10.0, f"{a} and {b} look alike on average"


def test_rare_poses_have_depth_ambiguity():
    """Sitting puts thighs along the facing direction (toward a frontal camera), Walking does not."""
    sit = np.concatenate([_canonical(s.joints) for s in _sequences("Sitting", range(3))])
    walk = np.concatenate([_canonical(s.joints) for s in _sequences("Walking", range(3))])
    along = lambda c: np.abs(c[:, [2, 5], 1] - c[:, [1, 4], 1]).mean()  # noqa: E731
    assert along(sit) > 300 > along(walk)


def test_argument_errors():
    with pytest.raises(ValueError, match="known actions: Directions, Discussion.*WalkDog, Walking, WalkTogether"):
        sample_sequence("Dancing", BODY, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="num_frames"):
        sample_angles("Walking", BODY, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="Generator"):
        sample_angles("Walking", BODY, 5, 3)
    with pytest.raises(ValueError, match="SubjectBody"):
        sample_angles("Walking", np.ones(16), 5, np.random.default_rng(0))


def test_builder_time_signals():
    m = MotionBuilder(BODY, 3000, np.random.default_rng(8))
    assert m.t.shape == (3001,) and np.allclose(np.diff(m.t), 1 / 50)
    weights = m.modes([1.0, 2.0, 1.0], 3.0, 0.5)
    assert weights.shape == (3001, 3) and np.all(weights >= -1e-12) and np.all(weights <= 1 + 1e-12)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert np.all(weights.max(axis=0) > 0.99) and np.abs(np.diff(weights, axis=0)).max() < 0.03  # crossfades
    envelope = m.events(5.0, 1.5)
    assert envelope.min() == 0.0 and envelope.max() > 0.99 and np.all(envelope <= 1.0)
    noise = m.smooth(4.0)
    assert 1.5 < noise.std() < 7.0 and np.abs(np.diff(noise)).max() < 1.0  # smooth at 50 Hz


def test_frame_step_spreads_the_poses():
    """frame_step = 64 (the Human3.6M test protocol) gives far more varied consecutive poses."""
    dense = sample_sequence("Walking", BODY, 40, np.random.default_rng(3))
    sparse = sample_sequence("Walking", BODY, 40, np.random.default_rng(3), frame_step=64)
    step = lambda s: np.linalg.norm(np.diff(_canonical(s.joints), axis=0), axis=-1).mean()  # noqa: E731
    assert step(sparse) > 4 * step(dense)
    with pytest.raises(ValueError, match="frame_step"):
        sample_sequence("Walking", BODY, 4, np.random.default_rng(3), frame_step=0)


def test_single_frame_sequences():
    for action in ACTIONS:
        seq = sample_sequence(action, BODY, 1, np.random.default_rng(5))
        assert seq.joints.shape == (1, 17, 3) and np.isfinite(seq.joints).all()
