"""End to end, real Snakemake: a jittered test-split person box (dataset.person_box) runs through every stage
on the tiny config, and through the Human3.6M extraction on the fake release; one split's box reruns that
split only."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from patchpose.camera import project
from patchpose.crop_geometry import apply_affine, invert_affine, person_crop_affine
from patchpose.dataset_format import open_dataset
from patchpose.poses3d import read_baseline_info
from tests.conftest import copy_workflow, default_config, run_snakemake, write_config
from tests.h36m_fixture import build_release
from tests.tiny_pipeline import planned_jobs, planned_outputs, tiny_config

pytestmark = pytest.mark.slow

JITTERED = {"kind": "jittered", "centre_sigma": 0.1, "scale_sigma": 0.1}
GROUND_TRUTH = {"kind": "groundtruth", "centre_sigma": 0.1, "scale_sigma": 0.1}
# What the jittered run's checks read: the stages up to the baselines (the later ones read no box of their own).
THROUGH_THE_BASELINES = [
    "results/synthetic/keypoints2d/metrics.csv",
    "results/synthetic/patches/predicted/test.zarr",
    *(
        f"results/synthetic/baselines/{name}/{file}"
        for name in ("lifting", "integral3d")
        for file in ("info.json", "mpjpe_per_action.csv")
    ),  # fmt: skip
]


def _with_boxes(config: dict, train: dict, test: dict) -> dict:
    config["dataset"]["person_box"] = {"train": dict(train), "test": dict(test)}
    return config


def _projected(store) -> np.ndarray:
    """(N, 17, 2) the stored 3D joints projected to original image px."""
    return project(store.joints_3d.astype(np.float64), store.camera_intrinsics, store.camera_distortion)


def _crop_px(store) -> np.ndarray:
    return apply_affine(invert_affine(store.crop_affine), _projected(store))


def _ground_truth_crops(store, margin: float) -> np.ndarray:
    return person_crop_affine(_projected(store), margin, store.frame_size[0])


@pytest.fixture(scope="module")
def jittered_workflow(tmp_path_factory) -> Path:
    directory = copy_workflow(tmp_path_factory.mktemp("person_box_e2e"))
    write_config(directory, _with_boxes(tiny_config(), GROUND_TRUTH, JITTERED))
    result = run_snakemake(directory, *THROUGH_THE_BASELINES)
    assert result.returncode == 0, result.stdout + result.stderr
    return directory


def test_jittered_test_box_runs_through_to_the_baselines(jittered_workflow):
    results = jittered_workflow / "results/synthetic"
    margin = default_config()["dataset"]["synthetic"]["crop_margin"]
    train, test = (open_dataset(results / f"dataset/{split}.zarr") for split in ("train", "test"))
    # train: the ground-truth crops; test: other crops, every joint still inside, the 2D joints consistent
    np.testing.assert_allclose(train.crop_affine, _ground_truth_crops(train, margin), atol=1e-3)
    assert not np.allclose(test.crop_affine, _ground_truth_crops(test, margin), atol=1.0)
    assert test.attrs["world"]["person_box"] == {**JITTERED, "seed": 0}
    assert train.attrs["world"]["person_box"] == {"kind": "groundtruth"}
    crop_px = _crop_px(test)
    assert crop_px.min() >= -0.55 and crop_px.max() <= test.frame_size[0] - 0.45
    assert np.abs(crop_px - test.joints_2d).max() < 0.5
    # every later stage ran on those crops
    assert len((results / "keypoints2d/metrics.csv").read_text().splitlines()) == 1 + 2 * 2
    assert np.load(results / "keypoints2d/test_joints_2d.npz")["joints_2d"].shape == (test.num_frames, 17, 2)
    assert (results / "segmentation/test.zarr").is_dir()
    assert (results / "patches/predicted/test.zarr").is_dir()
    for name in ("lifting", "integral3d"):
        baseline = results / "baselines" / name
        assert read_baseline_info(baseline / "info.json")["frames"] == {"train": 30, "test": 30}
        with open(baseline / "mpjpe_per_action.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 15 + 2 and all(np.isfinite(float(row["mpjpe_mm"])) for row in rows)


@pytest.mark.parametrize(
    ("train", "test", "expected"),
    [
        (JITTERED, JITTERED, {"results/synthetic/dataset/train.zarr"}),
        (GROUND_TRUTH, {**JITTERED, "centre_sigma": 0.2}, {"results/synthetic/dataset/test.zarr"}),
        (GROUND_TRUTH, GROUND_TRUTH, {"results/synthetic/dataset/test.zarr"}),
        ({**GROUND_TRUTH, "scale_sigma": 0.2}, JITTERED, set()),  # sizes of a ground-truth box are unused
    ],
    ids=["train-box", "test-box-size", "test-box-back-to-groundtruth", "unused-size"],
)
def test_changed_box_rerenders_its_split_only(jittered_workflow, train, test, expected):
    write_config(jittered_workflow, _with_boxes(tiny_config(), train, test), name="changed.yaml")
    result = run_snakemake(jittered_workflow, "-n", "--configfile", "changed.yaml")
    assert result.returncode == 0, result.stderr
    assert planned_outputs(result) == expected
    assert planned_jobs(result).get("render_synthetic_split", 0) == len(expected)


# --- Human3.6M: the extraction cuts the split's box; a test box reruns the test sequences only ---

H36M_DATASET = tuple(
    f"results/h36m/dataset/{split}{suffix}" for split in ("train", "test") for suffix in (".zarr", "_manifest.json")
)


def _write_h36m(directory: Path, test_box: dict) -> None:
    config = default_config()
    block = {**config["dataset"]["h36m"], "root": str(directory / "release"), "train_subjects": ["S1"],
             "test_subjects": ["S11"]}  # fmt: skip
    config["dataset"] = {**config["dataset"], "kind": "h36m", "name": "h36m", "h36m": block}
    config["updater"]["training"]["validation_subjects"] = []  # one training subject: held-out poses
    write_config(directory, _with_boxes(config, GROUND_TRUTH, test_box))


def test_h36m_jittered_test_box_reruns_the_test_sequences_only(tmp_path):
    directory = copy_workflow(tmp_path)
    build_release(directory / "release")
    _write_h36m(directory, GROUND_TRUTH)
    first = run_snakemake(directory, *H36M_DATASET)
    assert first.returncode == 0, first.stdout + first.stderr
    dataset = directory / "results/h36m/dataset"
    truth = open_dataset(dataset / "test.zarr")
    truth_affines, train_mtime = truth.crop_affine.copy(), (dataset / "train.zarr/zarr.json").stat().st_mtime_ns

    _write_h36m(directory, JITTERED)
    planned = run_snakemake(directory, *H36M_DATASET, "-n")
    assert planned.returncode == 0, planned.stderr
    test_sequences = len(list((dataset / "h36m_sequences/S11").iterdir()))
    assert planned_jobs(planned) == {"h36m_extract_sequence": test_sequences, "h36m_merge_split": 1}
    second = run_snakemake(directory, *H36M_DATASET)
    assert second.returncode == 0, second.stdout + second.stderr
    jittered = open_dataset(dataset / "test.zarr")
    assert (dataset / "train.zarr/zarr.json").stat().st_mtime_ns == train_mtime
    assert jittered.frame_ids() == truth.frame_ids()
    assert not np.allclose(jittered.crop_affine, truth_affines, atol=1.0)
    crop_px = _crop_px(jittered)
    assert crop_px.min() >= -0.55 and crop_px.max() <= jittered.frame_size[0] - 0.45
    manifest = json.loads((dataset / "test_manifest.json").read_text())
    assert manifest["settings"]["test_person_box"] == {**JITTERED, "seed": 0}
    assert "train_person_box" not in manifest["settings"]
