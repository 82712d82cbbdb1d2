"""The workflow as Snakemake sees it: the default config dry-runs; bad configs stop it naming the key."""

from __future__ import annotations

import re

import pytest

from patchpose.folds import assign_folds
from tests.conftest import default_config, run_snakemake, write_config


def test_default_config_dry_run(workflow_dir):
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "render_synthetic_split" in out
    assert "results/synthetic/dataset/train.zarr" in out and "results/synthetic/dataset/test.zarr" in out


def test_default_dry_run_plans_keypoints2d_and_segmentation_per_fold_and_split(workflow_dir):
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode == 0, result.stderr
    k = default_config()["folds"]["k"]
    assert "train_keypoints2d_fold" in result.stdout
    for fold in range(k):
        assert f"results/synthetic/keypoints2d/models/fold{fold}.pt" in result.stdout
    for stage in ("keypoints2d", "segmentation"):
        assert f"results/synthetic/{stage}/metrics.csv" in result.stdout
    assert "results/synthetic/segmentation/test.zarr" in result.stdout
    # by default the keypoints2d network's part head segments: no segmentation network of its own
    assert "train_segmentation_fold" not in result.stdout and "segmentation/models/" not in result.stdout
    segment = re.findall(r"rule predict_segmentation:\n\s+input: (.*)", result.stdout)
    assert len(segment) == 2 and all("keypoints2d/models/fold0.pt" in line for line in segment)


def test_the_fold_model_that_trains_on_the_most_subjects_is_scheduled_first(workflow_dir):
    """Each fold job's priority is the number of subjects it trains on (rules/common.smk get_fold_priority)."""
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode == 0, result.stderr
    config = default_config()
    subjects, k = config["dataset"]["synthetic"]["train_subjects"], config["folds"]["k"]
    folds = list(assign_folds(subjects, k).values())
    held = [folds.count(fold) for fold in range(k)]
    priorities = {}
    for block in result.stdout.split("\nrule ")[1:]:  # one job per block, up to the next job's date line
        rule, block = block.split(":", 1)
        name = re.search(r"\bname=(\w+)", block)
        if rule not in ("train_keypoints2d_fold", "train_baseline_fold") or (name and name.group(1) != "integral3d"):
            continue
        found = re.search(r"^\s+priority: (\d+)$", block.split("\n[")[0], flags=re.MULTILINE)
        priorities[(rule, int(re.search(r"\bfold=(\d+)", block).group(1)))] = int(found.group(1)) if found else 0
    assert priorities == {
        (rule, fold): len(subjects) - held[fold]
        for rule in ("train_keypoints2d_fold", "train_baseline_fold")
        for fold in range(k)
    }
    assert len(set(held)) > 1  # the default's folds differ in size, so the order matters


def test_refinenet_segmentation_trains_its_own_fold_models(workflow_dir):
    config = default_config()
    config["segmentation"]["network"] = "refinenet"
    write_config(workflow_dir, config)
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode == 0, result.stderr
    k = config["folds"]["k"]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", result.stdout, flags=re.MULTILINE))
    assert int(jobs["train_segmentation_fold"]) == k and int(jobs["train_keypoints2d_fold"]) == k
    segment = re.findall(r"rule predict_segmentation:\n\s+input: (.*)", result.stdout)
    assert len(segment) == 2 and all("segmentation/models/fold0.pt" in line for line in segment)
    assert all("keypoints2d/models" not in line for line in segment)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c.update(extra_key=1), "invalid config: unknown config key extra_key"),
        (lambda c: c.update(seed="one"), "invalid config: config key seed = 'one' has the wrong type"),
        (
            lambda c: c["dataset"]["synthetic"].update(dim_light_fraction=2.0),
            "invalid config: config key dataset.synthetic.dim_light_fraction = 2.0 is out of range",
        ),
    ],
    ids=["unknown-key", "wrong-type", "out-of-range"],
)
def test_bad_config_stops_the_run_naming_the_key(workflow_dir, mutate, expected):
    config = default_config()
    mutate(config)
    write_config(workflow_dir, config)
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if expected in line]
    assert len(lines) == 1, result.stderr


def test_workflow_lints_clean(workflow_dir):
    result = run_snakemake(workflow_dir, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr


# --- baselines: which splits an external baseline imports is planned from the config ---


@pytest.mark.parametrize(
    ("train_file", "imports"),
    [(None, {"test"}), ("external/mine.npz", {"train", "test"})],
    ids=["test-only", "one-file-both-splits"],
)
def test_external_baseline_is_planned_per_split(workflow_dir, train_file, imports):
    (workflow_dir / "external").mkdir()
    (workflow_dir / "external/mine.npz").touch()  # a dry run only needs the file to exist
    config = default_config()
    config["baselines"] = {"mine": {"kind": "external", "file": "external/mine.npz", "train_file": train_file}}
    config["updater"]["ablation_baseline"] = "mine" if train_file else "lifting"  # test-only: nothing to refine
    write_config(workflow_dir, config)
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode == 0, result.stderr
    for split in ("train", "test"):
        planned = f"results/synthetic/baselines/mine/{split}_poses_3d.npz" in result.stdout
        assert planned == (split in imports)
    for output in ("info.json", "mpjpe_per_action.csv"):
        assert f"results/synthetic/baselines/mine/{output}" in result.stdout


# --- in-pipeline baselines: one training job per (baseline, fold), one prediction job per (baseline, split) ---


def test_default_dry_run_plans_the_trained_baselines(workflow_dir):
    config = default_config()
    config["baselines"]["wide_lifting"] = {**config["baselines"]["lifting"], "model": {"width": 512}}
    write_config(workflow_dir, config)
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode == 0, result.stderr
    k = config["folds"]["k"]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", result.stdout, flags=re.MULTILINE))
    assert int(jobs["train_baseline_fold"]) == 3 * k and int(jobs["predict_trained_baseline"]) == 3 * 2
    assert int(jobs["plot_baseline_learning_curves"]) == 3 and int(jobs["correct_trained_baseline"]) == 3
    for name in ("lifting", "integral3d", "wide_lifting"):
        for fold in range(k):
            assert f"results/synthetic/baselines/{name}/models/fold{fold}.pt" in result.stdout
            assert f"results/synthetic/baselines/{name}/curves/fold{fold}.csv" in result.stdout
        for output in ("train_poses_3d.npz", "test_poses_3d.npz", "info.json", "mpjpe_per_action.csv"):
            assert f"results/synthetic/baselines/{name}/{output}" in result.stdout
        # the fold models' poses, then the baseline's (corrected or passed through: correction.json says which)
        for output in ("network/train_poses_3d.npz", "network/test_poses_3d.npz", "correction.json"):
            assert f"results/synthetic/baselines/{name}/{output}" in result.stdout
    # lifting lifts the predicted 2D joints (k-fold ones for the training split); integral3d reads the frames
    # and starts from the keypoints2d model of its own fold
    inputs = re.findall(r"rule train_baseline_fold:\n\s+input: (.*)\n\s+output: (\S+)", result.stdout)
    assert len(inputs) == 3 * k
    for line, model in inputs:
        assert ("keypoints2d/train_joints_2d.npz" in line) == ("lifting" in model), (line, model)
        fold = re.search(r"fold(\d)\.pt", model)[1]
        assert (f"keypoints2d/models/fold{fold}.pt" in line) == ("integral3d" in model), (line, model)
        assert "keypoints2d/models/" not in line.replace(f"keypoints2d/models/fold{fold}.pt", ""), line


# --- updaters: the pairs the tables need, each with the patch store its variant reads ---


def test_default_dry_run_plans_the_updaters_with_the_patch_stores_they_read(workflow_dir):
    result = run_snakemake(workflow_dir, "-n")
    assert result.returncode == 0, result.stderr
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", result.stdout, flags=re.MULTILINE))
    # lifting and integral3d with rgb_seg (Table 1); the ablation baseline integral3d with rgb, seg,
    # uncropped_rgb, pose_only, pose_boxes and rgb_seg_conditioned
    assert [int(jobs[rule]) for rule in ("train_updater", "refine_with_updater", "evaluate_refined")] == [8, 8, 8]
    for rule, split in (("train_updater", "train"), ("refine_with_updater", "test")):
        inputs = {
            re.search(r"/(\w+)/(?:model\.pt|test_poses_3d\.npz)", output)[1]: line
            for line, output in re.findall(rf"rule {rule}:\n\s+input: (.*)\n\s+output: (\S+)", result.stdout)
            if "/integral3d/" in output
        }
        assert len(inputs) == 7
        # pose_boxes reads the rgb_seg store (its limb boxes, not its pixels); pose_only no store at all
        assert f"results/synthetic/patches/predicted/{split}.zarr" in inputs["pose_boxes"]
        assert f"results/synthetic/patches/predicted/{split}.zarr" in inputs["rgb_seg_conditioned"]
        assert "/patches/" not in inputs["pose_only"]
