"""End to end on the tiny config: the updaters the tables need are trained, refine their baselines' test splits,
are evaluated against them and feed claims.json; reruns follow the updater's keys only."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from patchpose.dataset_format import open_dataset
from patchpose.evaluation.frame_errors import read_frame_errors
from patchpose.poses3d.files import read_predictions
from patchpose.updater.variants import ABLATION_VARIANTS
from tests.conftest import run_snakemake, write_config
from tests.tiny_pipeline import copy_finished_run, planned_jobs, tiny_config

pytestmark = pytest.mark.slow

PAIRS = [("lifting", "rgb_seg"), ("integral3d", "rgb_seg")] + [("lifting", variant) for variant in ABLATION_VARIANTS]


@pytest.fixture(scope="module")
def refined_workflow(tiny_run, tmp_path_factory):
    return copy_finished_run(tiny_run, tmp_path_factory.mktemp("updater"))


def test_every_pair_the_tables_need_is_refined_and_evaluated(refined_workflow):
    results = refined_workflow / "results/synthetic"
    test = open_dataset(results / "dataset/test.zarr")
    assert sorted(path.parent.name + "/" + path.name for path in (results / "updater").glob("*/*")) == sorted(
        f"{baseline}/{variant}" for baseline, variant in PAIRS
    )
    assert not (results / "updater/mean_pose").exists()  # the reference row is not refined
    for baseline, variant in PAIRS:
        refined = results / "refined" / baseline / variant
        record = read_predictions(refined / "test_poses_3d.npz")
        assert record.frame_ids == tuple(test.frame_ids()) and np.isfinite(record.poses_3d).all()
        errors = read_frame_errors(refined / "test_frame_errors.npz")
        initial = read_frame_errors(results / "baselines" / baseline / "test_frame_errors.npz")
        with open(refined / "improvement.csv", newline="") as handle:
            rows = {row["action"]: row for row in csv.DictReader(handle)}
        average = rows["average (mean of action means)"]
        by_action = [errors.mpjpe_mm[errors.action == a].mean() for a in np.unique(errors.action)]
        assert float(average["refined_mm"]) == pytest.approx(np.mean(by_action), abs=1e-3)
        before = [initial.mpjpe_mm[initial.action == a].mean() for a in np.unique(initial.action)]
        assert float(average["initial_mm"]) == pytest.approx(np.mean(before), abs=1e-3)
        assert float(average["ci_low_mm"]) <= float(average["improvement_mm"]) <= float(average["ci_high_mm"])
        deciles = (refined / "rarity_deciles.csv").read_text().splitlines()
        assert deciles[0].startswith("decile,") and len(deciles) == 11
        assert (results / "updater" / baseline / variant / "curve.csv").exists()


def test_claims_state_each_claim_with_its_numbers(refined_workflow):
    claims = json.loads((refined_workflow / "results/synthetic/claims.json").read_text())
    assert {"T1 lifting/rgb_seg", "T1 integral3d/rgb_seg", "T2 cropped rgb beats uncropped rgb",
            "T3 rgb_seg beats rgb and seg", "patches beat the pose-only control",
            "patches add to the pose-only control", "pixels add to the pose and boxes"} <= set(claims)  # fmt: skip
    for claim in claims.values():
        assert isinstance(claim["holds"], bool) and claim["claim"]
    t1 = claims["T1 lifting/rgb_seg"]
    assert t1["holds"] == (t1["refined_mm"] < t1["initial_mm"] and t1["ci_low_mm"] > 0)
    rare = claims["rare lifting/rgb_seg"]  # the rarest decile's gain against the commonest's, with intervals
    assert rare["difference"] == pytest.approx(rare["rarest_relative_gain"] - rare["commonest_relative_gain"])
    assert rare["difference_ci"][0] <= rare["difference_ci"][1] and rare["rarest_ci"][0] <= rare["rarest_ci"][1]


@pytest.mark.parametrize(
    "override",
    [{"training": {"learning_rate": 0.002}}, {"seed": 1001}],  # the updaters' own seed retrains them alone too
    ids=["learning_rate", "seed"],
)
def test_an_updater_key_reruns_only_the_updaters_and_what_follows(refined_workflow, override):
    write_config(refined_workflow, tiny_config({"updater": override}), name="changed.yaml")
    result = run_snakemake(refined_workflow, "-n", "--configfile", "changed.yaml")
    assert result.returncode == 0, result.stderr
    jobs = planned_jobs(result)
    assert jobs.pop("train_updater") == len(PAIRS) and jobs.pop("refine_with_updater") == len(PAIRS)
    assert jobs.pop("evaluate_refined") == len(PAIRS) and jobs.pop("write_claims") == 1 and jobs.pop("all") == 1
    # and what reads the refined files: the four tables and the figures (rules/tables.smk)
    assert jobs == {"make_table": 4, "plot_per_action": 1, "plot_rarity_deciles": 1, "plot_qualitative": 2}


def test_the_updaters_own_seed_set_to_the_runs_seed_reruns_nothing(refined_workflow):
    same = tiny_config({"updater": {"seed": tiny_config()["seed"]}})  # the run's seed, written out
    write_config(refined_workflow, same, name="same.yaml")
    result = run_snakemake(refined_workflow, "-n", "--configfile", "same.yaml")
    assert result.returncode == 0, result.stderr
    assert planned_jobs(result) == {}


def test_a_pose_only_key_reruns_only_the_controls_of_that_network(refined_workflow):
    write_config(
        refined_workflow, tiny_config({"updater": {"model": {"pose_only": {"width": 24}}}}), name="changed.yaml"
    )
    result = run_snakemake(refined_workflow, "-n", "--configfile", "changed.yaml")
    assert result.returncode == 0, result.stderr
    # pose_only and pose_boxes (the same network with the boxes); the extended table holds the controls, and the
    # rarity figure their curves
    assert planned_jobs(result) == {
        "train_updater": 2, "refine_with_updater": 2, "evaluate_refined": 2, "write_claims": 1, "all": 1,
        "make_table": 1, "plot_rarity_deciles": 1}  # fmt: skip
    assert "updater/lifting/pose_only/model.pt" in result.stdout
    assert "updater/lifting/pose_boxes/model.pt" in result.stdout
