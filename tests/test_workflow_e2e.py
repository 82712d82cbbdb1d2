"""End-to-end: the tiny config runs through Snakemake; reruns follow exactly the params that changed."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from patchpose.config import validate_config
from patchpose.dataset_format import open_dataset
from patchpose.keypoints2d.stage import read_predictions
from patchpose.metrics import per_frame_mpjpe, per_frame_pa_mpjpe
from patchpose.patches.geometry import LimbPatchGeometry, limb_patch_geometry
from patchpose.patches.store import open_patch_store
from patchpose.poses3d import VIDEOPOSE3D_JOINT_NAMES, read_baseline_info, write_predictions
from patchpose.training import load_torch
from tests.conftest import run_snakemake, write_config
from tests.tiny_pipeline import all_planned_outputs, copy_finished_run, planned_jobs, planned_outputs, tiny_config


@pytest.fixture(scope="module")
def finished_workflow(tiny_run, tmp_path_factory):
    return copy_finished_run(tiny_run, tmp_path_factory.mktemp("e2e"))


def test_tiny_pipeline_runs(finished_workflow):
    for split in ("train", "test"):
        store = open_dataset(finished_workflow / f"results/synthetic/dataset/{split}.zarr")
        assert store.num_frames == 30
        assert (finished_workflow / f"results/synthetic/dataset/{split}_contact_sheet.png").stat().st_size > 0
        assert (finished_workflow / f"results/synthetic/logs/dataset/render_{split}.log").exists()
        assert (finished_workflow / f"results/synthetic/benchmarks/dataset/render_{split}.tsv").exists()


def test_second_run_does_nothing(finished_workflow):
    result = run_snakemake(finished_workflow, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"rare_actions": {"Sitting": 0.1}}, {"results/synthetic/dataset/train.zarr"}),
        ({"test_poses_per_action": 3}, {"results/synthetic/dataset/test.zarr"}),
        (
            {"noise_sigma": 5.0},
            {"results/synthetic/dataset/train.zarr", "results/synthetic/dataset/test.zarr"},
        ),
    ],
    ids=["train-only-key", "test-only-key", "shared-key"],
)
def test_changed_world_key_reruns_what_depends_on_it(finished_workflow, change, expected):
    write_config(finished_workflow, tiny_config(**change), name="changed.yaml")
    result = run_snakemake(finished_workflow, "-n", "--configfile", "changed.yaml")
    assert result.returncode == 0, result.stderr
    assert planned_outputs(result) == expected
    assert planned_jobs(result)["render_synthetic_split"] == len(expected)
    assert "params" in result.stdout.lower()


def test_tiny_pipeline_runs_keypoints2d_and_segmentation(finished_workflow):
    results = finished_workflow / "results/synthetic"
    for stage in ("keypoints2d", "segmentation"):
        metrics = (results / stage / "metrics.csv").read_text().splitlines()
        assert len(metrics) == 1 + 2 * (2 if stage == "keypoints2d" else 3)  # header + rows per split and method
        for split in ("train", "test"):
            assert (results / stage / f"{split}_contact_sheet.png").stat().st_size > 0
    for fold in range(2):  # one network per fold for both: the keypoints2d hourglass with its part head
        assert "part_head_channels" in load_torch(results / "keypoints2d/models" / f"fold{fold}.pt")["model_settings"]
        assert (results / "logs/keypoints2d" / f"train_fold{fold}.log").read_text().count("epoch 1/1 loss") == 1
        assert (results / "benchmarks/keypoints2d" / f"train_fold{fold}.tsv").exists()
    assert not (results / "segmentation/models").exists()
    assert (results / "segmentation/test.zarr/encoded").is_dir()


def test_changed_segmentation_evaluation_key_reruns_only_its_evaluation(finished_workflow):
    change = {"segmentation": {"evaluation": {"contact_sheet_frames": 5}}}
    write_config(finished_workflow, tiny_config(change), name="changed.yaml")
    result = run_snakemake(finished_workflow, "-n", "--configfile", "changed.yaml")
    assert result.returncode == 0, result.stderr
    assert set(planned_jobs(result)) == {"evaluate_segmentation", "all"}


def test_changed_part_loss_weight_retrains_the_shared_network_and_what_follows(finished_workflow):
    change = {"keypoints2d": {"training": {"part_loss_weight": 0.5}}}
    write_config(finished_workflow, tiny_config(change), name="changed.yaml")
    result = run_snakemake(finished_workflow, "-n", "--configfile", "changed.yaml")
    assert result.returncode == 0, result.stderr
    jobs = planned_jobs(result)
    assert jobs["train_keypoints2d_fold"] == 2 and jobs["predict_keypoints2d"] == 2
    assert jobs["predict_segmentation"] == 2  # the part head is the segmentation
    assert jobs["cut_limb_patches"] == 2 and "render_synthetic_split" not in jobs


def test_changed_evaluation_key_reruns_only_evaluation(finished_workflow):
    change = {"keypoints2d": {"evaluation": {"pck_threshold": 0.1}}}
    write_config(finished_workflow, tiny_config(change), name="changed.yaml")
    result = run_snakemake(finished_workflow, "-n", "--configfile", "changed.yaml")
    assert result.returncode == 0, result.stderr
    assert set(planned_jobs(result)) == {"evaluate_keypoints2d", "all"}


def test_changed_fold_count_is_rejected_when_too_large(finished_workflow):
    write_config(finished_workflow, tiny_config({"folds": {"k": 3}}), name="changed.yaml")
    result = run_snakemake(
        finished_workflow, "results/synthetic/keypoints2d/metrics.csv", "--configfile", "changed.yaml"
    )
    assert result.returncode != 0
    assert "folds.k = 3 needs 2 <= k <= the number of training subjects (2: S1, S5)" in result.stdout + result.stderr


# --- baselines: an external prediction file becomes a baseline with its per-action MPJPE ---


def test_external_baseline_gets_its_per_action_mpjpe(finished_workflow):
    store = open_dataset(finished_workflow / "results/synthetic/dataset/test.zarr")
    truth = store.joints_3d - store.joints_3d[:, :1]
    noisy = truth + np.random.default_rng(0).normal(0, 30, truth.shape)  # mm
    (finished_workflow / "external").mkdir(exist_ok=True)
    write_predictions(  # metres, VideoPose3D's names, rows reversed: the import converts all of it
        finished_workflow / "external/noisy.csv", noisy[::-1] / 1000, store.frame_ids()[::-1], split="test",
        method="noisy", unit="m", joint_names=VIDEOPOSE3D_JOINT_NAMES,
    )  # fmt: skip
    config = tiny_config()
    config["baselines"] = {"noisy": {"kind": "external", "file": "external/noisy.csv"}}
    write_config(finished_workflow, config, name="baseline.yaml")
    planned = run_snakemake(finished_workflow, "-n", "--configfile", "baseline.yaml")
    assert planned.returncode == 0, planned.stderr
    expected = {"import_external_baseline": 1, "baseline_info": 1, "evaluate_baseline": 1, "all": 1}
    tables = {"make_table": 2, "plot_per_action": 1}  # Table 1 and the extended table list it, unrefined
    assert planned_jobs(planned) == expected | tables  # adding a baseline reruns nothing else
    result = run_snakemake(finished_workflow, "--configfile", "baseline.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    baseline = finished_workflow / "results/synthetic/baselines/noisy"
    info = read_baseline_info(baseline / "info.json")
    assert info["splits"] == ["test"] and not info["has_train_split"] and info["frames"] == {"test": 30}
    with open(baseline / "mpjpe_per_action.csv", newline="") as handle:
        table = {row["action"]: row for row in csv.DictReader(handle)}
    actions = store.action_names()
    p1, p2 = per_frame_mpjpe(noisy, store.joints_3d), per_frame_pa_mpjpe(noisy, store.joints_3d)
    assert set(table) == set(actions) | {"average (mean of action means)", "average (mean over frames)"}
    for action in set(actions):
        assert float(table[action]["mpjpe_mm"]) == pytest.approx(p1[actions == action].mean(), abs=0.01)
        assert float(table[action]["pa_mpjpe_mm"]) == pytest.approx(p2[actions == action].mean(), abs=0.01)
    assert float(table["average (mean over frames)"]["mpjpe_mm"]) == pytest.approx(p1.mean(), abs=0.01)
    log = (finished_workflow / "results/synthetic/logs/baselines/evaluate_noisy.log").read_text()
    logged = re.findall(r"noisy: MPJPE ([\d.]+) mm", log)
    assert len(logged) == 1 and float(logged[0]) == pytest.approx(p1.mean(), abs=0.01)


# --- in-pipeline baselines: trained k-fold, per-action MPJPE; an external copy evaluates identically ---


def _table(path) -> dict[str, dict]:
    with open(path, newline="") as handle:
        return {row["action"]: row for row in csv.DictReader(handle)}


def test_tiny_pipeline_trains_the_baselines(finished_workflow):
    results = finished_workflow / "results/synthetic"
    for name in ("lifting", "integral3d"):
        baseline = results / "baselines" / name
        info = read_baseline_info(baseline / "info.json")
        assert info["kind"] == name and info["splits"] == ["train", "test"]
        assert info["frames"] == {"train": 30, "test": 30}
        table = _table(baseline / "mpjpe_per_action.csv")
        assert len(table) == 15 + 2 and all(float(row["mpjpe_mm"]) > 0 for row in table.values())
        assert (baseline / "learning_curves.png").stat().st_size > 0
        for fold in range(2):
            curve = (baseline / "curves" / f"fold{fold}.csv").read_text().splitlines()
            assert curve[0] == "epoch,train_loss,val_loss,lr,best" and len(curve) >= 2
            assert sum(line.endswith(",True") for line in curve) == 1  # one kept epoch
            log = (results / "logs" / "baselines" / f"train_{name}_fold{fold}.log").read_text()
            assert "held out for validation" in log and " val " in log
            assert (results / "benchmarks" / "baselines" / f"train_{name}_fold{fold}.tsv").exists()


def test_external_copy_of_lifting_gives_the_same_per_action_mpjpe(finished_workflow):
    lifting = finished_workflow / "results/synthetic/baselines/lifting"
    parts = [np.load(lifting / f"{split}_poses_3d.npz") for split in ("train", "test")]
    (finished_workflow / "external").mkdir(exist_ok=True)
    write_predictions(  # one file holding both splits, as a user would bring it
        finished_workflow / "external/lifting_copy.npz",
        np.concatenate([part["poses_3d"] for part in parts]),
        [str(i) for part in parts for i in part["frame_ids"]],
        split="train+test",
        method="someone else's lifting",
    )
    config = tiny_config()
    external = {"kind": "external", "file": "external/lifting_copy.npz", "train_file": "external/lifting_copy.npz"}
    config["baselines"]["lifting_copy"] = external
    write_config(finished_workflow, config, name="copy.yaml")
    planned = run_snakemake(finished_workflow, "-n", "--configfile", "copy.yaml")
    assert planned.returncode == 0, planned.stderr
    imported = {"import_external_baseline": 2, "baseline_info": 1, "evaluate_baseline": 1, "all": 1}
    # The new baseline has a training split, so Table 1 gets its updater too (and the claims are rewritten).
    refined = {"train_updater": 1, "refine_with_updater": 1, "evaluate_refined": 1, "write_claims": 1}
    # Table 1 and the extended table gain its columns, the figures its bars and rarity curve and its examples
    tables = {"make_table": 2, "plot_per_action": 1, "plot_rarity_deciles": 1, "plot_qualitative": 1}
    assert planned_jobs(planned) == imported | refined | tables  # lifting itself is not retrained
    result = run_snakemake(finished_workflow, "--configfile", "copy.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    copied = finished_workflow / "results/synthetic/baselines/lifting_copy"
    assert _table(copied / "mpjpe_per_action.csv") == _table(lifting / "mpjpe_per_action.csv")
    assert read_baseline_info(copied / "info.json")["frames"] == read_baseline_info(lifting / "info.json")["frames"]
    for split in ("train", "test"):
        original, imported = np.load(lifting / f"{split}_poses_3d.npz"), np.load(copied / f"{split}_poses_3d.npz")
        assert np.array_equal(original["poses_3d"], imported["poses_3d"])
        assert np.array_equal(original["frame_ids"], imported["frame_ids"])


# --- patches: limb patches from the predicted 2D joints, uncropped frames, contact sheets ---


def test_tiny_pipeline_writes_patch_stores(finished_workflow):
    results = finished_workflow / "results/synthetic"
    patches = validate_config(tiny_config())["patches"]
    geometry = LimbPatchGeometry(patches["min_side_at_256"], patches["scale"], patches["square"], patches["cache_size"])
    for split, frames in (("train", 30), ("test", 30)):
        dataset = open_dataset(results / f"dataset/{split}.zarr")
        limbs = open_patch_store(results / f"patches/predicted/{split}.zarr", dataset)
        uncropped = open_patch_store(results / f"patches/uncropped/{split}.zarr", dataset)
        assert (limbs.kind, limbs.source, limbs.num_frames, limbs.num_patches) == ("limbs", "predicted", frames, 16)
        # The limb boxes are placed by keypoints2d's predicted joints, not by the ground-truth ones.
        predicted = read_predictions(results / f"keypoints2d/{split}_joints_2d.npz", dataset).astype(np.float64)
        boxes, affines = limb_patch_geometry(predicted, dataset.frame_size, geometry)
        every_frame = np.arange(frames)
        assert np.array_equal(limbs.read_box(every_frame), boxes)
        assert np.array_equal(limbs.read_affine(every_frame), affines)
        truth_boxes, _ = limb_patch_geometry(dataset.joints_2d.astype(np.float64), dataset.frame_size, geometry)
        assert not np.allclose(limbs.read_box(every_frame), truth_boxes, atol=0.5)
        assert (uncropped.kind, uncropped.num_patches) == ("uncropped", 1)
        assert limbs.read([0, frames - 1]).any() and uncropped.read([frames - 1]).any()
        assert (results / f"patches/predicted/{split}_contact_sheet.png").stat().st_size > 0
        assert (results / f"logs/patches/predicted_{split}.log").exists()
        assert (results / f"benchmarks/patches/uncropped_{split}.tsv").exists()


def test_changed_patch_scale_reruns_patches_not_earlier_stages(finished_workflow):
    write_config(finished_workflow, tiny_config({"patches": {"scale": 2.0}}), name="changed.yaml")
    result = run_snakemake(finished_workflow, "-n", "--configfile", "changed.yaml")
    assert result.returncode == 0, result.stderr
    jobs = planned_jobs(result)
    assert jobs["cut_limb_patches"] == 2 and jobs["patches_contact_sheet"] == 2
    assert "cut_uncropped_frames" not in jobs  # the whole frames do not depend on the limb boxes
    earlier = ("render", "keypoints2d", "segmentation", "baseline")
    assert not {rule for rule in jobs if any(stage in rule for stage in earlier)}
    outputs = all_planned_outputs(result)
    assert {f"results/synthetic/patches/predicted/{split}.zarr" for split in ("train", "test")} <= outputs
    earlier_dirs = ("/dataset/", "/keypoints2d/", "/segmentation/", "/baselines/", "/patches/uncropped/")
    assert not {path for path in outputs if any(directory in path for directory in earlier_dirs)}
