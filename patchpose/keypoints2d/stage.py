"""Train one fold's 2D keypoint network, and predict a split's 2D joints with the fold models.

Settings are the config's ``keypoints2d`` block (``model``, ``training``, ``augment``). With
``model.part_head_channels`` the network also segments the 15 body parts (``patchpose.keypoints2d.hourglass``,
a head on the same trunk; the segmentation stage reads it): the training loss is then the integral loss plus
``training.part_loss_weight`` x the per-pixel cross-entropy of the part labels (warped with the frame,
nearest neighbour, left/right swapped after a flip), each part weighted by its frequency in the fold's
training labels to the power ``-training.part_class_weight_power`` (``patchpose.parts.part_class_weights``),
plus ``training.part_dice_weight`` x a soft Dice loss of the same labels (``patchpose.part_loss``).
``augment.part_recolour`` recolours each part of that share of the training frames on its own
(``patchpose.augment.sample_part_colours``), with or without the part head; it needs the part labels.
Joints are (N, 17, 2) float32 crop pixels (pixel-centre convention, as the dataset's ``joints_2d``).
Model files: ``patchpose.fold_models``. Prediction files (``.npz``) hold ``joints_2d``, ``fold`` (N,)
(the model that predicted each frame), ``frame_ids`` (N,) str and ``split``.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from patchpose.atomic import atomic_write_bytes
from patchpose.augment import (
    Augment,
    augment_frames,
    pixels_to_unit,
    unit_to_pixels,
    warp_part_labels,
    warp_points,
)
from patchpose.dataset_format import open_dataset
from patchpose.fold_models import load_fold_models, plan_fold, train_fold_model
from patchpose.frames import load_frames, to_unit_float
from patchpose.keypoints2d.hourglass import StackedHourglass
from patchpose.keypoints2d.integral import integral_loss, soft_argmax
from patchpose.part_loss import soft_dice_loss
from patchpose.parts import NUM_PARTS, part_class_weights
from patchpose.skeleton import H36M
from patchpose.training import select_device

__all__ = ["build_model", "train_fold", "predict_split", "read_predictions"]

log = logging.getLogger("patchpose.keypoints2d")


def build_model(model_settings: dict) -> StackedHourglass:
    """The hourglass of ``model_settings``; with ``part_head_channels`` it also has the part head."""
    parts = NUM_PARTS if "part_head_channels" in model_settings else 0
    return StackedHourglass(H36M.num_joints, **model_settings, part_classes=parts)


def train_fold(
    store_path: str | Path,
    fold: int,
    k: int,
    settings: dict,
    seed: int,
    model_path: str | Path,
    checkpoint_path: str | Path,
    threads: int = 1,
    after_epoch=None,
    provenance: dict | None = None,
) -> None:
    """Train the model of ``fold`` on the training store's subjects outside that fold; write ``model_path``."""
    torch.set_num_threads(threads)
    store = open_dataset(store_path)
    side = store.crop_side()
    plan = plan_fold("keypoints2d", store, k, fold)
    size = settings["model"]["input_size"]
    images = load_frames(store, plan.indices, size)
    joints = torch.as_tensor(pixels_to_unit(store.joints_2d[plan.indices], side), dtype=torch.float32)
    augment = Augment.from_config(settings["augment"])
    training = settings["training"]
    labels = part_weights = None
    dice_weight = 0.0
    part_head = "part_head_channels" in settings["model"]
    if part_head or augment.part_recolour > 0:
        if not store.has_part_labels:
            why = "train the part head on" if part_head else "recolour the parts by (augment.part_recolour)"
            raise ValueError(f"{store_path}: has no part_labels to {why}")
        labels = torch.from_numpy(np.ascontiguousarray(store.read_part_labels(plan.indices)))
    if part_head:
        power = training["part_class_weight_power"]  # 0: the plain cross-entropy, no weight argument at all
        part_weights = torch.from_numpy(part_class_weights(labels.numpy(), power)) if power else None
        dice_weight = training["part_dice_weight"]  # 0: no Dice term, the loss of earlier versions

    def make_batch(rows, rng, device):
        batch_labels = None if labels is None else labels[rows]
        x, transforms = augment_frames(rng, to_unit_float(images[rows], device), augment, size, batch_labels)
        coords = warp_points(joints[rows].to(device), transforms)
        if not part_head:
            return x, (coords, None)
        return x, (coords, warp_part_labels(batch_labels.to(device), transforms, size))

    def loss_fn(outputs, targets):
        (heatmaps, part_logits), (coords, parts) = outputs, targets
        loss = integral_loss(heatmaps, coords, training["heatmap_loss_weight"], training["heatmap_sigma"])
        if parts is not None:
            weight = None if part_weights is None else part_weights.to(part_logits.device)
            loss = loss + training["part_loss_weight"] * F.cross_entropy(part_logits.float(), parts, weight=weight)
            if dice_weight:
                loss = loss + dice_weight * soft_dice_loss(part_logits, parts)
        return loss

    train_fold_model(plan, build_model, settings, seed, make_batch, loss_fn, model_path, checkpoint_path, after_epoch,
                     provenance=provenance)  # fmt: skip


@torch.no_grad()
def predict_split(
    store_path: str | Path, model_paths: list[str], split: str, batch_size: int, output_path: str | Path, threads=1
) -> np.ndarray:
    """Predict every frame of ``split`` with the fold models (``model_paths[f]`` = fold ``f``); write the
    ``.npz`` and return (N, 17, 2) crop px."""
    torch.set_num_threads(threads)
    store = open_dataset(store_path)
    side = store.crop_side()
    device = select_device()
    which, models, payloads = load_fold_models(model_paths, split, store.subject_names(), build_model, device)
    joints = np.zeros((store.num_frames, H36M.num_joints, 2), np.float32)
    for fold, (model, payload) in enumerate(zip(models, payloads, strict=True)):
        indices = np.flatnonzero(which == fold)
        size = payload["model_settings"]["input_size"]
        for start in range(0, len(indices), batch_size):
            batch = indices[start : start + batch_size]
            x = to_unit_float(load_frames(store, batch, size), device)
            coords = soft_argmax(model(x)[0][-1]).cpu().numpy()
            joints[batch] = unit_to_pixels(coords, side)
        log.info("fold %d predicted %d %s frames", fold, len(indices), split)
    buffer = io.BytesIO()
    np.savez(buffer, joints_2d=joints, fold=which, frame_ids=np.array(store.frame_ids()), split=np.array(split))
    atomic_write_bytes(output_path, buffer.getvalue())
    return joints


def read_predictions(path: str | Path, store) -> np.ndarray:
    """(N, 17, 2) predicted joints of ``path``, checked against the store's frame ids."""
    try:
        with np.load(path) as data:
            joints, ids = data["joints_2d"], data["frame_ids"]
    except Exception as error:
        raise ValueError(f"{path}: not a readable 2D keypoint prediction file: {error}") from error
    if joints.shape != (store.num_frames, H36M.num_joints, 2) or list(ids) != store.frame_ids():
        raise ValueError(f"{path}: predictions do not match the frames of {store.path}")
    if not np.all(np.isfinite(joints)):
        raise ValueError(f"{path}: 2D predictions hold NaN or inf")
    return joints
