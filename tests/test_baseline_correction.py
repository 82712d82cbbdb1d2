"""A trained baseline's linear correction (patchpose/baselines/correction.py): the map recovers a known linear
distortion, cross-fitting keeps each fold's own truth out of its correction, the test split's ground truth is never
read, auto leaves a baseline alone where the correction does not help, and the rule sits between the fold models'
poses and the baseline's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from patchpose.baselines.correction import (
    choose_correction,
    correct_baseline,
    cross_fitted,
    fit_linear_map,
)
from patchpose.baselines.geometry import from_ray_frame, ray_rotations, root_relative, to_ray_frame
from patchpose.config import ConfigError, validate_config
from patchpose.dataset_format import DatasetWriter, open_dataset
from patchpose.poses3d import read_predictions
from patchpose.poses3d.files import write_predictions
from tests.conftest import default_config
from tests.dataset_factory import TINY_ACTIONS, make_tiny_batch

TRAIN_SUBJECTS = ("S1", "S5", "S6")
K = 3  # one subject per fold
SQUASH = np.array([1.0, 1.0, 0.5])  # the "network" halves every depth ...
SHIFT = np.array([0.0, 20.0, 30.0])  # ... and moves every non-root joint 20 mm down, 30 mm away, in the ray frame


def _random_poses(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    poses = rng.normal(0.0, 200.0, size=(count, 17, 3))
    poses[:, 0] = 0.0
    return poses


def _distort(poses_ray: np.ndarray) -> np.ndarray:
    distorted = poses_ray * SQUASH + SHIFT
    distorted[:, 0] = 0.0
    return distorted


def test_the_map_recovers_an_exact_linear_distortion_and_refuses_bad_shapes():
    truth = _random_poses(200, 0)
    predicted = 2.0 * truth + 5.0  # truth = (predicted - 5) / 2 on the non-root joints
    predicted[:, 0] = 0.0
    mapped = fit_linear_map(predicted, truth, ridge=0.0)
    np.testing.assert_allclose(mapped.weights, 0.5 * np.eye(48), atol=1e-9)
    np.testing.assert_allclose(mapped(predicted), truth, atol=1e-9)
    np.testing.assert_allclose(mapped(predicted)[:, 0], 0.0)  # the root stays at the origin
    shrunk = fit_linear_map(predicted, truth, ridge=1e12)  # a huge ridge: every pose mapped to the mean
    np.testing.assert_allclose(shrunk(predicted)[:, 1:], np.broadcast_to(truth[:, 1:].mean(0), (200, 16, 3)), atol=1.0)
    with pytest.raises(ValueError, match="same"):
        fit_linear_map(predicted, truth[:-1], ridge=0.0)
    with pytest.raises(ValueError, match="ridge"):
        fit_linear_map(predicted, truth, ridge=-1.0)


def test_cross_fitting_keeps_a_folds_own_truth_out_of_its_correction():
    truth = _random_poses(300, 1)
    predicted = _distort(truth) + np.random.default_rng(2).normal(0, 5, size=truth.shape)
    predicted[:, 0] = 0.0
    folds = np.arange(300) % 3
    corrected = cross_fitted(predicted, truth, folds, 3, ridge=10.0)
    assert np.linalg.norm(corrected - truth, axis=-1).mean() < 0.5 * np.linalg.norm(predicted - truth, axis=-1).mean()
    changed = truth.copy()
    changed[folds == 0] += 100.0  # fold 0's own truth: its frames' correction does not move
    again = cross_fitted(predicted, changed, folds, 3, ridge=10.0)
    np.testing.assert_array_equal(again[folds == 0], corrected[folds == 0])
    assert not np.allclose(again[folds == 1], corrected[folds == 1])  # fold 1's map is fitted on fold 0's frames


def test_auto_leaves_a_baseline_alone_where_the_correction_does_not_lower_the_out_of_fold_error():
    truth = _random_poses(240, 3)
    folds = np.arange(240) % 3
    maps, report = choose_correction(truth.copy(), truth, folds, 3, "auto", [100.0, 1000.0])
    assert maps is None and report["applied"] is False and report["ridge_mm2"] is None
    assert report["out_of_fold_mpjpe_mm"]["uncorrected"] == 0.0
    assert report["out_of_fold_mpjpe_mm"]["ridge 100"] > 0.0  # the ridge shrinks exact poses toward the mean
    biased = _distort(truth)
    maps, report = choose_correction(biased, truth, folds, 3, "auto", [1000.0, 0.0])
    # least squares recovers an exact distortion best
    assert report["ridge_mm2"] == 0.0 and report["applied"] is True and len(maps) == 3
    assert report["out_of_fold_mpjpe_mm"]["ridge 0"] < 1e-6
    maps, report = choose_correction(truth.copy(), truth, folds, 3, "linear", [100.0])
    # linear corrects whatever the validation says
    assert report["ridge_mm2"] == 100.0 and report["applied"] is True and maps is not None
    assert choose_correction(biased, truth, folds, 3, "none", [])[0] is None
    with pytest.raises(ValueError, match="not one of"):
        choose_correction(biased, truth, folds, 3, "quadratic", [1.0])
    with pytest.raises(ValueError, match="fewer than 2 folds"):
        choose_correction(biased, truth, np.zeros(240, dtype=int), 3, "auto", [1.0])


def _write_store(path, split, subjects, count, seed, move_mm=0.0):
    """A store of ``count`` frames of varied poses, subjects in turn; ``move_mm`` moves every non-root joint
    (after the crops are placed: the frames, crops and cameras stay those of ``seed``)."""
    batch = make_tiny_batch(count, (16, 16), np.random.default_rng(seed), with_part_labels=False)
    batch["joints_3d"][:, 1:] += np.random.default_rng(seed + 100).normal(0, 60, size=(count, 16, 3)) + move_mm
    batch["subject"] = (np.arange(count) % len(subjects)).astype(np.int16)
    batch["action"] = (np.arange(count) % len(TINY_ACTIONS)).astype(np.int16)
    with DatasetWriter(path, num_frames=count, frame_size=(16, 16), has_part_labels=False, source="synthetic",
                       split=split, subjects=subjects, actions=TINY_ACTIONS) as writer:  # fmt: skip
        writer.write(0, batch)
    return open_dataset(path)


def _network_file(path, store):
    """The "fold models'" poses: the truth distorted linearly in each crop's ray frame."""
    rotations = ray_rotations(store)
    poses = from_ray_frame(_distort(to_ray_frame(root_relative(store.joints_3d), rotations)), rotations)
    write_predictions(path, poses, store.frame_ids(), split=store.split, method="net")
    return path


@pytest.fixture()
def run(tmp_path):
    train = _write_store(tmp_path / "train.zarr", "train", TRAIN_SUBJECTS, 240, 0)
    test = _write_store(tmp_path / "test.zarr", "test", ("S9",), 60, 1)
    network = {s.split: _network_file(tmp_path / f"net_{s.split}.npz", s) for s in (train, test)}

    def correct(kind, ridges, test_path=tmp_path / "test.zarr", out="out"):
        (tmp_path / out).mkdir(exist_ok=True)
        outputs = {name: tmp_path / out / f"{name}.npz" for name in ("train", "test")}
        report = correct_baseline(
            tmp_path / "train.zarr", test_path, network["train"], network["test"], K, kind, ridges,
            outputs["train"], outputs["test"], tmp_path / out / "correction.json", "mybaseline",
        )  # fmt: skip
        poses = {name: read_predictions(path).poses_3d for name, path in outputs.items()}
        return poses, report, json.loads((tmp_path / out / "correction.json").read_text())

    return train, test, network, correct


def test_the_stage_corrects_both_splits_from_the_training_split_alone(run, tmp_path):
    train, test, _, correct = run
    poses, report, written = correct("linear", [0.0])
    assert written == report and report["applied"] is True and report["ridge_mm2"] == 0.0
    assert report["out_of_fold_mpjpe_mm"]["uncorrected"] > 30.0
    assert report["out_of_fold_mpjpe_mm"]["ridge 0"] < 1e-3  # float32 files
    assert set(report["out_of_fold_mpjpe_mm_by_fold"]["ridge 0"]) == {"0", "1", "2"}
    # The distortion is linear in each crop's ray frame, so both splits come back to the truth.
    np.testing.assert_allclose(poses["train"], root_relative(train.joints_3d), atol=1e-3)
    np.testing.assert_allclose(poses["test"], root_relative(test.joints_3d), atol=1e-3)
    # The test split's ground truth is never read: the same frames, crops and cameras with other 3D joints give
    # the same corrected test poses.
    _write_store(tmp_path / "test_moved.zarr", "test", ("S9",), 60, 1, move_mm=150.0)
    moved, _, _ = correct("linear", [0.0], test_path=tmp_path / "test_moved.zarr", out="moved")
    np.testing.assert_array_equal(moved["test"], poses["test"])
    np.testing.assert_array_equal(moved["train"], poses["train"])


def test_kind_none_passes_the_fold_models_poses_through(run):
    _, _, network, correct = run
    poses, report, _ = correct("none", [10.0])
    assert report["applied"] is False and report["ridge_mm2"] is None
    np.testing.assert_allclose(poses["train"], read_predictions(network["train"]).poses_3d, atol=1e-9)
    np.testing.assert_allclose(poses["test"], read_predictions(network["test"]).poses_3d, atol=1e-9)


def test_the_config_defaults_to_auto_and_refuses_a_wrong_correction_by_name():
    config = default_config()
    del config["baselines"]["lifting"]["correction"]  # absent: the schema's default
    block = validate_config(config)["baselines"]["lifting"]["correction"]
    assert block == {"kind": "auto", "ridges": [10, 100, 1000, 10000]}
    config["baselines"]["lifting"]["correction"] = {"kind": "quadratic"}
    with pytest.raises(ConfigError, match=r"baselines\.lifting\.correction\.kind = 'quadratic' is not allowed"):
        validate_config(config)
    config["baselines"]["lifting"]["correction"] = {"kind": "auto", "ridges": [-1]}
    with pytest.raises(ConfigError, match=r"baselines\.lifting\.correction\.ridges"):
        validate_config(config)
