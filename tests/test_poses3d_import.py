"""External 3D prediction files against a dataset: the import into canonical form, every refusal, evaluation."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from patchpose.dataset_format import DatasetWriter, open_dataset
from patchpose.evaluation.tables import evaluate_prediction_file
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL, MEAN_OVER_FRAMES_LABEL, TABLE_COLUMNS, per_frame_mpjpe
from patchpose.poses3d import (
    VIDEOPOSE3D_JOINT_NAMES,
    PredictionFileError,
    import_external_split,
    read_baseline_info,
    read_predictions,
    write_baseline_info,
    write_predictions,
)
from patchpose.skeleton import H36M
from tests.dataset_factory import TINY_ACTIONS, TINY_SUBJECTS, make_tiny_batch

SIZES = {"train": 12, "test": 9}


def _write_store(path, split: str, num_frames: int, seed: int, frame_offset: int):
    batch = make_tiny_batch(num_frames, (16, 16), np.random.default_rng(seed), with_part_labels=False)
    batch["frame_index"] = batch["frame_index"] + frame_offset  # train and test ids never collide
    with DatasetWriter(
        path,
        num_frames=num_frames,
        frame_size=(16, 16),
        has_part_labels=False,
        source="synthetic",
        split=split,
        subjects=TINY_SUBJECTS,
        actions=TINY_ACTIONS,
    ) as writer:
        writer.write(0, batch)
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    directory = tmp_path_factory.mktemp("stores")
    return {
        split: _write_store(directory / f"{split}.zarr", split, SIZES[split], seed, 1000 * index)
        for index, (split, seed) in enumerate((("train", 1), ("test", 2)))
    }


def _truth(stores, split: str) -> tuple[np.ndarray, list[str]]:
    """(N, 17, 3) mm root-relative ground truth and the frame ids of a split."""
    store = open_dataset(stores[split])
    return store.joints_3d - store.joints_3d[:, :1], store.frame_ids()


def _noisy(stores, split: str, sigma: float = 15.0, seed: int = 5) -> tuple[np.ndarray, list[str]]:
    """Root-relative ground truth plus Gaussian noise (mm) on every joint, re-rooted."""
    truth, ids = _truth(stores, split)
    noisy = truth + np.random.default_rng(seed).normal(0, sigma, truth.shape)
    return noisy - noisy[:, :1], ids


def _import(stores, tmp_path, source, split: str = "test", **settings) -> dict:
    return import_external_split(
        name="mine",
        split=split,
        source=source,
        stores=stores,
        output=tmp_path / f"{split}_poses_3d.npz",
        report=tmp_path / f"{split}_import.json",
        **settings,
    )


def _refused(stores, tmp_path, source, *fragments: str, split: str = "test", **settings) -> str:
    with pytest.raises(PredictionFileError) as caught:
        _import(stores, tmp_path, source, split, **settings)
    message = str(caught.value)
    assert str(source) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert not (tmp_path / f"{split}_poses_3d.npz").exists()
    return message


def _test_file(stores, tmp_path, transform=None, unit: str | None = None, name: str = "external.npz"):
    """An npz of test-split ground truth plus noise, ``transform(poses, ids)`` applied first, written as is."""
    poses, ids = _noisy(stores, "test")
    if transform is not None:
        poses, ids = transform(poses, ids)
    fields = {
        "poses_3d": poses,
        "frame_ids": np.array(ids),
        "joint_names": np.array(H36M.joint_names[: poses.shape[1]]),
    }
    if unit is not None:
        fields["unit"] = np.array(unit)
    path = tmp_path / name
    np.savez(path, **fields)
    return path


def _shuffle(poses, ids):
    return poses[:, np.random.default_rng(0).permutation(17)], ids


def _nan(poses, ids):
    poses = poses.copy()
    poses[3, 7, 2] = np.nan
    return poses, ids


@pytest.mark.parametrize(
    ("transform", "options", "fragments"),
    [
        (lambda p, i: (p / 1000, i), {}, ["looks like 'm'", "declare unit: m"]),
        (lambda p, i: (p / 1000, i), {"unit": "mm"}, ["declared 'mm'", "looks like 'm'"]),
        (_nan, {}, ["NaN or inf"]),
        (lambda p, i: (p[:, :16], i), {}, ["holds 16 joints per frame, expected the 17"]),
        (_shuffle, {}, ["do not seem to be in the declared order", "check the file's joint_names"]),
        (lambda p, i: (p[:, H36M.flip_permutation], i), {}, ["12 joints seem misplaced (right_hip, right_knee"]),
        (lambda p, i: (p[1:], i[1:]), {}, ["is missing 1 of 9 test-split frames", "every test frame"]),
        (lambda p, i: (p[[*range(9), 0]], [*i, i[0]]), {}, ["1 frame ids occur more than once"]),
        (lambda p, i: (p, [*i[:-1], "S9/Walking/1/54138969/999999"]), {}, ["1 frame ids are not in the dataset"]),
        (lambda p, i: (p, [*i[:-1], "S9-Walking-000001"]), {}, ["not canonical"]),
    ],
    ids=["metres", "metres-as-mm", "nan", "16-joints", "shuffled", "left-right-swapped", "missing-frame",
         "duplicate", "id-not-in-dataset", "malformed-id"],
)  # fmt: skip
def test_bad_test_file_is_refused_naming_the_file(stores, tmp_path, transform, options, fragments):
    source = _test_file(stores, tmp_path, transform, **options)
    _refused(stores, tmp_path, source, *fragments)


@pytest.mark.parametrize("declared_in", ["config", "file"])
def test_videopose3d_names_in_metres_with_declared_unit_are_converted(stores, tmp_path, declared_in):
    truth, ids = _truth(stores, "test")
    absolute_metres = (truth + np.array([100.0, -200.0, 5000.0])) / 1000  # not root-relative either
    fields = {
        "poses_3d": absolute_metres[::-1],  # rows in another order than the store's
        "frame_ids": np.array(ids[::-1]),
        "joint_names": np.array(VIDEOPOSE3D_JOINT_NAMES),
    }
    if declared_in == "file":
        fields["unit"] = np.array("m")
    source = tmp_path / "vp3d.npz"
    np.savez(source, **fields)
    report = _import(stores, tmp_path, source, unit="m" if declared_in == "config" else "auto")
    out = read_predictions(tmp_path / "test_poses_3d.npz")
    assert out.frame_ids == tuple(ids)  # the store's row order
    assert (out.unit, out.split, out.method, out.joint_names) == ("mm", "test", "mine", H36M.joint_names)
    np.testing.assert_allclose(out.poses_3d, truth, atol=1e-3)
    assert report["unit"] == "m" and report["scale_to_mm"] == 1000
    assert report["root_offset_max_mm"] > 4000
    assert report["file_joint_names"] == list(VIDEOPOSE3D_JOINT_NAMES)
    assert json.loads((tmp_path / "test_import.json").read_text())["frames"] == SIZES["test"]


def test_declared_shuffled_order_is_mapped(stores, tmp_path):
    truth, ids = _truth(stores, "test")
    order = np.random.default_rng(4).permutation(17)
    source = tmp_path / "shuffled.csv"
    write_predictions(
        source, truth[:, order], ids, split="test", method="x", joint_names=[H36M.joint_names[j] for j in order]
    )
    _import(stores, tmp_path, source)
    np.testing.assert_allclose(read_predictions(tmp_path / "test_poses_3d.npz").poses_3d, truth, atol=1e-3)


@pytest.mark.parametrize("sigma", [40.0, 120.0])
def test_inaccurate_but_ordered_predictions_pass_the_order_check(stores, tmp_path, sigma):
    poses, ids = _noisy(stores, "test", sigma=sigma)
    source = tmp_path / "noisy.h5"
    write_predictions(source, poses, ids, split="test", method="x")
    report = _import(stores, tmp_path, source)
    assert report["declared_order_error_mm"] == pytest.approx(report["best_order_error_mm"])


def test_test_file_with_training_frames_needs_train_file(stores, tmp_path):
    test_poses, test_ids = _noisy(stores, "test")
    train_poses, train_ids = _noisy(stores, "train")
    source = tmp_path / "both.npz"
    write_predictions(
        source, np.concatenate([train_poses, test_poses]), train_ids + test_ids, split="train+test", method="x"
    )
    _refused(stores, tmp_path, source, "holds 12 frames of the train split", "set its train_file to this same file")
    for split in ("test", "train"):
        _import(stores, tmp_path, source, split, file_holds_both_splits=True)
    for split, poses in (("train", train_poses), ("test", test_poses)):
        np.testing.assert_allclose(read_predictions(tmp_path / f"{split}_poses_3d.npz").poses_3d, poses, atol=1e-3)
    info = write_baseline_info(
        tmp_path / "info.json", name="mine", kind="external",
        split_files={split: tmp_path / f"{split}_poses_3d.npz" for split in ("train", "test")},
    )  # fmt: skip
    assert info == read_baseline_info(tmp_path / "info.json")
    assert info["splits"] == ["train", "test"] and info["has_train_split"] and info["frames"] == SIZES


def test_train_split_is_complete_or_absent(stores, tmp_path):
    poses, ids = _noisy(stores, "train")
    source = tmp_path / "train.csv"
    write_predictions(source, poses[:-2], ids[:-2], split="train", method="x")
    _refused(stores, tmp_path, source, "is missing 2 of 12 train-split frames", "all of them or none", split="train")
    _refused(stores, tmp_path, source, "declares split 'train' but is read for the test split")


def test_declared_split_must_match_the_ids(stores, tmp_path):
    poses, ids = _noisy(stores, "train")
    test_poses, test_ids = _noisy(stores, "test")
    source = tmp_path / "mislabelled.npz"
    write_predictions(source, np.concatenate([poses, test_poses]), ids + test_ids, split="test", method="x")
    _refused(stores, tmp_path, source, "declares split 'test' but holds 12 frames of the train split")


def test_test_only_baseline_info_says_so(stores, tmp_path):
    _import(stores, tmp_path, _test_file(stores, tmp_path))
    info = write_baseline_info(
        tmp_path / "info.json", name="mine", kind="external", split_files={"test": tmp_path / "test_poses_3d.npz"}
    )
    assert info["splits"] == ["test"] and not info["has_train_split"] and info["frames"] == {"test": SIZES["test"]}


def test_per_action_table_matches_a_direct_computation(stores, tmp_path):
    source = tmp_path / "external.npz"
    poses, ids = _noisy(stores, "test", sigma=25.0, seed=9)
    write_predictions(source, poses, ids, split="test", method="x")
    _import(stores, tmp_path, source)
    rows = evaluate_prediction_file(tmp_path / "test_poses_3d.npz", stores["test"], table=tmp_path / "mpjpe.csv")
    store = open_dataset(stores["test"])
    errors = per_frame_mpjpe(poses, store.joints_3d)
    actions = store.action_names()
    expected = {action: errors[actions == action].mean() for action in set(actions)}
    with open(tmp_path / "mpjpe.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == TABLE_COLUMNS
    assert [row["action"] for row in table[:-2]] == [
        a for a in ("Directions", "Walking", "Sitting Down") if a in expected
    ]
    for row in table[:-2]:
        assert float(row["mpjpe_mm"]) == pytest.approx(expected[row["action"]], abs=1e-3)
        assert int(row["frames"]) == int((actions == row["action"]).sum())
    assert [row["action"] for row in table[-2:]] == [MEAN_OF_ACTION_MEANS_LABEL, MEAN_OVER_FRAMES_LABEL]
    assert float(table[-1]["mpjpe_mm"]) == pytest.approx(errors.mean(), abs=1e-3)
    assert float(table[-1]["pa_mpjpe_mm"]) < float(table[-1]["mpjpe_mm"])
    assert rows[-1]["mpjpe_mm"] == pytest.approx(errors.mean(), abs=1e-3)


def test_consumers_evaluate_a_collapsed_baseline_the_import_would_refuse(stores, tmp_path):
    """A badly trained baseline's own file (mm declared, bones ~0) is evaluated, not taken for a unit error."""
    truth, ids = _truth(stores, "test")
    collapsed = tmp_path / "test_poses_3d.npz"
    write_predictions(collapsed, truth * 0.01, ids, split="test", method="lifting")
    rows = evaluate_prediction_file(collapsed, stores["test"])
    expected = per_frame_mpjpe(truth * 0.01, open_dataset(stores["test"]).joints_3d).mean()
    assert rows[-1]["mpjpe_mm"] == pytest.approx(expected, abs=1e-3) and expected > 100
    _refused(stores, tmp_path / "out", collapsed, "implausible bone lengths (declared 'mm')")
