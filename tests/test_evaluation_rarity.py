"""Rarity: the body frame by hand, viewpoint invariance, golden nearest-neighbour distances, the chunked search
against a direct one, stores (views shared, training views counted once), and deciles of a hand-built set."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from patchpose.dataset_format import DatasetWriter, open_dataset
from patchpose.evaluation.frame_errors import FrameErrors, FrameErrorsFileError, read_frame_errors
from patchpose.evaluation.rarity import (
    DECILE_COLUMNS,
    body_frame,
    decile_rows,
    frame_rarity,
    pose_rarity,
    rarity_deciles,
    read_deciles,
)
from patchpose.skeleton import H36M
from tests.dataset_factory import T_POSE_MM, TINY_ACTIONS, TINY_SUBJECTS, make_tiny_batch

RIGHT_WRIST = H36M.joint_index("right_wrist")
FINITE = {"allow_nan": False, "allow_infinity": False}
BOOTSTRAP = {"resamples": 200, "seed": 0}


def _rows(rarity, poses, initial, refined, **bootstrap):
    """decile_rows with each pose its own cluster (the synthetic world's)."""
    return decile_rows(rarity, poses, initial, refined, clusters=np.asarray(poses), **{**BOOTSTRAP, **bootstrap})


def _moved_wrist(mm: float) -> np.ndarray:
    pose = T_POSE_MM.copy()
    pose[RIGHT_WRIST, 0] += mm  # along the hips: the body frame stays the same
    return pose


# --- the body frame ------------------------------------------------------------------------------------


def test_body_frame_of_the_t_pose_by_hand():
    # The T-pose faces the camera (y down): left_hip - right_hip = (260, 0, 0) -> x = camera x; the spine
    # thorax - pelvis = (0, -480, 0) -> z = -camera y; y = z × x = camera z (behind the body, away from the
    # camera). So a camera-frame point (X, Y, Z) relative to the pelvis is (X, Z, -Y) in the body frame.
    camera = T_POSE_MM + [100.0, 50.0, 4000.0]
    expected = np.stack([T_POSE_MM[:, 0], T_POSE_MM[:, 2], -T_POSE_MM[:, 1]], axis=1)
    np.testing.assert_allclose(body_frame(camera[None])[0], expected, atol=1e-9)
    head, nose = H36M.joint_index("head"), H36M.joint_index("neck_nose")
    np.testing.assert_allclose(body_frame(camera[None])[0, [head, nose]], [[0, 0, 715], [0, -20, 600]], atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    rotation=arrays(np.float64, 3, elements=st.floats(-np.pi, np.pi, **FINITE)),
    translation=arrays(np.float64, 3, elements=st.floats(-5000.0, 5000.0, **FINITE)),
)
def test_a_rotated_and_translated_copy_has_rarity_0_to_the_original(rotation, translation):
    pose = T_POSE_MM + np.random.default_rng(0).normal(0, 40, T_POSE_MM.shape)
    moved = Rotation.from_rotvec(rotation).apply(pose) + translation
    np.testing.assert_allclose(body_frame(moved[None]), body_frame(pose[None]), atol=1e-8)
    training = np.stack([pose, _moved_wrist(300.0)])
    assert pose_rarity(moved[None], training, k=1)[0] == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize(
    ("joints", "position"), [(("left_hip",), (-130, 0, 0)), (("thorax", "spine"), (0, 0, 0))]
)  # hips coincide; spine along the hips (thorax at the pelvis)
def test_a_pose_without_a_body_frame_is_refused(joints, position):
    pose = T_POSE_MM.copy()
    for joint in joints:
        pose[H36M.joint_index(joint)] = position
    with pytest.raises(ValueError, match="1 poses have no body frame .* first pose 1"):
        body_frame(np.stack([T_POSE_MM, pose]))


# --- nearest training poses ----------------------------------------------------------------------------


def test_rarity_golden_one_joint_apart():
    # One joint 34 mm off: 51-D distance 34, RMS over 17 joints 34 / sqrt(17) = 2 sqrt(17) mm.
    training = np.stack([T_POSE_MM, _moved_wrist(34.0)])
    assert pose_rarity(T_POSE_MM[None], training, k=1)[0] == pytest.approx(0.0, abs=1e-9)
    assert pose_rarity(T_POSE_MM[None], training, k=2)[0] == pytest.approx(math.sqrt(17), rel=1e-12)
    halfway = _moved_wrist(17.0)[None]  # 17 mm from both: sqrt(17) each
    assert pose_rarity(halfway, training, k=1)[0] == pytest.approx(math.sqrt(17), rel=1e-12)
    assert pose_rarity(halfway, training, k=2)[0] == pytest.approx(math.sqrt(17), rel=1e-12)


def test_chunked_search_equals_a_direct_one(monkeypatch):
    rng = np.random.default_rng(3)
    test = T_POSE_MM + rng.normal(0, 60, (37, 17, 3))
    train = T_POSE_MM + rng.normal(0, 60, (101, 17, 3))
    flat_test = body_frame(test).reshape(37, -1)
    flat_train = body_frame(train).reshape(101, -1)
    distances = np.linalg.norm(flat_test[:, None] - flat_train[None], axis=-1) / math.sqrt(17)
    expected = np.sort(distances, axis=1)[:, :5].mean(axis=1)
    np.testing.assert_allclose(pose_rarity(test, train, k=5), expected, rtol=1e-12)
    monkeypatch.setattr("patchpose.evaluation.rarity._BLOCK_ELEMENTS", 40)  # 3 test poses per block
    monkeypatch.setattr("patchpose.evaluation.rarity._REFERENCE_BLOCK", 7)  # 15 training blocks
    np.testing.assert_allclose(pose_rarity(test, train, k=5), expected, rtol=1e-12)
    np.testing.assert_allclose(pose_rarity(test, train, k=101), distances.mean(axis=1), rtol=1e-12)


@pytest.mark.parametrize(("k", "message"), [(3, "k = 3 nearest training poses asked for, but there are only 2"),
                                            (0, "k must be an integer >= 1")])  # fmt: skip
def test_bad_k_is_refused(k, message):
    with pytest.raises(ValueError, match=message):
        pose_rarity(T_POSE_MM[None], np.stack([T_POSE_MM, _moved_wrist(10.0)]), k=k)


# --- stores --------------------------------------------------------------------------------------------


def _turned(pose: np.ndarray, degrees: float) -> np.ndarray:
    """``pose`` seen by a camera turned about the vertical by ``degrees``, 4 m in front of it."""
    return Rotation.from_euler("y", degrees, degrees=True).apply(pose) + [0.0, 0.0, 4000.0]


def _store(path, split: str, frames: list[tuple[np.ndarray, int, int]]):
    """A store whose frame i is ``frames[i] = (pose, camera_id, frame_index)``, all of S1 Walking 1."""
    n = len(frames)
    batch = make_tiny_batch(n, (16, 16), np.random.default_rng(0), with_part_labels=False)
    batch.update(
        joints_3d=np.array([pose for pose, _, _ in frames], np.float32),
        subject=np.zeros(n, np.int16),
        action=np.full(n, TINY_ACTIONS.index("Walking"), np.int16),
        subaction=np.ones(n, np.int16),
        camera_id=np.array([camera for _, camera, _ in frames], np.int64),
        frame_index=np.array([index for _, _, index in frames], np.int32),
    )
    header = {"num_frames": n, "frame_size": (16, 16), "has_part_labels": False, "source": "synthetic"}
    with DatasetWriter(path, split=split, subjects=TINY_SUBJECTS, actions=TINY_ACTIONS, **header) as writer:
        writer.write(0, batch)
    return open_dataset(path)


def test_store_rarity_shares_a_pose_among_its_views_and_counts_training_views_once(tmp_path):
    a, b = T_POSE_MM, _moved_wrist(34.0)  # 2 sqrt(17) mm apart
    # training: pose a seen by two cameras, pose b by one; k = 2 must reach b (a's second view is not a pose)
    train = _store(tmp_path / "train.zarr", "train", [(_turned(a, 0), 1, 0), (_turned(a, 40), 2, 0),
                                                      (_turned(b, 0), 1, 64)])  # fmt: skip
    test = _store(tmp_path / "test.zarr", "test", [(_turned(a, -30), 1, 0), (_turned(a, 60), 2, 0),
                                                   (_turned(b, 10), 1, 64)])  # fmt: skip
    rarity = frame_rarity(test, train, k=2)
    np.testing.assert_allclose(rarity, [math.sqrt(17)] * 3, atol=1e-3)  # float32 stores: ~1e-4 mm
    assert rarity[0] == rarity[1]  # one value per pose, shared by its views
    with pytest.raises(ValueError, match="k = 3 nearest training poses asked for, but there are only 2"):
        frame_rarity(test, train, k=3)
    with pytest.raises(ValueError, match="need a test and a train store, got splits train, test"):
        frame_rarity(train, test, k=1)


# --- deciles -------------------------------------------------------------------------------------------


def test_deciles_of_a_hand_built_set():
    # 20 poses, pose p of rarity 20 - p mm (so the rarest comes first), pose 0 seen by 2 cameras. Ranked by
    # rarity, decile d holds the poses of ranks 2d-2 and 2d-1: decile 1 = poses 19, 18 (rarity 1, 2), ...,
    # decile 10 = poses 1, 0 (rarity 19, 20). Initial error of pose p: 10 + p mm; refined: initial - p / 2.
    poses = np.array([0, *range(20)])
    rarity = 20.0 - poses
    initial = 10.0 + poses
    refined = initial - poses / 2
    rows = _rows(rarity, poses, initial, refined)
    assert [tuple(row) for row in rows] == [DECILE_COLUMNS] * 10
    first, last = rows[0], rows[-1]
    assert (first["decile"], first["poses"], first["frames"]) == (1, 2, 2)
    assert (first["rarity_low_mm"], first["rarity_high_mm"]) == (1.0, 2.0)
    assert (first["initial_mm"], first["refined_mm"], first["gain_mm"]) == (28.5, 19.25, 9.25)  # poses 19, 18
    assert first["gain_relative"] == pytest.approx(9.25 / 28.5)
    assert (last["decile"], last["poses"], last["frames"]) == (10, 2, 3)  # pose 0 twice
    assert (last["rarity_low_mm"], last["rarity_high_mm"]) == (19.0, 20.0)
    # frames of pose 1, 0, 0: initial (11 + 10 + 10) / 3, refined (10.5 + 10 + 10) / 3
    assert last["initial_mm"] == pytest.approx(31 / 3) and last["refined_mm"] == pytest.approx(30.5 / 3)
    assert last["gain_mm"] == pytest.approx(0.5 / 3)


def test_deciles_split_ties_by_pose_order_into_equal_counts():
    # 25 poses of equal rarity: ranks by pose order, deciles of 2 or 3 poses (floor(10 r / 25)).
    rows = _rows(np.ones(25), np.arange(25), np.ones(25), np.ones(25))
    assert [row["poses"] for row in rows] == [3, 2, 3, 2, 3, 2, 3, 2, 3, 2]
    assert all(row["gain_mm"] == 0.0 and row["gain_relative"] == 0.0 for row in rows)


@pytest.mark.parametrize(
    ("rarity", "poses", "message"),
    [
        (np.arange(9.0), np.arange(9), "deciles need at least 10 poses, got 9"),
        (np.arange(11.0), np.array([0, 0, *range(1, 10)]), "the views of one pose must share its rarity"),
        (np.arange(10.0), np.arange(10.0), "integer ids"),
    ],
)
def test_bad_decile_inputs_are_refused(rarity, poses, message):
    with pytest.raises(ValueError, match=message):
        decile_rows(rarity, poses, np.ones(len(rarity)), np.ones(len(rarity)), clusters=np.zeros(len(rarity), int),
                    **BOOTSTRAP)  # fmt: skip


@pytest.mark.parametrize(
    ("bootstrap", "message"),
    [({"resamples": 0}, "resamples must be an integer >= 1"), ({"confidence": 1.0}, "confidence must lie in")],
)
def test_bad_decile_bootstrap_settings_are_refused(bootstrap, message):
    with pytest.raises(ValueError, match=message):
        _rows(np.arange(10.0), np.arange(10), np.ones(10), np.ones(10), **bootstrap)


def test_decile_intervals_by_hand():
    # 20 poses, one view each, pose p of rarity p: decile d holds poses 2d-2 and 2d-1. The commonest decile's
    # two poses both gain 20% (every replicate: 0.2); the rarest's gain 0% and 100% of 10 mm, so a replicate
    # draws both of the first (gain 0, probability 1/4), both of the second (1, 1/4) or one of each (0.5, 1/2):
    # its 95% interval is [0, 1], and the difference from the commonest's [-0.2, 0.8].
    poses = np.arange(20)
    initial = np.full(20, 10.0)
    refined = np.full(20, 8.0)
    refined[18:] = (10.0, 0.0)
    rows = _rows(poses.astype(float), poses, initial, refined, resamples=4000)
    commonest, rarest = rows[0], rows[-1]
    assert (commonest["gain_relative"], commonest["gain_relative_ci_low"], commonest["gain_relative_ci_high"]) == (
        pytest.approx(0.2), pytest.approx(0.2), pytest.approx(0.2))  # fmt: skip
    assert (commonest["vs_commonest"], commonest["vs_commonest_ci_low"], commonest["vs_commonest_ci_high"]) == (
        0.0, 0.0, 0.0)  # fmt: skip
    assert rarest["gain_relative"] == pytest.approx(0.5)
    assert (rarest["gain_relative_ci_low"], rarest["gain_relative_ci_high"]) == (0.0, 1.0)
    assert rarest["vs_commonest"] == pytest.approx(0.3)
    assert (rarest["vs_commonest_ci_low"], rarest["vs_commonest_ci_high"]) == (pytest.approx(-0.2), pytest.approx(0.8))


def test_decile_intervals_draw_whole_clusters_and_are_seeded():
    # 10 poses of two views each: one view gains everything, the other nothing, so every pose gains 50%. Drawn by
    # pose (the cluster) every replicate gains 50%; drawn by view the interval would span [0, 1].
    poses = np.repeat(np.arange(10), 2)
    initial = np.full(20, 10.0)
    refined = np.tile([0.0, 10.0], 10)
    rows = _rows(poses.astype(float), poses, initial, refined)
    assert all(
        row["gain_relative"] == row["gain_relative_ci_low"] == row["gain_relative_ci_high"] == 0.5 for row in rows
    )
    views = decile_rows(poses.astype(float), poses, initial, refined, clusters=np.arange(20), **BOOTSTRAP)
    assert (views[0]["gain_relative_ci_low"], views[0]["gain_relative_ci_high"]) == (0.0, 1.0)
    # the same seed and streams give the same rows; another stream name other draws
    spread = np.random.default_rng(1).uniform(0, 10, 200)  # 10 poses a decile: the interval's ends vary
    arguments = (np.repeat(np.arange(100.0), 2), np.repeat(np.arange(100), 2), np.full(200, 10.0), spread)
    assert _rows(*arguments) == _rows(*arguments)
    assert _rows(*arguments) != _rows(*arguments, stream_names=("refined", "lifting", "rgb_seg"))


def test_decile_tables_are_read_back_or_refused_naming_the_file(tmp_path):
    from patchpose.evaluation.refinement import _csv

    rows = _rows(np.arange(20.0), np.arange(20), np.full(20, 10.0), np.full(20, 8.0))
    path = tmp_path / "rarity_deciles.csv"
    path.write_text(_csv(rows, DECILE_COLUMNS), encoding="utf-8")
    assert read_deciles(path) == [pytest.approx(row) for row in rows]
    lines = path.read_text(encoding="utf-8").splitlines()
    for bad, message in (
        (lines[:-1], "9 rows, expected 10"),
        ([lines[0].replace(",vs_commonest_ci_high", ""), *lines[1:]], "columns decile, .*expected"),
        ([lines[0], lines[1].replace("1,2,", "one,2,", 1), *lines[2:]], "could not convert"),
    ):
        path.write_text("\n".join(bad) + "\n", encoding="utf-8")
        with pytest.raises(ValueError, match=f"rarity_deciles.csv: not a rarity decile table: {message}"):
            read_deciles(path)


def test_rarity_deciles_of_two_tables_need_one_value_per_row(tmp_path):
    n = 10
    index = np.arange(n) * 64
    ids = [f"S9/Walking/1/54138969/{i:06d}" for i in index]
    for name, error in (("initial.npz", 20.0), ("refined.npz", 15.0)):
        np.savez(
            tmp_path / name, format_version=np.array(1), source=np.array("synthetic"), split=np.array("test"),
            joint_names=np.array(H36M.joint_names), frame_id=np.array(ids), subject=np.array(["S9"] * n),
            action=np.array(["Walking"] * n), subaction=np.ones(n, np.int64), camera_id=np.full(n, 54138969),
            frame_index=index, mpjpe_mm=np.full(n, error), pa_mpjpe_mm=np.zeros(n),
            joint_errors_mm=np.full((n, 17), error),
        )  # fmt: skip
    initial, refined = read_frame_errors(tmp_path / "initial.npz"), read_frame_errors(tmp_path / "refined.npz")
    rows = rarity_deciles(np.arange(n, dtype=float), initial, refined, **BOOTSTRAP)
    assert [(row["poses"], row["gain_mm"], row["gain_relative"]) for row in rows] == [(1, 5.0, 0.25)] * 10
    assert all((row["gain_relative_ci_low"], row["gain_relative_ci_high"]) == (0.25, 0.25) for row in rows)
    with pytest.raises(ValueError, match="initial.npz: rarity must be one value per row .10."):
        rarity_deciles(np.arange(9.0), initial, refined, **BOOTSTRAP)
    other_split = FrameErrors(**{**refined.__dict__, "split": "train"})
    with pytest.raises(FrameErrorsFileError, match="source/split synthetic/train differ from synthetic/test"):
        rarity_deciles(np.arange(10.0), initial, other_split, **BOOTSTRAP)
