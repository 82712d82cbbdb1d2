"""The in-pipeline baselines: model shapes, the 3D soft-argmax, 3D augmentation and the ray frame,
validation with early stopping, exact resume, and k-fold prediction without leaks."""

from __future__ import annotations

import copy
import io

import cv2
import numpy as np
import pytest
import torch

from patchpose.augment import Augment, Transforms, sample_transforms, warp_points
from patchpose.baselines.common import fold_rows, stage_name
from patchpose.baselines.curves import plot_learning_curves, read_curve
from patchpose.baselines.geometry import (
    _depth_ratio,
    _shortest_rotation_to_z,
    back_project,
    crop_units,
    fit_scale,
    flip_crop_units,
    from_ray_frame,
    ray_rotations,
    root_relative,
    to_ray_frame,
    warp_crop_units,
)
from patchpose.baselines.integral3d import stage as integral3d
from patchpose.baselines.integral3d.model import VolumetricHourglass
from patchpose.baselines.lifting import stage as lifting
from patchpose.baselines.lifting.model import LiftingMLP
from patchpose.camera import pixel_rays
from patchpose.config import validate_config
from patchpose.crop_geometry import apply_affine
from patchpose.dataset_format import DatasetWriter, open_dataset
from patchpose.fitting import write_learning_curve
from patchpose.fold_models import holdout_rows, plan_fold
from patchpose.folds import FoldError
from patchpose.keypoints2d import stage as keypoints2d
from patchpose.keypoints2d.integral import soft_argmax_nd, softmax_heatmaps, softmax_nd
from patchpose.poses3d.files import read_predictions
from patchpose.skeleton import H36M
from patchpose.training import TrainSpec, Validation, load_torch, read_history, train
from tests.conftest import default_config
from tests.dataset_factory import TINY_ACTIONS, make_tiny_batch


class Killed(Exception):
    pass


def write_store(path, subjects, num_frames, split, seed=0, frame_size=16):
    """A tiny valid store whose frames cycle through ``subjects``; camera ids alternate between two
    cameras so consecutive frame pairs are two views of one pose (same frame_index)."""
    batch = make_tiny_batch(num_frames, (frame_size, frame_size), np.random.default_rng(seed), False)
    batch["subject"] = (np.arange(num_frames) % len(subjects)).astype(np.int16)
    batch["camera_id"] = np.where(np.arange(num_frames) // len(subjects) % 2, 55011271, 54138969).astype(np.int64)
    batch["frame_index"] = (np.arange(num_frames) // (2 * len(subjects))).astype(np.int32)
    batch["action"] = (np.arange(num_frames) // (2 * len(subjects)) % len(TINY_ACTIONS)).astype(np.int16)
    with DatasetWriter(path, num_frames=num_frames, frame_size=(frame_size, frame_size), has_part_labels=False,
                       source="synthetic", split=split, subjects=subjects, actions=TINY_ACTIONS) as writer:  # fmt: skip
        writer.write(0, batch)
    return path


def write_joints_2d(path, store_path, noise_px=1.0, seed=0):
    """A keypoints2d-style prediction file: the store's 2D joints plus Gaussian noise."""
    store = open_dataset(store_path)
    joints = store.joints_2d + np.random.default_rng(seed).normal(0, noise_px, store.joints_2d.shape)
    buffer = io.BytesIO()
    np.savez(buffer, joints_2d=joints.astype(np.float32), fold=np.zeros(store.num_frames, np.int64),
             frame_ids=np.array(store.frame_ids()), split=np.array(store.split))  # fmt: skip
    path.write_bytes(buffer.getvalue())
    return path


def baseline_settings(kind: str, **training) -> dict:
    config = default_config()
    settings = copy.deepcopy(validate_config(config)["baselines"][kind])
    if kind == "lifting":
        settings["model"].update(width=16, blocks=1)
    else:
        settings["model"].update(depth_bins=4)
    settings["training"].update({"max_epochs": 3, "patience": 2, "batch_size": 4, **training})
    return settings


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    directory = tmp_path_factory.mktemp("stores")
    train_store = write_store(directory / "train.zarr", ("S1", "S5", "S6"), 48, "train")
    test_store = write_store(directory / "test.zarr", ("S9",), 8, "test", seed=1)
    return {
        "train": train_store,
        "test": test_store,
        "train_2d": write_joints_2d(directory / "train_2d.npz", train_store),
        "test_2d": write_joints_2d(directory / "test_2d.npz", test_store, seed=1),
    }


# --- models -------------------------------------------------------------------------------------------


def test_lifting_mlp_shapes():
    model = LiftingMLP(34, 48, width=32, blocks=2, dropout=0.5).eval()
    assert model(torch.zeros(5, 34)).shape == (5, 48)
    assert len(model.blocks) == 2


HOURGLASS = {"input_size": 16, "heatmap_size": 8, "stacks": 1, "features": 8, "depth": 1}


def test_volumetric_hourglass_starts_from_the_2d_heatmaps():
    torch.manual_seed(0)
    model = VolumetricHourglass(17, HOURGLASS, depth_bins=6).eval()
    x = torch.rand(2, 3, 16, 16)
    volume = model(x)
    assert volume.shape == (2, 17, 6, 8, 8)
    # the depth head starts at zero: the volume's image-plane marginal is the 2D network's heatmap, depth flat
    heatmap = model.hourglass(x)[0][-1]
    probabilities = softmax_nd(volume, 3)
    assert torch.allclose(probabilities.sum(dim=2), softmax_heatmaps(heatmap), atol=1e-6)
    assert torch.allclose(probabilities.sum(dim=(3, 4)), torch.full((2, 17, 6), 1 / 6), atol=1e-6)
    assert torch.allclose(soft_argmax_nd(volume, 3)[..., 2], torch.zeros(2, 17), atol=1e-6)


# --- 3D soft-argmax -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("d", "h", "w"), [(4, 6, 8), (16, 16, 16), (1, 3, 2)])
def test_soft_argmax_of_a_one_hot_volume_is_its_exact_cell_centre(d, h, w):
    rng = np.random.default_rng(d * h * w)
    logits = torch.full((3, 2, d, h, w), -1e4)
    cells = [(int(rng.integers(d)), int(rng.integers(h)), int(rng.integers(w))) for _ in range(6)]
    for (b, j), (z, y, x) in zip([(b, j) for b in range(3) for j in range(2)], cells, strict=True):
        logits[b, j, z, y, x] = 0.0
    coords = soft_argmax_nd(logits, 3)
    assert coords.shape == (3, 2, 3)
    for (b, j), (z, y, x) in zip([(b, j) for b in range(3) for j in range(2)], cells, strict=True):
        expected = [(x + 0.5) / w * 2 - 1, (y + 0.5) / h * 2 - 1, (z + 0.5) / d * 2 - 1]
        assert coords[b, j].tolist() == pytest.approx(expected, abs=1e-6)


def test_soft_argmax_3d_is_differentiable_with_the_analytic_gradient():
    logits = torch.randn(1, 1, 3, 4, 5, generator=torch.Generator().manual_seed(0), requires_grad=True)
    coords = soft_argmax_nd(logits, 3)
    coords[0, 0, 2].backward()  # z
    p = torch.softmax(logits.detach().flatten(), 0).reshape(3, 4, 5)
    z = ((torch.arange(3.0) + 0.5) / 3 * 2 - 1)[:, None, None].expand(3, 4, 5)
    expected = p * (z - (p * z).sum())  # d E[z] / d logit = p (z - E[z])
    assert torch.allclose(logits.grad[0, 0], expected, atol=1e-6)
    assert logits.grad.abs().sum() > 0


# --- 3D augmentation and the ray frame -----------------------------------------------------------------


def _units(count, seed=0):
    return torch.as_tensor(np.random.default_rng(seed).uniform(-0.8, 0.8, (count, 17, 3)), dtype=torch.float32)


def test_flip_mirrors_x_and_swaps_left_and_right():
    units = _units(2)
    matrices = torch.tensor([[[-1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
    flip = Transforms(matrices, torch.tensor([True, False]), torch.ones(2, 3))
    warped = warp_crop_units(units, flip)
    left, right = H36M.joint_index("left_wrist"), H36M.joint_index("right_wrist")
    assert warped[0, left].tolist() == pytest.approx([-units[0, right, 0].item(), *units[0, right, 1:].tolist()])
    assert np.allclose(warped[0].numpy(), flip_crop_units(units[:1].numpy())[0])
    assert torch.equal(warped[1], units[1])  # not flipped: unchanged
    assert np.allclose(flip_crop_units(flip_crop_units(units.numpy())), units.numpy())


def test_3d_targets_move_as_the_2d_joints_move_and_depth_scales_with_the_zoom():
    """Zoom, rotation and flip of a crop: (u, v) follow patchpose.augment.warp_points (whose agreement with
    the warped image is tested in test_keypoints2d); d is multiplied by the zoom and swapped alike."""
    units = _units(64, seed=1)
    transforms = sample_transforms(np.random.default_rng(2), 64, Augment(0.3, 40, True, 0.0))
    assert transforms.flipped.any() and not transforms.flipped.all()
    warped = warp_crop_units(units, transforms)
    assert torch.allclose(warped[..., :2], warp_points(units[..., :2], transforms))
    zoom = torch.sqrt(torch.abs(torch.linalg.det(torch.linalg.inv(transforms.matrices))))
    assert not torch.allclose(zoom, torch.ones(64))
    perm = torch.where(transforms.flipped[:, None], torch.tensor(H36M.flip_permutation), torch.arange(17))
    assert torch.allclose(warped[..., 2], torch.gather(units[..., 2], 1, perm) * zoom[:, None])


def test_crop_units_back_project_to_the_pose_and_the_bone_prior_fixes_the_scale(stores):
    store = open_dataset(stores["train"])
    rows = np.arange(store.num_frames)
    units = crop_units(store, rows)
    assert np.allclose(units[:, 0, 2], 0) and np.abs(units[..., :2]).max() < 1
    truth = root_relative(store.joints_3d)
    scale = store.joints_3d[:, 0, 2] / _depth_ratio(store, rows)  # mm per crop unit at the root's depth
    shape = back_project(store, rows, units)
    assert np.allclose(shape * scale[:, None, None], truth, atol=1e-3)
    bones = np.linalg.norm(truth[:, H36M.limb_children] - truth[:, H36M.limb_parents], axis=-1)
    fitted = fit_scale(shape, bones.mean(axis=0))
    assert fit_scale(truth, bones[3])[3] == pytest.approx(1.0)  # a frame's own bone lengths: scale 1
    assert np.allclose(fitted, scale, rtol=0.05) and not np.allclose(fitted, scale, rtol=1e-6)


def test_ray_frame_puts_the_crop_centre_ray_on_z_and_round_trips(stores):
    store = open_dataset(stores["train"])
    rotations = ray_rotations(store)
    assert np.allclose(rotations @ np.swapaxes(rotations, 1, 2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(rotations), 1.0)
    size = store.frame_size[0]
    centre = apply_affine(store.crop_affine, np.full((store.num_frames, 1, 2), (size - 1) / 2))[:, 0]
    rays = pixel_rays(centre, store.camera_intrinsics, store.camera_distortion)
    assert np.allclose(np.einsum("nij,nj->ni", rotations, rays), [0, 0, 1], atol=1e-12)
    poses = root_relative(store.joints_3d)
    assert np.allclose(poses[:, 0], 0) and np.allclose(from_ray_frame(to_ray_frame(poses, rotations), rotations), poses)
    assert np.array_equal(_shortest_rotation_to_z(np.array([[0.0, 0.0, 2.0]])), np.eye(3)[None])  # on the axis


# --- validation, early stopping, resume --------------------------------------------------------------


def _line_problem():
    """Train on y = 2x, validate on y = x: the weight climbs from 0 to 2, so the validation loss falls until
    the weight passes 1 and then rises; the best epoch lies in the middle."""
    x = torch.linspace(-1, 1, 32)[:, None]
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)

    def make_batch(rows, rng, device):
        return x[rows], 2 * x[rows]

    validation = Validation(32, lambda rows, device: (x[rows], x[rows]), batch_size=7)
    return model, make_batch, validation


def test_early_stopping_keeps_the_best_validation_epoch(tmp_path):
    model, make_batch, validation = _line_problem()
    snapshots = {}

    def snapshot(epoch):
        snapshots[epoch] = model.weight.detach().clone()

    spec = TrainSpec(40, 8, 0.02, 0.0, 0, ("line",), patience=3)
    trained = train(model, 32, make_batch, torch.nn.functional.mse_loss, spec, tmp_path / "ckpt.pt", {"a": 1},
                    torch.device("cpu"), snapshot, validation)  # fmt: skip
    history = read_history(tmp_path / "ckpt.pt")
    losses = [record["val_loss"] for record in history]
    best = int(np.argmin(losses))
    assert 0 < best < len(history) - 1 < 39  # stopped early, after a real minimum
    assert len(history) == best + 1 + 3  # patience epochs after the best one
    assert [record["best"] for record in history] == [i == best for i in range(len(history))]
    assert torch.equal(trained.weight, snapshots[best]) and not torch.equal(trained.weight, snapshots[len(history) - 1])
    assert abs(snapshots[best].item() - 1) < abs(snapshots[len(history) - 1].item() - 1)
    # a finished (stopped) run is not continued by a rerun: same weights, no new epochs
    again = train(_line_problem()[0], 32, make_batch, torch.nn.functional.mse_loss, spec, tmp_path / "ckpt.pt",
                  {"a": 1}, torch.device("cpu"), None, validation)  # fmt: skip
    assert torch.equal(again.weight, trained.weight) and len(read_history(tmp_path / "ckpt.pt")) == len(history)


def _train_lifting(stores, directory, after_epoch=None, **training):
    directory.mkdir(exist_ok=True)
    settings = baseline_settings("lifting", **training)
    lifting.train_fold(stores["train"], 0, 3, settings, 7, directory / "model.pt", directory / "ckpt.pt",
                       directory / "curve.csv", stores["train_2d"], 1, after_epoch)  # fmt: skip
    return load_torch(directory / "model.pt")


def test_resume_after_a_kill_reaches_the_same_weights_and_curve(stores, tmp_path):
    whole = _train_lifting(stores, tmp_path / "a", patience=5)

    def kill(epoch):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        _train_lifting(stores, tmp_path / "b", kill, patience=5)
    assert load_torch(tmp_path / "b" / "ckpt.pt")["epoch"] == 1 and not (tmp_path / "b" / "model.pt").exists()
    resumed = _train_lifting(stores, tmp_path / "b", patience=5)
    for name in whole["model"]:
        assert torch.equal(whole["model"][name], resumed["model"][name]), name
    assert [r["val_loss"] for r in whole["history"]] == [r["val_loss"] for r in resumed["history"]]
    assert len(whole["history"]) == 3
    curve = (tmp_path / "b" / "curve.csv").read_text().splitlines()
    assert curve[0] == "epoch,train_loss,val_loss,lr,best" and len(curve) == 4


def test_validation_poses_are_never_trained_on(stores):
    store = open_dataset(stores["train"])
    plan = plan_fold("x", store, 3, 1)
    held = holdout_rows(plan, store, 0.25, 0)
    rows = plan.indices
    pose = lambda r: (store.subject[r], store.action[r], store.subaction[r], store.frame_index[r])  # noqa: E731
    held_poses = {pose(r) for r in rows[held]}
    trained_poses = {pose(r) for r in np.delete(rows, held)}
    assert held_poses and trained_poses and not held_poses & trained_poses
    assert len(held_poses) == round(0.25 * len(held_poses | trained_poses))
    assert np.array_equal(held, holdout_rows(plan, store, 0.25, 0))  # seeded
    assert not np.array_equal(held, holdout_rows(plan, store, 0.25, 1))


# --- k-fold training and prediction ------------------------------------------------------------------


@pytest.fixture(scope="module")
def fold_models(stores, tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    models = {"keypoints2d": keypoints2d_fold_models(stores, directory)}
    for kind, module in (("lifting", lifting), ("integral3d", integral3d)):
        settings = baseline_settings(kind, max_epochs=2)
        models[kind] = [directory / f"{kind}{fold}.pt" for fold in range(3)]
        for fold in range(3):
            extra = {"joints_2d": stores["train_2d"]} if kind == "lifting" else {"init": models["keypoints2d"][fold]}
            stem = directory / f"{kind}{fold}"
            module.train_fold(stores["train"], fold, 3, settings, 0, models[kind][fold], stem.with_suffix(".ckpt"),
                              stem.with_suffix(".csv"), threads=1, **extra)  # fmt: skip
    return models


def keypoints2d_fold_models(stores, directory) -> list:
    """Tiny keypoints2d fold models (no part head: the stores have no part labels) of the 3 folds."""
    settings = copy.deepcopy(validate_config(default_config())["keypoints2d"])
    settings = {key: settings[key] for key in ("model", "training", "augment")}
    settings["model"] = dict(HOURGLASS)
    settings["training"].update(epochs=1, batch_size=4)
    del settings["training"]["part_loss_weight"], settings["training"]["part_class_weight_power"]
    paths = [directory / f"keypoints2d{fold}.pt" for fold in range(3)]
    for fold, path in enumerate(paths):
        keypoints2d.train_fold(stores["train"], fold, 3, settings, 0, path, path.with_suffix(".ckpt"), 1)
    return paths


@pytest.mark.parametrize("kind", ["lifting", "integral3d"])
def test_fold_models_predict_both_splits_in_the_prediction_format(stores, fold_models, kind, tmp_path):
    module = {"lifting": lifting, "integral3d": integral3d}[kind]
    for split in ("train", "test"):
        extra = {"joints_2d": stores[f"{split}_2d"]} if kind == "lifting" else {}
        output = tmp_path / f"{split}_poses_3d.npz"
        poses = module.predict_split(stores[split], fold_models[kind], split, 5, output, kind, threads=1, **extra)
        store = open_dataset(stores[split])
        record = read_predictions(output)
        assert record.frame_ids == tuple(store.frame_ids()) and record.method == kind and record.unit == "mm"
        assert np.allclose(record.poses_3d, poses, atol=1e-3) and np.allclose(poses[:, 0], 0)
        assert np.isfinite(poses).all() and poses.shape == (store.num_frames, 17, 3)


def test_k_fold_prediction_refuses_a_model_that_saw_the_subject(stores, fold_models, tmp_path):
    swapped = [fold_models["lifting"][1], fold_models["lifting"][0], fold_models["lifting"][2]]
    with pytest.raises(FoldError, match="fold"):
        lifting.predict_split(stores["train"], swapped, "train", 5, tmp_path / "x.npz", "x", stores["train_2d"])
    payloads = [load_torch(path) for path in fold_models["integral3d"]]
    subjects = open_dataset(stores["train"]).subject_names()
    for fold, payload in enumerate(payloads):  # each fold model trained on the others' subjects only
        assert set(payload["trained_subjects"]) == set(subjects) - {("S1", "S5", "S6")[fold]}
        assert 0 < payload["scale_calibration"] < np.inf and payload["mean_bone_lengths_mm"].shape == (16,)
    assert not (tmp_path / "x.npz").exists()


def test_integral3d_refuses_to_start_from_another_fold_s_keypoints2d_model(stores, fold_models, tmp_path):
    settings = baseline_settings("integral3d", max_epochs=1)
    with pytest.raises(ValueError, match=r"keypoints2d1\.pt: not the keypoints2d model of fold 0 of 3"):
        integral3d.train_fold(stores["train"], 0, 3, settings, 0, tmp_path / "m.pt", tmp_path / "c.pt",
                              tmp_path / "c.csv", threads=1, init=fold_models["keypoints2d"][1])  # fmt: skip
    with pytest.raises(ValueError, match=r"lifting0\.pt: not the keypoints2d model"):
        integral3d.train_fold(stores["train"], 0, 3, settings, 0, tmp_path / "m.pt", tmp_path / "c.pt",
                              tmp_path / "c.csv", threads=1, init=fold_models["lifting"][0])  # fmt: skip
    assert not (tmp_path / "m.pt").exists()


def test_two_baselines_of_one_kind_draw_their_own_numbers(stores, tmp_path):
    """RNG streams (held-out poses, initial weights, batches) are named by the baseline's name, not its kind."""
    store = open_dataset(stores["train"])
    settings = baseline_settings("lifting", max_epochs=1)
    first = fold_rows(stage_name("lifting"), store, 3, 0, settings, 0).validation
    assert not np.array_equal(first, fold_rows(stage_name("wide_lifting"), store, 3, 0, settings, 0).validation)
    models = {}
    for name in ("lifting", "wide_lifting", "lifting"):
        directory = tmp_path / f"{name}{len(models)}"
        directory.mkdir()
        lifting.train_fold(stores["train"], 0, 3, settings, 7, directory / "m.pt", directory / "c.pt",
                           directory / "curve.csv", stores["train_2d"], 1, name=name)  # fmt: skip
        models[len(models)] = load_torch(directory / "m.pt")["model"]
    assert all(torch.equal(models[0][n], models[2][n]) for n in models[0])  # same name: same numbers
    assert any(not torch.equal(models[0][n], models[1][n]) for n in models[0] if models[0][n].is_floating_point())


def test_integral3d_fold_model_carries_its_hourglass_settings(fold_models):
    payload = load_torch(fold_models["integral3d"][0])
    assert payload["model_settings"] == {"depth_bins": 4, "depth_extent": 1.25, "hourglass": HOURGLASS}


def test_lifting_refuses_2d_predictions_of_other_frames(stores, fold_models, tmp_path):
    with pytest.raises(ValueError, match="test_2d.npz: predictions do not match"):
        lifting.predict_split(stores["train"], fold_models["lifting"], "train", 5, tmp_path / "x.npz", "x",
                              stores["test_2d"])  # fmt: skip


def test_learning_curves_are_written_and_plotted(tmp_path):
    history = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "lr": 1e-3, "best": False, "seconds": 2.0},
        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.7, "lr": 5e-4, "best": True, "seconds": 2.0},
    ]
    write_learning_curve(tmp_path / "fold0.csv", history)
    lines = (tmp_path / "fold0.csv").read_text().splitlines()
    assert lines == ["epoch,train_loss,val_loss,lr,best", "1,1,0.9,0.001,False", "2,0.5,0.7,0.0005,True"]
    curve = read_curve(tmp_path / "fold0.csv")
    assert curve["best"].tolist() == [False, True] and curve["val_loss"].tolist() == [0.9, 0.7]
    plot_learning_curves([tmp_path / "fold0.csv"] * 2, tmp_path / "curves.png", "lifting")
    image = cv2.imread(str(tmp_path / "curves.png"))
    assert image.shape == (400, 640, 3) and (image < 128).any()
    (tmp_path / "bad.csv").write_text("epoch,loss\n1,2\n")
    with pytest.raises(ValueError, match="bad.csv: not a learning-curve CSV"):
        plot_learning_curves([tmp_path / "bad.csv"], tmp_path / "x.png", "x")
    assert not (tmp_path / "x.png").exists()
