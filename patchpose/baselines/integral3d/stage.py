"""Train one fold's volumetric network, and predict a split's 3D poses from the crops with the fold models.

Settings: the config's ``baselines.<name>`` block of kind ``integral3d`` (``model``: depth_bins,
depth_extent; ``training``: max_epochs, patience, batch_size, learning_rate, weight_decay,
validation_fraction, heatmap_loss_weight, heatmap_sigma; ``augment`` as keypoints2d's). The network
(``patchpose.baselines.integral3d.model``) is the keypoints2d hourglass plus a depth head, initialised from
the keypoints2d fold model of the same fold (``init``): that model trained on exactly this fold's subjects,
so nothing leaks, and the 3D training starts from a network that already finds the joints in the image.
The model file's ``model_settings`` hold the hourglass's settings (``hourglass``) with the depth keys.

The volume (Sun et al. 2018): per joint, x and y span the crop (unit crop coordinates, image-aligned, so
the heatmaps are translation-equivariant like a 2D keypoint network's) and z spans the depth relative to
the root, d in [-depth_extent, depth_extent] crop units (``patchpose.baselines.geometry``: one crop unit
is the millimetres the crop's half side spans at the root's depth). The joint's (u, v, d) is the
expectation of the softmax over its volume (``soft_argmax_nd``). Loss (``volume_loss``): L1 of
(u, v, d / depth_extent) (Sun et al.), mean over the 17 joints and 3 axes, plus keypoints2d's heatmap
cross-entropy on the image-plane marginal (``training.heatmap_loss_weight``, ``heatmap_sigma``).

Predictions: each joint back-projected along its pixel's camera ray (lens distortion undone) at its depth,
which fixes the pose up to one scale; the scale is fitted to the training subjects' mean bone lengths
(stored in the model file), since a crop shows the person's size in pixels, not in millimetres, times a
calibration: the median ratio of the true to the fitted scale over the fold's validation frames
(soft-argmax shrinks an uncertain pose, so its bones come out short and the fit overshoots). Sun et al. take
the ground-truth root depth instead; here no test-time root depth or bone length is used, but the crop's
position and size (from the ground-truth 2D box by default, ``dataset.person_box``) fix the rays and the
depth-to-size ratio (docs/data_format.md, "Where ground truth enters").
Augmentation: crop zoom, in-plane rotation, flips (u mirrored, left/right swapped), colour jitter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from patchpose.augment import Augment, jitter_colour, sample_transforms, warp
from patchpose.baselines.common import fit_fold, fold_rows, predict_with_folds, stage_name
from patchpose.baselines.geometry import back_project, crop_unit_mm, crop_units, fit_scale, warp_crop_units
from patchpose.baselines.integral3d.model import VolumetricHourglass
from patchpose.dataset_format import open_dataset
from patchpose.frames import load_frames, to_unit_float
from patchpose.keypoints2d.integral import integral_loss, soft_argmax_nd
from patchpose.orientation import bone_lengths
from patchpose.skeleton import H36M
from patchpose.training import load_torch

__all__ = ["build_model", "train_fold", "predict_split", "volume_loss"]


def build_model(model_settings: dict) -> VolumetricHourglass:
    return VolumetricHourglass(H36M.num_joints, model_settings["hourglass"], model_settings["depth_bins"])


def read_initial_hourglass(path: str | Path, fold: int, k: int, trained_subjects: list[str]) -> dict:
    """The keypoints2d fold model at ``path`` that fold ``fold`` of ``k`` starts from: its hourglass settings
    (without the part head) and weights. Refused, naming the file, if it is another fold's or trained on
    other subjects (its weights would carry subjects this fold must not see)."""
    payload = load_torch(path)
    if payload.get("stage") != "keypoints2d" or (payload.get("fold"), payload.get("k")) != (fold, k):
        raise ValueError(f"{path}: not the keypoints2d model of fold {fold} of {k} (stage {payload.get('stage')!r}, "
                         f"fold {payload.get('fold')} of {payload.get('k')})")  # fmt: skip
    if sorted(payload.get("trained_subjects", [])) != sorted(trained_subjects):
        seen = payload.get("trained_subjects")
        raise ValueError(f"{path}: trained on {seen}, fold {fold} trains on {trained_subjects}")
    settings = {key: value for key, value in payload["model_settings"].items() if key != "part_head_channels"}
    weights = {name: tensor for name, tensor in payload["model"].items() if not name.startswith("parts.")}
    return {"settings": settings, "weights": weights}


def volume_loss(logits: torch.Tensor, target: torch.Tensor, heatmap_weight: float, sigma: float) -> torch.Tensor:
    """(B, 17, D, V, V) logits vs (B, 17, 3) volume unit coordinates -> L1 of the soft-argmax (mean over
    joints and axes) plus ``heatmap_weight`` x the cross-entropy of the image-plane marginal (the softmax
    summed over depth) against a Gaussian of ``sigma`` cells at the target, as keypoints2d's 2D loss."""
    coords = soft_argmax_nd(logits, 3)
    depth = (coords[..., 2] - target[..., 2]).abs().mean()
    image_plane = torch.logsumexp(logits.float(), dim=2)  # log of the marginal over depth, up to a constant
    return (2 * integral_loss([image_plane], target[..., :2], heatmap_weight, sigma) + depth) / 3


def train_fold(
    store_path: str | Path,
    fold: int,
    k: int,
    settings: dict,
    seed: int,
    model_path: str | Path,
    checkpoint_path: str | Path,
    curve_path: str | Path,
    threads: int = 1,
    after_epoch=None,
    name: str = "integral3d",
    provenance: dict | None = None,
    *,
    init: str | Path,
) -> None:
    """Train fold ``fold``'s network on the training store's other folds, starting from the keypoints2d fold
    model ``init`` of the same fold; write the model and its curve."""
    torch.set_num_threads(threads)
    store = open_dataset(store_path)
    rows = fold_rows(stage_name(name), store, k, fold, settings, seed)
    initial = read_initial_hourglass(init, fold, k, rows.plan.trained_subjects)
    settings = {**settings, "model": {**settings["model"], "hourglass": initial["settings"]}}
    indices = rows.plan.indices
    size, extent = initial["settings"]["input_size"], settings["model"]["depth_extent"]
    images = load_frames(store, indices, size)
    targets = torch.as_tensor(crop_units(store, indices), dtype=torch.float32)  # (M, 17, 3) u, v, d
    to_volume = torch.tensor([1.0, 1.0, 1.0 / extent])
    augment = Augment.from_config(settings["augment"])
    training = settings["training"]
    mean_bones = bone_lengths(store.joints_3d[indices[rows.training]]).mean(axis=0)

    def make_batch(batch, rng, device):
        transforms = sample_transforms(rng, len(batch), augment)
        x = jitter_colour(warp(to_unit_float(images[batch], device), transforms, size), transforms)
        return x, warp_crop_units(targets[batch].to(device), transforms) * to_volume.to(device)

    def make_eval_batch(batch, device):
        return to_unit_float(images[batch], device), (targets[batch] * to_volume).to(device)

    def loss_fn(logits, target):
        return volume_loss(logits, target, training["heatmap_loss_weight"], training["heatmap_sigma"])

    @torch.no_grad()
    def calibrate(model):
        """The median ratio of the true to the bone-fitted scale over the validation frames."""
        held = rows.validation
        units = _predict_units(model, images[held], settings["model"])
        shape = back_project(store, indices[held], units)
        fitted = fit_scale(shape, mean_bones)
        ratio = crop_unit_mm(store, indices[held])[fitted > 0] / fitted[fitted > 0]
        return {"scale_calibration": float(np.median(ratio)) if len(ratio) else 1.0}

    def build_initialised(model_settings):
        model = build_model(model_settings)
        model.hourglass.load_state_dict(initial["weights"])
        return model

    fit_fold(rows, build_initialised, settings, seed, make_batch, make_eval_batch, loss_fn, model_path,
             checkpoint_path, curve_path, {"mean_bone_lengths_mm": mean_bones}, after_epoch, calibrate,
             provenance)  # fmt: skip


def _predict_units(model, images: torch.Tensor, model_settings: dict, batch_size: int = 256) -> np.ndarray:
    """(B, 3, S, S) uint8 crops -> (B, 17, 3) float64 (u, v, d) predicted by ``model`` (eval mode)."""
    device = next(model.parameters()).device
    model.eval()
    chunks = [
        soft_argmax_nd(model(to_unit_float(images[start : start + batch_size], device)), 3).float().cpu().numpy()
        for start in range(0, len(images), batch_size)
    ]
    units = np.concatenate(chunks).astype(np.float64)
    units[..., 2] *= model_settings["depth_extent"]
    return units


@torch.no_grad()
def predict_split(
    store_path: str | Path,
    model_paths: list[str],
    split: str,
    batch_size: int,
    output_path: str | Path,
    method: str,
    threads: int = 1,
) -> np.ndarray:
    """Predict every frame of ``split`` with the fold models; write the prediction file ``output_path``
    (``patchpose.poses3d`` format, label ``method``) and return the (N, 17, 3) camera-frame root-relative
    poses, mm."""
    torch.set_num_threads(threads)
    store = open_dataset(store_path)

    def predict_rows(model, payload, rows, device):
        settings = payload["model_settings"]
        units = _predict_units(model, load_frames(store, rows, settings["hourglass"]["input_size"]), settings)
        pose = back_project(store, rows, units)
        scale = fit_scale(pose, payload["mean_bone_lengths_mm"]) * payload["scale_calibration"]
        return pose * scale[:, None, None]

    return predict_with_folds(store, model_paths, split, build_model, predict_rows, batch_size, output_path, method)
