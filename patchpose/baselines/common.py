"""What every in-pipeline baseline shares: the fold's training/validation frames, the training call, and
predicting a split into the 3D prediction format.

A baseline kind (``patchpose.baselines.<kind>.stage``) supplies its network, inputs, batches and loss;
this module does the rest the same way for all of them:

* training (``fit_fold``): fold ``f`` trains on the training subjects outside fold ``f``
  (``patchpose.fold_models``); a seeded fraction of those subjects' poses (``training.validation_fraction``,
  every camera view of a pose together) is held out; the validation loss is scored after every epoch, the
  best epoch's weights are kept and training stops after ``training.patience`` epochs without improvement
  (or at ``training.max_epochs``); the learning curve is written as CSV.
* prediction (``predict_with_folds``): every frame by the fold model that never saw its subject
  (``patchpose.folds``), written with ``patchpose.poses3d.write_predictions`` (camera frame, mm, ``H36M``
  order, root-relative, the store's frame ids), the same format external baselines are imported into, so
  both go through identical evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from patchpose.dataset_format import DatasetStore
from patchpose.fold_models import FoldPlan, holdout_rows, load_fold_models, plan_fold, train_fold_model
from patchpose.poses3d.files import write_predictions
from patchpose.skeleton import H36M
from patchpose.training import select_device

__all__ = ["FoldRows", "stage_name", "fold_rows", "fit_fold", "predict_with_folds"]

log = logging.getLogger("patchpose.baselines")


def stage_name(name: str) -> str:
    """The label of baseline ``name``'s training (``baselines.<name>``): it names the RNG streams of its
    held-out poses, initial weights and batches, so two baselines of one kind draw different numbers."""
    return f"baselines.{name}"


@dataclass(frozen=True)
class FoldRows:
    """One fold's training frames, split for validation.

    plan: the fold (``plan.indices``: (M,) rows of the training store); validation: (V,) rows of
    ``plan.indices`` (0..M-1) held out; training: the other rows (0..M-1).
    """

    plan: FoldPlan
    validation: np.ndarray
    training: np.ndarray


def fold_rows(stage: str, store: DatasetStore, k: int, fold: int, settings: dict, seed: int) -> FoldRows:
    """The frames fold ``fold`` of baseline ``stage`` (``stage_name``) trains and validates on."""
    plan = plan_fold(stage, store, k, fold)
    validation = holdout_rows(plan, store, settings["training"]["validation_fraction"], seed)
    return FoldRows(plan, validation, np.setdiff1d(np.arange(len(plan.indices)), validation))


def fit_fold(
    rows: FoldRows,
    build_model: Callable[[dict], torch.nn.Module],
    settings: dict,
    seed: int,
    make_batch: Callable,
    make_eval_batch: Callable,
    loss_fn: Callable,
    model_path: str | Path,
    checkpoint_path: str | Path,
    curve_path: str | Path,
    extras: dict | None = None,
    after_epoch: Callable[[int], None] | None = None,
    after_training: Callable[[torch.nn.Module], dict] | None = None,
    provenance: dict | None = None,
) -> torch.nn.Module:
    """Train the fold's model with validation and early stopping (``patchpose.fold_models.train_fold_model``).

    make_batch(rows, rng, device) / make_eval_batch(rows, device) -> (inputs, targets) with ``rows`` indexing
    ``rows.plan.indices`` (0..M-1); the first augments, the second does not. after_training(model) -> dict:
    extras computed from the trained model (stored in the model file).
    """
    return train_fold_model(
        rows.plan, build_model, settings, seed, make_batch, loss_fn, model_path, checkpoint_path, after_epoch,
        extras, validation_rows=rows.validation, make_eval_batch=make_eval_batch, curve_path=curve_path,
        after_training=after_training, provenance=provenance,
    )  # fmt: skip


@torch.no_grad()
def predict_with_folds(
    store: DatasetStore,
    model_paths: list[str],
    split: str,
    build_model: Callable[[dict], torch.nn.Module],
    predict_rows: Callable[[torch.nn.Module, dict, np.ndarray, torch.device], np.ndarray],
    batch_size: int,
    output_path: str | Path,
    method: str,
) -> np.ndarray:
    """Predict every frame of ``store`` (split ``split``) with the fold models and write ``output_path``.

    predict_rows(model, payload, rows, device) -> (B, 17, 3) camera-frame root-relative poses, mm, of store
    rows ``rows``. Returns the written (N, 17, 3) float64 poses.
    """
    device = select_device()
    which, models, payloads = load_fold_models(model_paths, split, store.subject_names(), build_model, device)
    poses = np.zeros((store.num_frames, H36M.num_joints, 3))
    for fold, (model, payload) in enumerate(zip(models, payloads, strict=True)):
        rows = np.flatnonzero(which == fold)
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            poses[batch] = predict_rows(model, payload, batch, device)
        log.info("fold %d predicted %d %s frames", fold, len(rows), split)
    poses = poses - poses[:, :1]
    write_predictions(output_path, poses, store.frame_ids(), split=split, method=method)
    return poses
