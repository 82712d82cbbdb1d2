"""End-to-end: the tiny config runs to the mean_pose baseline's table, whose numbers are the fold means
computed here directly from the dataset stores; changing the baseline's frame reruns only its own jobs."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from patchpose.baselines.geometry import ray_rotations
from patchpose.dataset_format import open_dataset
from patchpose.metrics import per_frame_mpjpe, per_frame_pa_mpjpe
from patchpose.poses3d import read_baseline_info, read_predictions
from tests.conftest import copy_workflow, run_snakemake, write_config
from tests.tiny_pipeline import planned_jobs, tiny_config

pytestmark = pytest.mark.slow

BASELINE = "results/synthetic/baselines/mean_pose"
TARGETS = (f"{BASELINE}/info.json", f"{BASELINE}/mpjpe_per_action.csv")


@pytest.fixture(scope="module")
def mean_pose_run(tmp_path_factory):
    """The tiny config run to the mean_pose outputs only (the dataset stores and the mean_pose jobs)."""
    directory = copy_workflow(tmp_path_factory.mktemp("mean_pose_e2e"))
    config = tiny_config()
    assert config["baselines"]["mean_pose"] == {"kind": "mean_pose", "frame": "ray"}  # from the default config
    write_config(directory, config)
    result = run_snakemake(directory, *TARGETS)
    assert result.returncode == 0, result.stdout + result.stderr
    return directory


def _expected_poses(directory, split: str, frame: str) -> np.ndarray:
    """(N, 17, 3) mm: the mean-pose predictions of ``split``, from the stores alone. Tiny config: training
    subjects S1, S5 and folds.k = 2, so fold 0 is S1 and fold 1 is S5; fold f's mean is over the other
    fold's frames; a training frame takes its own subject's fold, test frame i fold i mod 2."""
    train = open_dataset(directory / "results/synthetic/dataset/train.zarr")
    store = open_dataset(directory / f"results/synthetic/dataset/{split}.zarr")
    assert list(train.subjects) == ["S1", "S5"]
    poses = train.joints_3d.astype(np.float64) - train.joints_3d[:, :1]
    if frame == "ray":  # p_ray = R p_cam, frame by frame
        rotations = ray_rotations(train)
        poses = np.stack([pose @ rotation.T for pose, rotation in zip(poses, rotations, strict=True)])
    means = [poses[train.subject_names() != subject].mean(axis=0) for subject in ("S1", "S5")]
    if split == "train":
        which = [("S1", "S5").index(subject) for subject in store.subject_names()]
    else:
        which = [i % 2 for i in range(store.num_frames)]
    expected = np.stack([means[fold] for fold in which])
    if frame == "ray":  # back with R^T
        expected = np.stack([pose @ rotation for pose, rotation in zip(expected, ray_rotations(store), strict=True)])
    return expected


def _table(path) -> dict[str, dict]:
    with open(path, newline="") as handle:
        return {row["action"]: row for row in csv.DictReader(handle)}


def _check_outputs(directory, frame: str) -> None:
    baseline = directory / BASELINE
    info = read_baseline_info(baseline / "info.json")
    assert info["kind"] == "mean_pose" and info["splits"] == ["train", "test"]
    assert info["frames"] == {"train": 30, "test": 30}
    for split in ("train", "test"):
        written = read_predictions(baseline / f"{split}_poses_3d.npz")
        assert written.method == "mean_pose" and written.split == split
        assert np.allclose(written.poses_3d, _expected_poses(directory, split, frame), atol=1e-2)
    test = open_dataset(directory / "results/synthetic/dataset/test.zarr")
    expected = _expected_poses(directory, "test", frame)
    p1, p2 = per_frame_mpjpe(expected, test.joints_3d), per_frame_pa_mpjpe(expected, test.joints_3d)
    actions = test.action_names()
    table = _table(baseline / "mpjpe_per_action.csv")
    assert set(table) == set(actions) | {"average (mean of action means)", "average (mean over frames)"}
    for action in set(actions):
        assert float(table[action]["mpjpe_mm"]) == pytest.approx(p1[actions == action].mean(), abs=0.01)
        assert float(table[action]["pa_mpjpe_mm"]) == pytest.approx(p2[actions == action].mean(), abs=0.01)
    action_means = [p1[actions == action].mean() for action in set(actions)]
    assert float(table["average (mean of action means)"]["mpjpe_mm"]) == pytest.approx(np.mean(action_means), abs=0.01)
    assert float(table["average (mean over frames)"]["mpjpe_mm"]) == pytest.approx(p1.mean(), abs=0.01)
    log = (directory / "results/synthetic/logs/baselines/evaluate_mean_pose.log").read_text()
    logged = re.findall(r"mean_pose: MPJPE ([\d.]+) mm", log)
    assert len(logged) == 1 and float(logged[0]) == pytest.approx(p1.mean(), abs=0.01)


def test_tiny_pipeline_writes_the_mean_pose_table(mean_pose_run):
    _check_outputs(mean_pose_run, "ray")
    for split in ("train", "test"):
        log = (mean_pose_run / f"results/synthetic/logs/baselines/predict_mean_pose_{split}.log").read_text()
        assert "mean pose of fold 0/2 (ray frame): 15 frames of S5" in log
        assert "mean pose of fold 1/2 (ray frame): 15 frames of S1" in log
        assert (mean_pose_run / f"results/synthetic/benchmarks/baselines/predict_mean_pose_{split}.tsv").exists()
    # no training job and no 2D stage: the mean pose needs the dataset stores only
    results = mean_pose_run / "results/synthetic"
    assert not (results / "keypoints2d").exists() and not (mean_pose_run / BASELINE / "models").exists()


def test_changed_frame_reruns_only_the_mean_pose_jobs(mean_pose_run):
    config = tiny_config()
    config["baselines"]["mean_pose"]["frame"] = "camera"
    write_config(mean_pose_run, config, name="camera.yaml")
    # the targets go first: --configfile takes every argument after it
    planned = run_snakemake(mean_pose_run, *TARGETS, "-n", "--configfile", "camera.yaml")
    assert planned.returncode == 0, planned.stderr
    assert planned_jobs(planned) == {"predict_mean_pose_baseline": 2, "baseline_info": 1, "evaluate_baseline": 1}
    result = run_snakemake(mean_pose_run, *TARGETS, "--configfile", "camera.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    _check_outputs(mean_pose_run, "camera")
