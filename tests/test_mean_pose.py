"""The mean_pose baseline: golden fold means worked out by hand, no fold leakage, clear errors, and the
workflow plans it (dry runs) as a baseline of the default config."""

from __future__ import annotations

import re

import numpy as np
import pytest

from patchpose.baselines.mean_pose import fold_mean_poses, mean_pose_predictions, predict_split
from patchpose.config import ConfigError, validate_config
from patchpose.dataset_format import DatasetWriter, open_dataset
from patchpose.evaluation.tables import evaluate_prediction_file
from patchpose.folds import FoldError
from patchpose.poses3d import read_predictions
from patchpose.poses3d.baseline_config import baseline_splits
from patchpose.skeleton import H36M
from tests.conftest import default_config, run_snakemake, write_config
from tests.dataset_factory import T_POSE_MM, TINY_ACTIONS, TINY_INTRINSICS, make_tiny_batch

WRIST = H36M.joint_index("right_wrist")
LEFT_WRIST = H36M.joint_index("left_wrist")
NOSE = H36M.joint_index("neck_nose")
HEAD = H36M.joint_index("head")
R2 = np.sqrt(0.5)  # cos 45 deg = sin 45 deg
# Camera <- ray frame of a crop centred on the ray (1, 0, 1)/sqrt(2) (45 deg right of the optical axis): the
# rotation about y taking +z onto that ray, worked out by hand (the ray frame's z is the crop's ray).
RAY_TO_CAMERA_45 = np.array([[R2, 0.0, R2], [0.0, 1.0, 0.0], [-R2, 0.0, R2]])
CROP = 16  # crop side, px


def _pose(wrist_drop_mm: float) -> np.ndarray:
    """(17, 3) root-relative ray-frame pose, mm: the factory's T-pose with the right wrist lowered (+y)."""
    pose = T_POSE_MM.copy()
    pose[WRIST, 1] += wrist_drop_mm
    return pose


def write_store(path, split, subjects, frames):
    """A valid store whose frame ``i`` is ``frames[i] = (subject, wrist_drop_mm, off_axis)``: root-relative pose
    ``_pose(wrist_drop_mm)`` in the crop's ray frame; the crop centre lies on the optical axis, or (off_axis)
    on the ray 45 deg to the right, the pose then turned with it (camera frame = RAY_TO_CAMERA_45 @ ray frame).
    Pinhole camera fx = fy = 1000 px, principal point (500, 500), no distortion."""
    count = len(frames)
    batch = make_tiny_batch(count, (CROP, CROP), np.random.default_rng(0), with_part_labels=False)
    fx, fy, cx, cy = TINY_INTRINSICS
    joints, affine = np.zeros((count, 17, 3)), np.zeros((count, 2, 3))
    for i, (_, drop, off_axis) in enumerate(frames):
        rotation = RAY_TO_CAMERA_45 if off_axis else np.eye(3)
        joints[i] = _pose(drop) @ rotation.T + rotation @ [0.0, 0.0, 4000.0]  # pelvis 4 m along the crop's ray
        centre = (cx + fx, cy) if off_axis else (cx, cy)  # image px the crop centre maps to
        affine[i] = [[10.0, 0.0, centre[0] - 10.0 * (CROP - 1) / 2], [0.0, 10.0, centre[1] - 10.0 * (CROP - 1) / 2]]
    batch.update(
        joints_3d=joints.astype(np.float32),
        crop_affine=affine,
        image_size=np.tile(np.array([2000, 1000], dtype=np.int32), (count, 1)),
        subject=np.array([subjects.index(s) for s, _, _ in frames], dtype=np.int16),
        action=(np.arange(count) % len(TINY_ACTIONS)).astype(np.int16),
        frame_index=np.arange(count, dtype=np.int32),
    )
    with DatasetWriter(path, num_frames=count, frame_size=(CROP, CROP), has_part_labels=False, source="synthetic",
                       split=split, subjects=subjects, actions=TINY_ACTIONS) as writer:  # fmt: skip
        writer.write(0, batch)
    return path


# k = 2: S1 and S6 are fold 0, S5 fold 1 (round-robin in store order).
TRAIN_SUBJECTS = ("S1", "S5", "S6")
TRAIN_FRAMES = [("S1", 10.0, False), ("S1", 20.0, False), ("S5", 60.0, False), ("S6", 90.0, True)]
TEST_FRAMES = [("S9", 0.0, False), ("S9", 0.0, False), ("S9", 0.0, True)]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mean_pose")
    return {
        "train": write_store(directory / "train.zarr", "train", TRAIN_SUBJECTS, TRAIN_FRAMES),
        "test": write_store(directory / "test.zarr", "test", ("S9",), TEST_FRAMES),
    }


# --- golden values ------------------------------------------------------------------------------------


def test_fold_means_in_the_ray_frame_are_the_hand_computed_ones(stores):
    means = fold_mean_poses(open_dataset(stores["train"]), 2, "ray")
    # fold 0 (S1, S6) is predicted by the mean of S5's one frame: wrist drop 60 mm;
    # fold 1 (S5) by the mean of S1's and S6's three frames: (10 + 20 + 90) / 3 = 40 mm (S6's frame is off
    # the axis, but in its ray frame it is the plain pose). Every other joint: the T-pose.
    assert np.allclose(means[0], _pose(60.0), atol=1e-3)
    assert np.allclose(means[1], _pose(40.0), atol=1e-3)


def test_fold_means_in_the_camera_frame_are_the_hand_computed_ones(stores):
    means = fold_mean_poses(open_dataset(stores["train"]), 2, "camera")
    assert np.allclose(means[0], _pose(60.0), atol=1e-3)  # S5's frame is on the axis
    # fold 1: S1's two frames as they are, S6's turned by 45 deg about y; its right wrist (-680, -390, 0) is at
    # (-680 r, -390, 680 r) with r = sqrt(1/2).
    wrist = [(-680 - 680 - 680 * R2) / 3, (-470 - 460 - 390) / 3, 680 * R2 / 3]
    nose = [(0 + 0 - 20 * R2) / 3, -600, (-20 - 20 - 20 * R2) / 3]
    assert np.allclose(means[1, WRIST], wrist, atol=1e-3) and np.allclose(means[1, NOSE], nose, atol=1e-3)
    assert np.allclose(means[1, 0], 0.0)


@pytest.mark.parametrize("split", ["train", "test"])
def test_each_frame_gets_its_folds_mean_turned_into_its_camera_frame(stores, split, tmp_path):
    output = tmp_path / f"{split}_poses_3d.npz"
    poses = predict_split(stores["train"], stores[split], split, 2, "ray", output, method="mean_pose")
    # train: S1 -> fold 0 (60), S1 -> fold 0 (60), S5 -> fold 1 (40), S6 -> fold 0 (60, off the axis);
    # test: frame i -> fold i mod 2: 60, 40, 60 (off the axis).
    drops = {"train": [60.0, 60.0, 40.0, 60.0], "test": [60.0, 40.0, 60.0]}[split]
    expected = np.stack([_pose(drop) for drop in drops])
    expected[-1] = expected[-1] @ RAY_TO_CAMERA_45.T  # the last frame of both splits is off the axis
    assert np.allclose(poses, expected, atol=1e-3)
    # the off-axis frame, joint by joint: x' = r (x + z), z' = r (z - x)
    off = poses[-1]
    assert np.allclose(off[WRIST], [-680 * R2, -420, 680 * R2], atol=1e-3)
    assert np.allclose(off[LEFT_WRIST], [680 * R2, -480, -680 * R2], atol=1e-3)
    assert np.allclose(off[NOSE], [-20 * R2, -600, -20 * R2], atol=1e-3)
    assert np.allclose(off[HEAD], [0, -715, 0], atol=1e-3)
    written = read_predictions(output)
    store = open_dataset(stores[split])
    assert np.array_equal(written.poses_3d, poses.astype(np.float32))  # the format stores float32
    assert list(written.frame_ids) == store.frame_ids()
    assert (written.unit, written.split, written.method, written.joint_names) == ("mm", split, "mean_pose",
                                                                                   H36M.joint_names)  # fmt: skip


def test_camera_frame_puts_one_pose_per_fold_in_every_frame(stores):
    train = open_dataset(stores["train"])
    poses = mean_pose_predictions(train, open_dataset(stores["test"]), "test", 2, "camera")
    means = fold_mean_poses(train, 2, "camera")
    assert np.array_equal(poses, means[[0, 1, 0]])  # no turn for the off-axis frame


def test_the_test_table_is_the_per_action_mpjpe_of_the_golden_poses(stores, tmp_path):
    output = tmp_path / "test_poses_3d.npz"
    predict_split(stores["train"], stores["test"], "test", 2, "ray", output)
    rows = {row["action"]: row for row in evaluate_prediction_file(output, stores["test"])}
    # test poses: wrist drop 0; predictions: 60, 40, 60 mm at the wrist only, so MPJPE = drop / 17 per frame
    actions = [TINY_ACTIONS[i % len(TINY_ACTIONS)] for i in range(3)]
    for action, drop in zip(actions, (60.0, 40.0, 60.0), strict=True):
        assert rows[action]["mpjpe_mm"] == pytest.approx(drop / 17, abs=1e-3)
    assert rows["average (mean over frames)"]["mpjpe_mm"] == pytest.approx(160 / 3 / 17, abs=1e-3)


# --- no fold leakage ------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", ["ray", "camera"])
def test_a_training_frames_prediction_never_uses_its_own_subject(tmp_path, frame):
    subjects = ("S1", "S5", "S6", "S7")
    frames = [(s, 10.0 * i, i % 3 == 0) for i, s in enumerate(subjects * 3)]
    base = predict_split(write_store(tmp_path / "a.zarr", "train", subjects, frames), tmp_path / "a.zarr", "train", 3,
                         frame, tmp_path / "a.npz")  # fmt: skip
    for changed in subjects:  # move one subject's right wrist by 500 mm: only the other subjects' frames move
        moved = [(s, drop + 500.0 * (s == changed), off) for s, drop, off in frames]
        path = write_store(tmp_path / f"{changed}.zarr", "train", subjects, moved)
        poses = predict_split(path, path, "train", 3, frame, tmp_path / f"{changed}.npz")
        own = np.array([s == changed for s, _, _ in frames])
        assert np.allclose(poses[own], base[own], atol=1e-3), f"{changed}'s own frames depend on {changed}"
        assert not np.allclose(poses[~own], base[~own], atol=1.0)  # the change does reach some frames


# --- errors: naming the file, nothing written ----------------------------------------------------------


def test_a_test_store_with_training_subjects_is_refused_naming_it(stores, tmp_path):
    leaky = write_store(tmp_path / "leaky.zarr", "test", ("S5",), [("S5", 0.0, False)])
    output = tmp_path / "out.npz"
    with pytest.raises(FoldError, match=rf"{re.escape(str(leaky))}: test subjects \['S5'\] are training subjects"):
        predict_split(stores["train"], leaky, "test", 2, "ray", output)
    assert not output.exists()


@pytest.mark.parametrize(
    ("train", "split", "k", "frame", "error", "expected"),
    [
        ("train", "train", 2, "ray", ValueError, r"test\.zarr: a 'test'-split store, expected the 'train' split"),
        ("test", "test", 2, "ray", ValueError, r"test\.zarr: a 'test'-split store; the mean pose is taken over"),
        ("train", "test", 4, "ray", FoldError, r"folds.k = 4 needs 2 <= k <= the number of training subjects \(3"),
        ("train", "test", 2, "world", ValueError, r"mean pose frame 'world' is not one of ray, camera"),
    ],
    ids=["split-mismatch", "train-store-of-test-split", "k-too-large", "unknown-frame"],
)
def test_bad_inputs_are_refused_and_nothing_is_written(stores, tmp_path, train, split, k, frame, error, expected):
    output = tmp_path / "out.npz"
    with pytest.raises(error, match=expected):
        predict_split(stores[train], stores["test"], split, k, frame, output)
    assert not output.exists()


def test_a_fold_without_training_frames_is_refused_naming_the_store(tmp_path):
    path = write_store(tmp_path / "train.zarr", "train", ("S1", "S5", "S6"), [("S1", 0.0, False), ("S6", 0.0, False)])
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: fold 0's training subjects \(S5\) have no frames"):
        fold_mean_poses(open_dataset(path), 2)


# --- config and workflow --------------------------------------------------------------------------------


def test_default_config_has_a_mean_pose_baseline_with_both_splits():
    block = validate_config(default_config())["baselines"]["mean_pose"]
    assert block == {"kind": "mean_pose", "frame": "ray"} and baseline_splits(block) == ("train", "test")
    config = default_config()
    config["baselines"] = {"m": {"kind": "mean_pose"}}
    assert validate_config(config)["baselines"]["m"] == {"kind": "mean_pose", "frame": "ray"}


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"kind": "mean_pose", "frame": "world"}, "baselines.m.frame = 'world' is not allowed; allowed values: ray"),
        ({"kind": "mean_pose", "file": "p.npz"}, "unknown config key baselines.m.file"),
    ],
    ids=["frame", "unknown-key"],
)
def test_bad_mean_pose_block_names_the_key(block, expected):
    config = default_config()
    config["baselines"] = {"m": block}
    with pytest.raises(ConfigError, match=re.escape(expected)):
        validate_config(config)


def _jobs(result) -> dict[str, int]:
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)\s*$", result.stdout, flags=re.MULTILINE)}


def test_default_dry_run_plans_the_mean_pose_baseline(workflow_dir):
    config = default_config()
    config["baselines"]["camera_mean"] = {"kind": "mean_pose", "frame": "camera"}
    write_config(workflow_dir, config)
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode == 0, result.stderr
    assert _jobs(result)["predict_mean_pose_baseline"] == 2 * 2  # two baselines, two splits, no training jobs
    for name in ("mean_pose", "camera_mean"):
        for output in ("train_poses_3d.npz", "test_poses_3d.npz", "info.json", "mpjpe_per_action.csv"):
            assert f"results/synthetic/baselines/{name}/{output}" in result.stdout
        assert f"results/synthetic/baselines/{name}/models/" not in result.stdout
        assert f"results/synthetic/baselines/{name}/learning_curves.png" not in result.stdout
    # its inputs are the dataset stores only (the training store's fold means, the split's crops)
    jobs = re.findall(r"rule predict_mean_pose_baseline:\n\s+input: (.*)\n\s+output: (\S+)", result.stdout)
    assert len(jobs) == 4
    for line, output in jobs:
        split = "train" if output.endswith("/train_poses_3d.npz") else "test"
        assert set(line.split(", ")) == {f"results/synthetic/dataset/{s}.zarr" for s in ("train", split)}, line


def test_mean_pose_with_too_many_folds_stops_the_dag_naming_the_key(workflow_dir):
    config = default_config()
    config["folds"]["k"] = 9
    write_config(workflow_dir, config)
    result = run_snakemake(workflow_dir, "-n", "results/synthetic/baselines/mean_pose/mpjpe_per_action.csv")
    assert result.returncode != 0
    expected = "invalid config: folds.k = 9 needs 2 <= k <= the number of training subjects"
    assert expected in result.stdout + result.stderr
