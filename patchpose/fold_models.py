"""k-fold models of a stage: train fold ``f`` on the other folds' subjects, predict a split with the
model that never saw each frame's subject.

Shared by every stage that predicts the training split for later stages (keypoints2d, segmentation,
the in-pipeline baselines). A stage supplies its network, how to build a batch and its loss; this
module does the fold bookkeeping and wraps ``patchpose.fitting.fit`` (seed, training spec, learning
curve, model file) with it.

Model files (``save_torch``) hold ``{"model": state_dict (CPU), "model_settings", "stage", "fold",
"k", "trained_subjects", "all_subjects", "history", "provenance"}`` plus any stage extras.

Validation (optional): ``holdout_rows`` sets aside a seeded fraction of a fold's training *poses* (all
camera views of one pose together, so no view of a held-out pose is trained on;
``patchpose.fitting.holdout_poses``); ``train_fold_model`` then scores them after every epoch, keeps the
best epoch's weights, stops on a plateau (``training.patience``) and writes the learning curve.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from patchpose.dataset_format import DatasetStore
from patchpose.fitting import fit, holdout_poses
from patchpose.folds import assign_folds, check_no_leak, predicting_fold, training_mask
from patchpose.training import load_torch

__all__ = [
    "FoldPlan",
    "plan_fold",
    "holdout_rows",
    "train_fold_model",
    "load_fold_models",
]

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
    chosen pose (``patchpose.fitting.holdout_poses`` over the fold's frames)."""
    return holdout_poses(store, plan.indices, fraction, seed, (plan.stage, "fold", plan.fold))


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
    """Train fold ``plan.fold``'s network on ``plan``'s frames (``patchpose.fitting.fit`` with the RNG
    streams (stage, "fold", fold)); write the model file with the fold's stage, fold, k and subjects.

    make_batch(rows, rng, device) / make_eval_batch(rows, device) -> (inputs, targets) with ``rows``
    indexing ``plan.indices`` (0..M-1); validation_rows from ``holdout_rows``. The checkpoint resumes only
    under the same settings, seed, fold, k, subjects, validation rows and ``provenance``. The other
    arguments are ``fit``'s.
    """
    return fit(
        (plan.stage, "fold", plan.fold), build_model, settings, seed, len(plan.indices), make_batch, loss_fn,
        model_path, checkpoint_path, validation_rows=validation_rows, make_eval_batch=make_eval_batch,
        curve_path=curve_path, extras=extras, after_training=after_training, after_epoch=after_epoch,
        provenance=provenance, identity={"fold": plan.fold, "k": plan.k, "subjects": plan.all_subjects},
        describe={"stage": plan.stage, "fold": plan.fold, "k": plan.k, "trained_subjects": plan.trained_subjects,
                  "all_subjects": plan.all_subjects},
    )  # fmt: skip


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
