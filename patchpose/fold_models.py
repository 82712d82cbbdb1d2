"""k-fold models of a stage: train fold ``f`` on the other folds' subjects, predict a split with the
model that never saw each frame's subject.

Shared by every stage that predicts the training split for later stages (keypoints2d, segmentation,
the in-pipeline baselines). A stage supplies its network, how to build a batch and its loss; this
module does the fold bookkeeping, the training spec and config, and the model file.

Model files (``save_torch``) hold ``{"model": state_dict (CPU), "model_settings", "stage", "fold",
"k", "trained_subjects", "all_subjects", "history", "provenance"}`` plus any stage extras.

Validation (optional): ``holdout_rows`` sets aside a seeded fraction of a fold's training *poses* (all
camera views of one pose together, so no view of a held-out pose is trained on); ``train_fold_model``
then scores them after every epoch, keeps the best epoch's weights, stops on a plateau
(``training.patience``) and writes the learning curve (``write_learning_curve``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from patchpose.csv_rows import write_csv_rows
from patchpose.dataset_format import DatasetStore
from patchpose.folds import assign_folds, check_no_leak, predicting_fold, training_mask
from patchpose.rng import stream
from patchpose.training import (
    TrainSpec,
    Validation,
    load_torch,
    read_history,
    save_torch,
    seed_torch,
    select_device,
    train,
)

__all__ = [
    "FoldPlan",
    "plan_fold",
    "holdout_rows",
    "train_fold_model",
    "load_fold_models",
    "write_learning_curve",
    "CURVE_COLUMNS",
]

CURVE_COLUMNS = ("epoch", "train_loss", "val_loss", "lr", "best")

log = logging.getLogger("patchpose.fold_models")


@dataclass(frozen=True)
class FoldPlan:
    """Which training-split frames fold ``fold`` of ``k`` trains on.

    indices: (M,) int64 rows of the training store; trained_subjects: the subjects among them (sorted);
    all_subjects: the store's subjects in store order (they define the fold assignment).
    """

    stage: str
    fold: int
    k: int
    indices: np.ndarray
    trained_subjects: list[str]
    all_subjects: list[str]


def plan_fold(stage: str, store: DatasetStore, k: int, fold: int) -> FoldPlan:
    """The frames of ``store`` (a training split) that fold ``fold``'s model of ``stage`` trains on."""
    assignment = assign_folds(store.subjects, k)
    if not 0 <= fold < k:
        raise ValueError(f"fold {fold} is outside 0..{k - 1}")
    indices = np.flatnonzero(training_mask(store.subject_names(), assignment, fold))
    trained = sorted(s for s, f in assignment.items() if f != fold)
    log.info("%s fold %d/%d: training on %d frames of %s", stage, fold, k, len(indices), ", ".join(trained))
    return FoldPlan(stage, fold, k, indices, trained, list(store.subjects))


def holdout_rows(plan: FoldPlan, store: DatasetStore, fraction: float, seed: int) -> np.ndarray:
    """Sorted rows of ``plan.indices`` (0..M-1) held out for validation: ``round(fraction x poses)`` poses
    (at least 1, at most all but 1) drawn from a stream of (seed, stage, fold), with every camera view of a
    chosen pose (same subject, action, subaction, frame_index)."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must lie in (0, 1), got {fraction}")
    rows = plan.indices
    keys = np.stack([store.subject[rows], store.action[rows], store.subaction[rows], store.frame_index[rows]], 1)
    poses, pose_of_row = np.unique(keys, axis=0, return_inverse=True)
    if len(poses) < 2:
        raise ValueError(f"{store.path}: fold {plan.fold} has {len(poses)} pose(s); validation needs at least 2")
    count = min(max(1, round(fraction * len(poses))), len(poses) - 1)
    chosen = stream(seed, plan.stage, "fold", plan.fold, "validation").permutation(len(poses))[:count]
    held = np.flatnonzero(np.isin(pose_of_row.ravel(), chosen))
    log.info("%s fold %d: %d of %d poses (%d frames) held out for validation", plan.stage, plan.fold, count,
             len(poses), len(held))  # fmt: skip
    return held


def train_fold_model(
    plan: FoldPlan,
    build_model: Callable[[dict], torch.nn.Module],
    settings: dict,
    seed: int,
    make_batch: Callable,
    loss_fn: Callable,
    model_path: str | Path,
    checkpoint_path: str | Path,
    after_epoch: Callable[[int], None] | None = None,
    extras: dict[str, Any] | None = None,
    *,
    validation_rows: np.ndarray | None = None,
    make_eval_batch: Callable | None = None,
    curve_path: str | Path | None = None,
    after_training: Callable[[torch.nn.Module], dict[str, Any]] | None = None,
    provenance: dict[str, Any] | None = None,
) -> torch.nn.Module:
    """Build the stage's network from ``settings["model"]`` (after seeding torch, so its initial weights
    are the seed's) and train it on ``plan``'s frames with ``settings["training"]`` (``epochs`` or
    ``max_epochs``, ``patience`` (default 0), batch_size, learning_rate, weight_decay); write the model file.

    make_batch(rows, rng, device) -> (inputs, targets): ``rows`` index ``plan.indices`` (0..M-1);
    loss_fn(model(inputs), targets) -> scalar. The checkpoint resumes only under the same settings,
    seed, fold, subjects and ``provenance`` (what the job was made from: its inputs' content digests and
    its code digest, ``patchpose.provenance``; a checkpoint of other inputs is ignored, so a rerun on
    changed data trains from scratch). ``extras`` are stored in the model file (e.g. normalisation statistics).
    validation_rows (from ``holdout_rows``): rows never trained on, scored after every epoch with
    make_eval_batch(rows, device) -> (inputs, targets) (no augmentation); the best epoch's weights are
    kept. curve_path: the learning curve CSV (``CURVE_COLUMNS``) to write. after_training(model) -> dict:
    more extras computed from the trained model (e.g. a calibration on the validation frames).
    """
    seed_torch(seed, plan.stage, "fold", plan.fold)
    model = build_model(settings["model"])
    training = settings["training"]
    epochs = training["max_epochs"] if "max_epochs" in training else training["epochs"]
    spec = TrainSpec(
        epochs, training["batch_size"], training["learning_rate"], training["weight_decay"], seed,
        (plan.stage, "fold", plan.fold), training.get("patience", 0),
    )  # fmt: skip
    config = {"settings": settings, "seed": seed, "fold": plan.fold, "k": plan.k, "subjects": plan.all_subjects,
              "provenance": provenance or {}}  # fmt: skip
    rows, validation = np.arange(len(plan.indices)), None
    if validation_rows is not None:
        if make_eval_batch is None:
            raise ValueError("validation_rows need make_eval_batch")
        held = np.asarray(validation_rows, dtype=np.int64)
        rows = np.setdiff1d(rows, held)
        validation = Validation(len(held), lambda positions, device: make_eval_batch(held[positions], device))
        config["validation_rows"] = held.tolist()

    def train_batch(positions, rng, device):
        return make_batch(rows[positions], rng, device)

    model = train(model, len(rows), train_batch, loss_fn, spec, checkpoint_path, config, select_device(),
                  after_epoch, validation)  # fmt: skip
    history = read_history(checkpoint_path)
    if after_training is not None:
        extras = {**(extras or {}), **after_training(model)}
    payload = {
        "model": {name: tensor.cpu() for name, tensor in model.state_dict().items()},
        "model_settings": settings["model"],
        "stage": plan.stage,
        "fold": plan.fold,
        "k": plan.k,
        "trained_subjects": plan.trained_subjects,
        "all_subjects": plan.all_subjects,
        "history": history,
        "provenance": provenance or {},
        **(extras or {}),
    }
    if curve_path is not None:
        write_learning_curve(curve_path, history)
    save_torch(model_path, payload)
    return model


def write_learning_curve(path: str | Path, history: Sequence[dict]) -> None:
    """The per-epoch records of ``patchpose.training.read_history`` as CSV (``CURVE_COLUMNS``; val_loss
    and best empty without validation)."""

    def cell(value):
        return f"{value:.6g}" if isinstance(value, float) else value

    rows = [{column: cell(record.get(column, "")) for column in CURVE_COLUMNS} for record in history]
    write_csv_rows(path, rows, CURVE_COLUMNS)


def load_fold_models(
    model_paths: Sequence[str | Path],
    split: str,
    frame_subjects: Sequence[str],
    build_model: Callable[[dict], torch.nn.Module],
    device: torch.device,
) -> tuple[np.ndarray, list[torch.nn.Module], list[dict]]:
    """Load the ``k`` fold models (``model_paths[f]`` is fold ``f``'s) to predict a split.

    Returns which fold predicts each frame (N,) int64 (``patchpose.folds.predicting_fold``), the models
    (eval mode, on ``device``) and their payloads. Refuses a model that would predict a subject it saw.
    """
    payloads = [load_torch(path) for path in model_paths]
    for path, payload in zip(model_paths, payloads, strict=True):
        if payload.get("k") != len(model_paths):
            raise ValueError(f"{path}: a model of a {payload.get('k')}-fold run, given {len(model_paths)} fold models")
    which = predicting_fold(split, frame_subjects, assign_folds(payloads[0]["all_subjects"], len(payloads)))
    subjects = np.asarray(frame_subjects)
    models = []
    for fold, (path, payload) in enumerate(zip(model_paths, payloads, strict=True)):
        check_no_leak(path, payload, fold, set(subjects[which == fold]))
        model = build_model(payload["model_settings"])
        model.load_state_dict(payload["model"])
        models.append(model.to(device).eval())
    return which, models, payloads
