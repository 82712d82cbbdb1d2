"""Train one fold's lifting network, and lift a split's predicted 2D joints to 3D with the fold models.

Settings: the config's ``baselines.<name>`` block of kind ``lifting`` (``model``: width, blocks, dropout;
``training``: max_epochs, patience, batch_size, learning_rate, weight_decay, validation_fraction).

Inputs: the *predicted* 2D joints of ``patchpose.keypoints2d`` (``{split}_joints_2d.npz``, (N, 17, 2) crop
px). For the training split these are the k-fold predictions (each frame by a 2D model that never saw its
subject), so the lifter trains on 2D inputs as noisy as the test split's. Each crop's joints are mapped
to unit coordinates of the crop ([-1, 1], ``patchpose.augment.pixels_to_unit``), flattened to 34 numbers
and standardised by their mean and standard deviation over the fold's training frames (Martinez et al.).
Outputs: joints 1..16 root-relative in the crop's ray frame (``patchpose.baselines.geometry``), mm,
standardised the same way (48 numbers); loss: mean squared error of the standardised outputs. The
statistics travel in the model file (``normalisation``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from patchpose.augment import pixels_to_unit
from patchpose.baselines.common import fit_fold, fold_rows, predict_with_folds, stage_name
from patchpose.baselines.geometry import from_ray_frame, ray_rotations, root_relative, to_ray_frame
from patchpose.baselines.lifting.model import LiftingMLP
from patchpose.dataset_format import open_dataset
from patchpose.keypoints2d.stage import read_predictions
from patchpose.skeleton import H36M

__all__ = ["build_model", "lifting_inputs", "train_fold", "predict_split"]

INPUTS = 2 * H36M.num_joints
OUTPUTS = 3 * (H36M.num_joints - 1)


def build_model(model_settings: dict) -> LiftingMLP:
    return LiftingMLP(INPUTS, OUTPUTS, **model_settings)


def lifting_inputs(joints_2d: np.ndarray, frame_size: int) -> np.ndarray:
    """(N, 17, 2) crop px of ``frame_size``-px crops -> (N, 34) float64 unit crop coordinates, x then y."""
    return pixels_to_unit(np.asarray(joints_2d, dtype=np.float64), frame_size).reshape(len(joints_2d), INPUTS)


def _statistics(values: np.ndarray) -> dict[str, np.ndarray]:
    return {"mean": values.mean(axis=0), "std": np.maximum(values.std(axis=0), 1e-6)}


def train_fold(
    store_path: str | Path,
    fold: int,
    k: int,
    settings: dict,
    seed: int,
    model_path: str | Path,
    checkpoint_path: str | Path,
    curve_path: str | Path,
    joints_2d: str | Path,
    threads: int = 1,
    after_epoch=None,
    name: str = "lifting",
    provenance: dict | None = None,
) -> None:
    """Train fold ``fold``'s lifter on the training store's other folds, from the predicted 2D joints in
    ``joints_2d`` (the training split's k-fold predictions); write the model and its learning curve."""
    torch.set_num_threads(threads)
    store = open_dataset(store_path)
    rows = fold_rows(stage_name(name), store, k, fold, settings, seed)
    indices = rows.plan.indices
    inputs = lifting_inputs(read_predictions(joints_2d, store)[indices], store.crop_side())
    poses = to_ray_frame(root_relative(store.joints_3d[indices]), ray_rotations(store, indices))
    outputs = poses[:, 1:].reshape(len(indices), OUTPUTS)
    norm = {"input": _statistics(inputs[rows.training]), "output": _statistics(outputs[rows.training])}
    x = torch.as_tensor((inputs - norm["input"]["mean"]) / norm["input"]["std"], dtype=torch.float32)
    y = torch.as_tensor((outputs - norm["output"]["mean"]) / norm["output"]["std"], dtype=torch.float32)

    def make_eval_batch(batch, device):
        return x[batch].to(device), y[batch].to(device)

    def make_batch(batch, rng, device):
        return make_eval_batch(batch, device)

    def loss_fn(prediction, target):
        return F.mse_loss(prediction.float(), target)

    fit_fold(rows, build_model, settings, seed, make_batch, make_eval_batch, loss_fn, model_path,
             checkpoint_path, curve_path, {"normalisation": norm}, after_epoch, provenance=provenance)  # fmt: skip


@torch.no_grad()
def predict_split(
    store_path: str | Path,
    model_paths: list[str],
    split: str,
    batch_size: int,
    output_path: str | Path,
    method: str,
    joints_2d: str | Path,
    threads: int = 1,
) -> np.ndarray:
    """Lift every frame of ``split`` (its predicted 2D joints ``joints_2d``) with the fold models; write the
    prediction file ``output_path`` (``patchpose.poses3d`` format, label ``method``) and return the
    (N, 17, 3) camera-frame root-relative poses, mm."""
    torch.set_num_threads(threads)
    store = open_dataset(store_path)
    inputs = lifting_inputs(read_predictions(joints_2d, store), store.crop_side())
    rotations = ray_rotations(store)

    def predict_rows(model, payload, rows, device):
        norm = payload["normalisation"]
        x = (inputs[rows] - norm["input"]["mean"]) / norm["input"]["std"]
        y = model(torch.as_tensor(x, dtype=torch.float32, device=device)).float().cpu().numpy()
        ray = np.zeros((len(rows), H36M.num_joints, 3))
        ray[:, 1:] = (y * norm["output"]["std"] + norm["output"]["mean"]).reshape(len(rows), H36M.num_joints - 1, 3)
        return from_ray_frame(ray, rotations[rows])

    return predict_with_folds(store, model_paths, split, build_model, predict_rows, batch_size, output_path, method)
