"""End to end on the tiny config: an external baseline with only a test file (here the pipeline's own lifting test
predictions, so the DAG builds them first) is refined by an error_model updater, and one with updater: {from:
lifting} is refined by lifting's updater without a training job of its own."""

from __future__ import annotations

import json

import numpy as np
import pytest

from patchpose.dataset_format import open_dataset
from patchpose.poses3d import read_predictions
from patchpose.training import load_torch
from patchpose.updater.error_model import read_error_model
from tests.conftest import copy_workflow, run_snakemake, write_config
from tests.tiny_pipeline import planned_jobs, tiny_config

pytestmark = pytest.mark.slow

LIFTING_TEST = "results/synthetic/baselines/lifting/test_poses_3d.npz"
CLAIMS = "results/synthetic/claims.json"  # the target: every planned pair refined and evaluated (not the tables)


def _config(mine_from: str = "lifting") -> dict:
    config = tiny_config()
    config["baselines"] = {
        "lifting": config["baselines"]["lifting"],
        "mine": {"kind": "external", "file": LIFTING_TEST, "updater": "error_model"},
        "mine_from": {"kind": "external", "file": LIFTING_TEST, "updater": {"from": mine_from}},
    }
    config["updater"]["ablation_baseline"] = None
    return config


@pytest.fixture(scope="module")
def sourced_workflow(tmp_path_factory):
    directory = copy_workflow(tmp_path_factory.mktemp("error_model"))
    write_config(directory, _config())
    planned = run_snakemake(directory, "-n", CLAIMS)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    result = run_snakemake(directory, CLAIMS)
    assert result.returncode == 0, result.stdout + result.stderr
    return directory, planned


def test_from_plans_no_training_job_for_the_baseline(sourced_workflow):
    directory, planned = sourced_workflow
    jobs = planned_jobs(planned)
    assert jobs["train_updater"] == 2 and jobs["refine_with_updater"] == 3  # lifting, mine; + mine_from
    assert jobs["fit_error_model"] == 1 and jobs["sample_error_model_poses"] == 1
    assert "updater/mine_from/" not in planned.stdout
    assert not (directory / "results/synthetic/updater/mine_from").exists()


def test_a_test_only_baseline_is_refined_by_an_error_model_updater(sourced_workflow):
    directory, _ = sourced_workflow
    results = directory / "results/synthetic"
    fitted = json.loads((results / "error_model/mine/params.json").read_text())
    assert fitted["fitted_on"]["source"] == "baselines"
    assert fitted["fitted_on"]["baselines"] == {"lifting": "results/synthetic/baselines/lifting/train_poses_3d.npz"}
    read_error_model(results / "error_model/mine/params.json")
    assert (results / "error_model/mine/params.png").read_bytes()[:4] == b"\x89PNG"
    train = open_dataset(results / "dataset/train.zarr")
    sampled = read_predictions(results / "error_model/mine/train_poses_3d.npz")
    assert sampled.frame_ids == tuple(train.frame_ids()) and sampled.split == "train"
    truth = train.joints_3d - train.joints_3d[:, :1]
    assert np.linalg.norm(sampled.poses_3d - truth, axis=-1).mean() > 1  # perturbed ground truth
    assert not (results / "baselines/mine/train_poses_3d.npz").exists()  # the baseline has no training split
    log = (results / "logs/updater/train_mine_rgb_seg.log").read_text()
    assert load_torch(results / "updater/mine/rgb_seg/model.pt")["baseline"] == "mine", log
    test = open_dataset(results / "dataset/test.zarr")
    refined = read_predictions(results / "refined/mine/rgb_seg/test_poses_3d.npz")
    assert refined.frame_ids == tuple(test.frame_ids()) and np.isfinite(refined.poses_3d).all()
    claims = json.loads((results / "claims.json").read_text())
    assert {"T1 lifting/rgb_seg", "T1 mine/rgb_seg", "T1 mine_from/rgb_seg"} <= set(claims)
    for name in ("mine", "mine_from"):
        assert (results / "refined" / name / "rgb_seg/improvement.csv").exists()


def test_from_refines_with_the_other_baselines_updater(sourced_workflow):
    directory, _ = sourced_workflow
    refined = directory / "results/synthetic/refined"
    borrowed = read_predictions(refined / "mine_from/rgb_seg/test_poses_3d.npz").poses_3d
    # the same initial poses (lifting's test file) through the same updater (lifting's)
    assert np.array_equal(borrowed, read_predictions(refined / "lifting/rgb_seg/test_poses_3d.npz").poses_3d)
    assert not np.array_equal(borrowed, read_predictions(refined / "mine/rgb_seg/test_poses_3d.npz").poses_3d)


def test_changing_the_updater_source_reruns_only_that_baseline_s_refinement(sourced_workflow):
    directory, _ = sourced_workflow
    write_config(directory, _config(mine_from="mine"), name="changed.yaml")
    result = run_snakemake(directory, "-n", CLAIMS, "--configfile", "changed.yaml")
    assert result.returncode == 0, result.stderr
    assert planned_jobs(result) == {"refine_with_updater": 1, "evaluate_refined": 1, "write_claims": 1}
    assert "updater/mine/rgb_seg/model.pt" in result.stdout
