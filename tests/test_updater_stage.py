"""The updater stage: Eq. 2's target, the refinement of Eq. 1, training from the patch store with exact resume,
and refined files in the prediction format."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from patchpose.baselines.geometry import root_relative
from patchpose.config import ConfigError, validate_config
from patchpose.dataset_format import DatasetStore, open_dataset
from patchpose.orientation import bone_statistics, refine
from patchpose.patches.geometry import LimbPatchGeometry
from patchpose.patches.stage import write_limb_patches
from patchpose.patches.store import PatchStore
from patchpose.poses3d.files import read_predictions, write_predictions
from patchpose.training import load_torch
from patchpose.updater import stage as updater_stage
from patchpose.updater.calibration import calibration_factors
from patchpose.updater.stage import (
    load_updater,
    predict_residuals,
    refine_split,
    residual_targets,
    train_updater,
    validation_rows,
)
from patchpose.updater.variants import job_settings, planned_pairs, updater_seed
from tests.conftest import default_config
from tests.dataset_factory import write_tiny_dataset
from tests.patches_factory import write_label_segmentation

GEOMETRY = LimbPatchGeometry(min_side_at_256=28, scale=2.3, square=True, cache_size=16)


class Killed(Exception):
    pass


def tiny_updater(variant: str, epochs: int = 2, calibration: str = "none") -> dict:
    updater = copy.deepcopy(validate_config(default_config())["updater"])
    updater["model"]["input_size"] = 8
    updater["model"]["limb_encoder"].update(widths=[4], embedding=4, hidden=8)
    updater["model"]["pose_only"].update(width=8, blocks=1)
    updater["training"].update(max_epochs=epochs, batch_size=4, patience=0, validation_fraction=0.25,
                               validation_subjects=[], calibration=calibration)  # fmt: skip
    return job_settings(updater, variant)


@pytest.fixture(scope="module")
def split_files(tmp_path_factory):
    """Train and test stores, their limb patch stores (ground-truth boxes) and noisy 'baseline' predictions."""
    directory = tmp_path_factory.mktemp("updater")
    files = {}
    for split, frames, seed in (("train", 24, 0), ("test", 8, 1)):
        dataset = write_tiny_dataset(directory / f"{split}.zarr", num_frames=frames, frame_size=(32, 32),
                                     split=split, seed=seed)  # fmt: skip
        store = open_dataset(dataset)
        segmentation = write_label_segmentation(directory / f"{split}_seg.zarr", store)
        storage = {"compressor": "lz4", "compression_level": 1}
        patches = write_limb_patches(dataset, segmentation, directory / f"{split}_patches.zarr", source="groundtruth",
                                     geometry=GEOMETRY, storage=storage)  # fmt: skip
        noisy = root_relative(store.joints_3d) + np.random.default_rng(seed).normal(0, 40, store.joints_3d.shape)
        initial = directory / f"{split}_poses_3d.npz"
        write_predictions(initial, noisy - noisy[:, :1], store.frame_ids(), split=split, method="noisy")
        files[split] = {"dataset": dataset, "patches": patches, "initial": initial}
    return files


def test_the_target_of_a_perfect_initial_pose_is_zero():
    poses = np.random.default_rng(0).normal(0, 300, (5, 17, 3))
    poses -= poses[:, :1]
    stats = bone_statistics(poses)
    u_init, target = residual_targets(poses, poses, stats)
    assert u_init.shape == target.shape == (5, 48) and np.abs(target).max() == 0


def test_refining_with_the_target_gives_the_ground_truth():
    rng = np.random.default_rng(1)
    truth, initial = rng.normal(0, 300, (2, 6, 17, 3))
    truth, initial = truth - truth[:, :1], initial - initial[:, :1]
    stats = bone_statistics(truth)
    _, target = residual_targets(truth, initial, stats)
    assert np.allclose(refine(initial, target.astype(np.float64).reshape(-1, 16, 3), stats), truth, atol=1e-3)


def _train(files, directory, variant, after_epoch=None, epochs=2, calibration="none", settings=None):
    directory.mkdir(exist_ok=True)
    return train_updater(dataset=files["train"]["dataset"], initial=files["train"]["initial"],
                         patches=files["train"]["patches"] if variant != "pose_only" else None, variant=variant,
                         settings=settings or tiny_updater(variant, epochs, calibration), seed=3, baseline="noisy",
                         model_path=directory / "model.pt", checkpoint_path=directory / "ckpt.pt",
                         curve_path=directory / "curve.csv", after_epoch=after_epoch)  # fmt: skip


@pytest.mark.parametrize("variant", ["rgb_seg", "rgb_seg_conditioned", "pose_only", "pose_boxes"])
def test_training_resumes_after_a_kill_to_the_same_weights_and_refines(split_files, tmp_path, variant):
    _train(split_files, tmp_path / "whole", variant)

    def kill(epoch):
        if epoch == 0:
            raise Killed

    with pytest.raises(Killed):
        _train(split_files, tmp_path / "killed", variant, kill)
    assert not (tmp_path / "killed" / "model.pt").exists()
    _train(split_files, tmp_path / "killed", variant)
    whole, resumed = (load_torch(tmp_path / run / "model.pt") for run in ("whole", "killed"))
    assert whole["variant"] == variant and whole["baseline"] == "noisy"
    assert all(torch.equal(whole["model"][name], resumed["model"][name]) for name in whole["model"])
    stats = whole["bone_statistics"]
    truth = root_relative(open_dataset(split_files["train"]["dataset"]).joints_3d)
    assert np.allclose(stats["mean_mm"], bone_statistics(truth).mean_mm)  # the training split's ground truth

    output = tmp_path / "refined.npz"
    test = split_files["test"]
    refined = refine_split(model=tmp_path / "whole" / "model.pt", dataset=test["dataset"], initial=test["initial"],
                           patches=test["patches"] if variant != "pose_only" else None, output=output,
                           method="noisy + updater", batch_size=3)  # fmt: skip
    record = read_predictions(output)
    assert record.poses_3d.shape == (8, 17, 3) and record.frame_ids == tuple(open_dataset(test["dataset"]).frame_ids())
    assert np.allclose(record.poses_3d, refined, atol=1e-3) and np.allclose(refined[:, 0], 0)
    initial = read_predictions(test["initial"]).poses_3d
    assert not np.allclose(refined, initial, atol=1e-3)  # the updater did change the poses
    # an updater already loaded (the command line loads it to check it first) is not read from its file again
    loaded = load_updater(tmp_path / "whole" / "model.pt", torch.device("cpu"))
    again = refine_split(model=tmp_path / "never-read.pt", dataset=test["dataset"], initial=test["initial"],
                         patches=test["patches"] if variant != "pose_only" else None, output=tmp_path / "again.npz",
                         method="noisy + updater", batch_size=3, loaded=loaded)  # fmt: skip
    assert np.array_equal(again, refined)


def test_a_per_limb_updater_trains_resumes_and_refines_from_its_model_file(split_files, tmp_path):
    # limb_encoder.head: per_limb, conditioned (its conditioning dropout drawn in training): the model file keeps
    # the head, so the loaded network is per-limb; a kill after the first epoch resumes to the same weights
    settings = tiny_updater("rgb_seg_conditioned")
    settings["model"]["limb_encoder"]["head"] = "per_limb"
    _train(split_files, tmp_path / "whole", "rgb_seg_conditioned", settings=settings)

    def kill(epoch):
        if epoch == 0:
            raise Killed

    with pytest.raises(Killed):
        _train(split_files, tmp_path / "killed", "rgb_seg_conditioned", kill, settings=settings)
    _train(split_files, tmp_path / "killed", "rgb_seg_conditioned", settings=settings)
    whole, resumed = (load_torch(tmp_path / run / "model.pt") for run in ("whole", "killed"))
    assert all(torch.equal(whole["model"][name], resumed["model"][name]) for name in whole["model"])
    network, payload = load_updater(tmp_path / "whole" / "model.pt", torch.device("cpu"))
    assert payload["model_settings"]["limb_encoder"]["head"] == "per_limb" and network.per_limb
    assert network.head[-1].out_features == 3 and network.conditioning_dropout > 0
    test = split_files["test"]
    refined = refine_split(model=tmp_path / "whole" / "model.pt", dataset=test["dataset"], initial=test["initial"],
                           patches=test["patches"], output=tmp_path / "refined.npz", method="noisy + updater",
                           batch_size=3)  # fmt: skip
    assert refined.shape == (8, 17, 3) and np.isfinite(refined).all()
    assert not np.allclose(refined, read_predictions(test["initial"]).poses_3d, atol=1e-3)


@pytest.mark.parametrize("variant", ["rgb_seg", "seg"])
def test_inputs_kept_in_memory_train_what_streamed_inputs_train_to_the_bit(split_files, tmp_path, variant, caplog):
    trained = {}
    for cache_mb in (0, 4096):  # 0: every epoch reads and resizes the patches again; 4096: once, then kept
        settings = tiny_updater(variant, epochs=3, calibration="per_output")
        settings["training"]["input_cache_mb"] = cache_mb
        assert settings["training"]["augment"]["gain_sigma"] > 0  # recoloured after what is kept
        directory = tmp_path / str(cache_mb)
        directory.mkdir()
        with caplog.at_level("INFO", logger="patchpose.updater"):
            train_updater(dataset=split_files["train"]["dataset"], initial=split_files["train"]["initial"],
                          patches=split_files["train"]["patches"], variant=variant, settings=settings, seed=3,
                          baseline="noisy", model_path=directory / "model.pt", checkpoint_path=directory / "ckpt.pt",
                          curve_path=directory / "curve.csv")  # fmt: skip
        trained[cache_mb] = load_torch(directory / "model.pt"), (directory / "curve.csv").read_bytes()
    assert "inputs streamed every epoch" in caplog.text and "inputs kept in memory" in caplog.text
    (streamed, streamed_curve), (kept, kept_curve) = trained[0], trained[4096]
    assert kept_curve == streamed_curve and kept["calibration"] == streamed["calibration"]
    assert all(torch.equal(kept["model"][name], streamed["model"][name]) for name in streamed["model"])


def test_the_recolouring_reaches_training_and_only_the_rgb_patches(split_files, tmp_path):
    def weights(variant: str, augment: dict) -> dict:
        settings = tiny_updater(variant, epochs=1)
        settings["training"]["augment"] = augment
        directory = tmp_path / f"{variant}-{augment['channel_shuffle']}-{augment['gain_sigma']}"
        directory.mkdir()
        train_updater(dataset=split_files["train"]["dataset"], initial=split_files["train"]["initial"],
                      patches=split_files["train"]["patches"], variant=variant, settings=settings, seed=3,
                      baseline="noisy", model_path=directory / "model.pt", checkpoint_path=directory / "ckpt.pt",
                      curve_path=directory / "curve.csv")  # fmt: skip
        return load_torch(directory / "model.pt")["model"]

    def same(a: dict, b: dict) -> bool:
        return all(torch.equal(a[name], b[name]) for name in a)

    off, on = {"channel_shuffle": False, "gain_sigma": 0.0}, {"channel_shuffle": True, "gain_sigma": 0.3}
    assert not same(weights("rgb_seg", off), weights("rgb_seg", on))
    assert same(weights("seg", off), weights("seg", on))  # the colour-coded segmentation is never recoloured


def test_an_orientation_updater_starts_from_the_training_mean_and_refines(split_files, tmp_path):
    settings = tiny_updater("rgb_seg", epochs=1)
    settings["model"]["predicts"] = "orientation"
    settings["training"]["learning_rate"] = 1e-12  # the weights stay where they started
    (tmp_path / "run").mkdir()
    train_updater(dataset=split_files["train"]["dataset"], initial=split_files["train"]["initial"],
                  patches=split_files["train"]["patches"], variant="rgb_seg", settings=settings, seed=3,
                  baseline="noisy", model_path=tmp_path / "run" / "model.pt", checkpoint_path=tmp_path / "ckpt.pt",
                  curve_path=tmp_path / "curve.csv")  # fmt: skip
    network, payload = load_updater(tmp_path / "run" / "model.pt", torch.device("cpu"))
    assert network.predicts == "orientation" and payload["model_settings"]["predicts"] == "orientation"
    # the offset started at the training rows' mean U_gt (the validation rows left out)
    store = open_dataset(split_files["train"]["dataset"])
    truth = root_relative(store.joints_3d)
    held = validation_rows(store, settings["training"], 3, ("updater", "noisy", "rgb_seg"))
    rows = np.setdiff1d(np.arange(store.num_frames), held)
    initial = read_predictions(split_files["train"]["initial"]).poses_3d.astype(np.float64)
    u_init, target = residual_targets(truth, initial, bone_statistics(truth))
    expected = (u_init[rows] + target[rows]).mean(axis=0)
    assert np.allclose(network.orientation_offset.detach().numpy(), expected, atol=1e-5)
    assert not np.allclose(expected, (u_init + target).mean(axis=0), atol=1e-5)  # the held-out rows do differ

    test = split_files["test"]
    refined = refine_split(model=tmp_path / "run" / "model.pt", dataset=test["dataset"], initial=test["initial"],
                           patches=test["patches"], output=tmp_path / "refined.npz", method="x")  # fmt: skip
    start = read_predictions(test["initial"]).poses_3d
    assert np.isfinite(refined).all() and not np.allclose(refined, start - start[:, :1], atol=1e-3)


def test_refinement_does_not_depend_on_the_batch_size(split_files, tmp_path):
    _train(split_files, tmp_path, "rgb_seg")
    test = split_files["test"]
    outputs = [
        refine_split(model=tmp_path / "model.pt", dataset=test["dataset"], initial=test["initial"],
                     patches=test["patches"], output=tmp_path / f"r{size}.npz", method="x", batch_size=size)
        for size in (1, 8)
    ]  # fmt: skip
    assert np.allclose(outputs[0], outputs[1], atol=1e-4)


def test_the_residuals_of_chosen_rows_are_those_of_the_whole_split(split_files, tmp_path, monkeypatch):
    _train(split_files, tmp_path, "rgb_seg_conditioned", calibration="per_output")
    network, payload = load_updater(tmp_path / "model.pt", torch.device("cpu"))
    train = split_files["train"]
    store = open_dataset(train["dataset"])
    kept = []  # on the CPU each call keeps glibc's freed blocks first, as training does (patchpose.allocator)
    monkeypatch.setattr(updater_stage, "keep_freed_memory", lambda: kept.append(True) or True)
    initial, whole = predict_residuals(network, payload, store, train["initial"], train["patches"], batch_size=5)
    rows = np.array([17, 3, 3, 20, 0])  # any order, repeats allowed
    _, chosen = predict_residuals(network, payload, store, train["initial"], train["patches"], rows, batch_size=2)
    assert kept == [True, True]
    assert initial.shape == (24, 17, 3) and whole.shape == (24, 48) and chosen.shape == (5, 48)
    assert np.allclose(chosen, whole[rows], atol=1e-5) and not np.allclose(whole, 0)
    # refine_split adds the calibrated residuals of every row (Eq. 1)
    refined = refine_split(model=tmp_path / "model.pt", dataset=train["dataset"], initial=train["initial"],
                           patches=train["patches"], output=tmp_path / "refined.npz", method="x")  # fmt: skip
    stats = bone_statistics(root_relative(store.joints_3d))
    delta = whole * np.asarray(payload["calibration"])
    expected = refine(initial, delta.reshape(-1, 16, 3), stats)
    assert np.allclose(refined, expected - expected[:, :1], atol=1e-3)


def test_the_pose_boxes_control_trains_and_refines_from_the_boxes_without_reading_a_pixel(split_files, tmp_path,
                                                                                          monkeypatch):  # fmt: skip
    """pose_boxes: U_init and the limb boxes of the rgb_seg patch store, never its patches (reading one fails)."""
    read_box, boxes_read = PatchStore.read_box, []

    def spy(self, indices):
        boxes_read.append(len(indices))
        return read_box(self, indices)

    def forbidden(*args, **kwargs):
        raise AssertionError("patch pixels were read")

    monkeypatch.setattr(PatchStore, "read_box", spy)
    monkeypatch.setattr(PatchStore, "read", forbidden)
    monkeypatch.setattr(updater_stage, "PatchBatches", forbidden)
    monkeypatch.setattr(updater_stage, "ShrunkPatches", forbidden)
    _train(split_files, tmp_path, "pose_boxes", calibration="per_output")
    payload = load_torch(tmp_path / "model.pt")
    assert (payload["variant"], payload["modality"]) == ("pose_boxes", "rgb_seg")
    assert payload["model_settings"]["architecture"] == "pose_only"
    assert payload["model_settings"]["condition_on_initial_pose"] is True
    assert payload["model"]["mlp.stem.0.weight"].shape[1] == 48 + 16 * 4  # U_init and the 16 limbs' boxes
    assert sum(boxes_read) == 24  # the training split's boxes, read once
    test = split_files["test"]
    refined = refine_split(model=tmp_path / "model.pt", dataset=test["dataset"], initial=test["initial"],
                           patches=test["patches"], output=tmp_path / "refined.npz", method="x")  # fmt: skip
    assert refined.shape == (8, 17, 3) and np.isfinite(refined).all() and sum(boxes_read) == 24 + 8
    assert not np.allclose(refined, read_predictions(test["initial"]).poses_3d, atol=1e-3)


def test_the_calibration_is_fitted_on_the_validation_frames_and_scales_the_refinement(split_files, tmp_path):
    _train(split_files, tmp_path / "plain", "pose_only", calibration="none")
    _train(split_files, tmp_path / "calibrated", "pose_only", calibration="per_output")
    plain, calibrated = (load_torch(tmp_path / run / "model.pt") for run in ("plain", "calibrated"))
    assert plain["calibration"] == [1.0] * 48
    assert all(torch.equal(plain["model"][name], calibrated["model"][name]) for name in plain["model"])

    # recompute the factors by hand: the network on the validation rows against their targets
    store = open_dataset(split_files["train"]["dataset"])
    held = validation_rows(store, tiny_updater("pose_only")["training"], 3, ("updater", "noisy", "pose_only"))
    network, payload = load_updater(tmp_path / "calibrated" / "model.pt", torch.device("cpu"))
    initial = read_predictions(split_files["train"]["initial"]).poses_3d.astype(np.float64)
    u_init, target = residual_targets(
        root_relative(store.joints_3d), initial, bone_statistics(root_relative(store.joints_3d))
    )
    with torch.no_grad():
        predicted = network(None, torch.from_numpy(u_init[held]), None).numpy()
    assert np.allclose(payload["calibration"], calibration_factors(predicted, target[held], "per_output"), atol=1e-6)

    test = split_files["test"]
    start = read_predictions(test["initial"]).poses_3d
    refined = {}
    for name, factors in (("zero", [0.0] * 48), ("half", [0.5] * 48), ("one", [1.0] * 48)):
        torch.save({**plain, "calibration": factors}, tmp_path / f"{name}.pt")
        refined[name] = refine_split(model=tmp_path / f"{name}.pt", dataset=test["dataset"], initial=test["initial"],
                                     patches=None, output=tmp_path / f"{name}.npz", method="x")  # fmt: skip
    assert np.allclose(refined["zero"], start - start[:, :1], atol=1e-3)  # nothing added
    assert not np.allclose(refined["half"], refined["zero"], atol=1e-3)
    assert not np.allclose(refined["half"], refined["one"], atol=1e-3)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_training_processes_write_one_model_file_that_refines(split_files, tmp_path):
    settings = tiny_updater("rgb_seg", calibration="per_output")
    settings["training"]["processes"] = 2
    train_updater(dataset=split_files["train"]["dataset"], initial=split_files["train"]["initial"],
                  patches=split_files["train"]["patches"], variant="rgb_seg", settings=settings, seed=3,
                  baseline="noisy", model_path=tmp_path / "model.pt", checkpoint_path=tmp_path / "ckpt.pt",
                  curve_path=tmp_path / "curve.csv")  # fmt: skip
    payload = load_torch(tmp_path / "model.pt")
    assert [record["epoch"] for record in payload["history"]] == [1, 2] and len(payload["calibration"]) == 48
    assert load_torch(tmp_path / "ckpt.pt")["config"]["processes"] == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ckpt.pt", "curve.csv", "model.pt"]
    test = split_files["test"]
    refined = refine_split(model=tmp_path / "model.pt", dataset=test["dataset"], initial=test["initial"],
                           patches=test["patches"], output=tmp_path / "refined.npz", method="x")  # fmt: skip
    assert refined.shape == (8, 17, 3) and np.isfinite(refined).all()


def test_the_test_split_is_refused_for_training(split_files, tmp_path):
    with pytest.raises(ValueError, match="test.zarr: the updater trains on the training split"):
        train_updater(dataset=split_files["test"]["dataset"], initial=split_files["test"]["initial"],
                      patches=split_files["test"]["patches"], variant="rgb_seg", settings=tiny_updater("rgb_seg"),
                      seed=0, baseline="x", model_path=tmp_path / "m.pt", checkpoint_path=tmp_path / "c.pt",
                      curve_path=tmp_path / "c.csv")  # fmt: skip
    assert not (tmp_path / "m.pt").exists()


def test_validation_holds_out_whole_subjects_or_poses(split_files):
    store = open_dataset(split_files["train"]["dataset"])
    names = ("updater", "x", "rgb_seg")
    held = validation_rows(store, {"validation_subjects": ["S9"], "validation_fraction": 0.25}, 0, names)
    assert np.array_equal(held, np.flatnonzero(store.subject_names() == "S9")) and 0 < len(held) < store.num_frames
    by_pose = validation_rows(store, {"validation_subjects": [], "validation_fraction": 0.25}, 0, names)
    assert 0 < len(by_pose) < store.num_frames and not np.array_equal(by_pose, held)
    with pytest.raises(ValueError, match=r"train\.zarr: updater\.training\.validation_subjects \['S8'\] are not in"):
        validation_rows(store, {"validation_subjects": ["S8"], "validation_fraction": 0.25}, 0, names)
    with pytest.raises(ValueError, match="validation needs some frames and training the rest"):
        validation_rows(store, {"validation_subjects": ["S1", "S9"], "validation_fraction": 0.25}, 0, names)


def test_the_updaters_train_with_their_own_seed_or_the_runs():
    config = validate_config(default_config())
    assert config["updater"]["seed"] is None and updater_seed(config) == config["seed"] == 0
    config["seed"] = 5
    assert updater_seed(config) == 5
    config["updater"]["seed"] = 1001
    assert updater_seed(config) == 1001
    config["updater"]["seed"] = 0
    assert updater_seed(config) == 0  # 0 is a seed, not "unset"
    wrong = default_config()
    wrong["updater"]["seed"] = -1
    with pytest.raises(ConfigError, match="updater.seed = -1 is out of range"):
        validate_config(wrong)


def test_the_planned_pairs_follow_the_tables():
    plan = planned_pairs(["lifting", "integral3d"], "lifting", conditioned=False)
    assert plan["table1"] == [("lifting", "rgb_seg"), ("integral3d", "rgb_seg")]
    assert plan["ablation"] == [
        ("lifting", v) for v in ("rgb", "seg", "uncropped_rgb", "pose_only", "pose_boxes", "rgb_seg_conditioned")
    ]
    conditioned = planned_pairs(["lifting"], "lifting", conditioned=True)
    assert (
        conditioned["table1"] == [("lifting", "rgb_seg_conditioned")]
        and ("lifting", "rgb_seg") in conditioned["ablation"]
    )
    with pytest.raises(ValueError, match="ablation_baseline 'mean_pose' must be a baseline with a training split"):
        planned_pairs(["lifting"], "mean_pose", conditioned=False)
    assert planned_pairs([], "lifting", conditioned=False) == {"table1": [], "ablation": []}  # test files only
    assert planned_pairs(["mine"], None, conditioned=False) == {"table1": [("mine", "rgb_seg")], "ablation": []}


def test_job_settings_keep_only_the_variant_s_network():
    updater = validate_config(default_config())["updater"]
    pose_only = job_settings(updater, "pose_only")["model"]
    assert pose_only["architecture"] == "pose_only" and set(pose_only) == {
        "architecture", "input_size", "predicts", "condition_on_initial_pose", "pose_only"}  # fmt: skip
    assert pose_only["predicts"] == "residual"
    conditioned = job_settings(updater, "rgb_seg_conditioned")["model"]
    assert conditioned["condition_on_initial_pose"] is True and "limb_encoder" in conditioned
    assert conditioned["predicts"] == "orientation"  # it reads the patches (and U_init beside them)
    assert conditioned["conditioning_dropout"] == updater["model"]["conditioning_dropout"] > 0
    assert "conditioning_dropout" not in job_settings(updater, "rgb_seg")["model"]  # changing it reruns no other
    boxes = job_settings(updater, "pose_boxes")["model"]  # the pose_only network, conditioned on the boxes
    assert boxes == {**pose_only, "condition_on_initial_pose": True}
    # limb_encoder.head: for the 16 limb patches; the whole frame is one token (joint whatever the key), so a
    # change of the key reruns no whole-frame updater
    assert job_settings(updater, "rgb_seg")["model"]["limb_encoder"]["head"] == "joint"
    per_limb = copy.deepcopy(updater)
    per_limb["model"]["limb_encoder"]["head"] = "per_limb"
    assert job_settings(per_limb, "seg") != job_settings(updater, "seg")
    assert job_settings(per_limb, "uncropped_rgb") == job_settings(updater, "uncropped_rgb")
    assert "head" not in job_settings(updater, "uncropped_rgb")["model"]["limb_encoder"]
    assert per_limb["model"]["limb_encoder"]["head"] == "per_limb"  # the config itself is left alone


def test_refinement_never_reads_test_ground_truth(split_files, tmp_path, monkeypatch):
    """No leakage: the refined test poses come from the patches, the initial poses and the updater alone."""
    _train(split_files, tmp_path, "rgb_seg_conditioned")
    test = split_files["test"]

    def refine_once(name):
        return refine_split(model=tmp_path / "model.pt", dataset=test["dataset"], initial=test["initial"],
                            patches=test["patches"], output=tmp_path / name, method="x")  # fmt: skip

    allowed = refine_once("allowed.npz")

    def forbidden(self):
        raise AssertionError("test ground truth was read")

    for name in ("joints_3d", "joints_2d"):
        monkeypatch.setattr(DatasetStore, name, property(forbidden))
    assert np.array_equal(refine_once("blind.npz"), allowed)
