"""A trained baseline's linear correction, fitted on its own out-of-fold training predictions.

Every frame of the training split is predicted by the fold model that never saw its subject
(``patchpose.folds``), so the training split's predictions are as wrong as the test split's: they show what
the baseline gets wrong, without its test frames. Part of that can be read off the prediction alone: a network
trained for a few epochs (``integral3d``) predicts depths drawn toward the root and limbs bent toward its
training mean, the same way in every frame. A linear map of the 48 root-relative coordinates fitted on those
predictions removes that part. Without it the updaters' gains would mix two things: the patches' information,
and a bias that a refiner seeing the pose alone (the pose-only control) corrects as well. The paper refines
baselines trained to convergence, which have no such bias.

**The map.** Each pose is turned into its crop's ray frame (``patchpose.baselines.geometry``: the camera frame
rotated so that the ray through the crop centre is +z), so that one map serves every viewpoint. Its 16
non-root joints (48 numbers, mm) are mapped by ridge regression with an intercept onto the ground truth's. The
ridge is added to the diagonal of the predictions' covariance, in mm².

**Cross-fitting, the way the fold models predict.** The training frames of fold ``f`` are corrected by the map
fitted on the training frames of the other folds. Test frame ``i`` is predicted by fold ``i mod k``'s model,
and is corrected by the map that fold's training frames would get (fitted on the frames outside fold
``i mod k``). The map of a frame's own subject never enters its correction. The test split's ground truth is
never read.

**Which ridge, and whether at all** (``kind``):

* ``"none"``: the network's poses, unchanged.
* ``"linear"``: corrected with the ridge (of ``ridges``) whose out-of-fold correction has the lowest training
  MPJPE.
* ``"auto"``: as ``linear``, but only when that MPJPE is lower than the uncorrected one. The choice is made on
  the training split's out-of-fold predictions, the validation a baseline has, never on the test split.

The report (``correction.json``) gives the out-of-fold MPJPE before and with every ridge, per fold and overall,
and what was chosen.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

import numpy as np

from patchpose.atomic import atomic_write_text
from patchpose.baselines.geometry import from_ray_frame, ray_rotations, root_relative, to_ray_frame
from patchpose.dataset_format import DatasetStore, open_dataset
from patchpose.folds import assign_folds, predicting_fold
from patchpose.metrics import mpjpe
from patchpose.poses3d.files import write_predictions
from patchpose.poses3d.loading import load_for_store

__all__ = [
    "KINDS",
    "LinearMap",
    "fit_linear_map",
    "fold_maps",
    "apply_by_fold",
    "cross_fitted",
    "choose_correction",
    "correct_baseline",
]

KINDS = ("none", "linear", "auto")

log = logging.getLogger("patchpose.baselines")


@dataclass(frozen=True)
class LinearMap:
    """Root-relative poses (N, 17, 3) -> corrected poses, affine in the 48 non-root coordinates."""

    mean_in: np.ndarray  # (48,)
    weights: np.ndarray  # (48, 48)
    mean_out: np.ndarray  # (48,)

    def __call__(self, poses: np.ndarray) -> np.ndarray:
        poses = np.asarray(poses, dtype=np.float64)
        flat = poses[:, 1:].reshape(len(poses), -1)
        corrected = poses.copy()
        corrected[:, 1:] = ((flat - self.mean_in) @ self.weights + self.mean_out).reshape(len(poses), -1, 3)
        return corrected


def fit_linear_map(predicted: np.ndarray, truth: np.ndarray, ridge: float) -> LinearMap:
    """Ridge regression with an intercept of ``truth``'s 48 non-root coordinates on ``predicted``'s.

    predicted, truth: (N, 17, 3) root-relative poses, mm, N >= 2. ridge >= 0, mm², added to the diagonal of
    the predictions' covariance (0: least squares; the pseudo-inverse where the covariance is singular).
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if predicted.shape != truth.shape or predicted.ndim != 3 or len(predicted) < 2:
        raise ValueError(f"predicted {predicted.shape} and truth {truth.shape}: need the same (N >= 2, J, 3)")
    if not ridge >= 0:
        raise ValueError(f"ridge {ridge!r}: must be >= 0")
    x = predicted[:, 1:].reshape(len(predicted), -1)
    y = truth[:, 1:].reshape(len(truth), -1)
    mean_in, mean_out = x.mean(axis=0), y.mean(axis=0)
    centred = x - mean_in
    covariance = centred.T @ centred / len(x) + ridge * np.eye(x.shape[1])
    cross = centred.T @ (y - mean_out) / len(x)
    weights = np.linalg.lstsq(covariance, cross, rcond=None)[0]
    return LinearMap(mean_in, weights, mean_out)


def fold_maps(predicted: np.ndarray, truth: np.ndarray, folds: np.ndarray, k: int, ridge: float) -> list[LinearMap]:
    """Map ``f`` (of ``k``): fitted on the frames outside fold ``f``, the map fold ``f``'s frames are corrected by."""
    return [fit_linear_map(predicted[folds != fold], truth[folds != fold], ridge) for fold in range(k)]


def apply_by_fold(maps: list[LinearMap], poses: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """(N, 17, 3): each frame corrected by the map of its fold (``folds``: (N,) in 0..len(maps)-1)."""
    corrected = np.asarray(poses, dtype=np.float64).copy()
    for fold, mapped in enumerate(maps):
        inside = folds == fold
        if inside.any():
            corrected[inside] = mapped(corrected[inside])
    return corrected


def cross_fitted(predicted: np.ndarray, truth: np.ndarray, folds: np.ndarray, k: int, ridge: float) -> np.ndarray:
    """(N, 17, 3): each fold's frames corrected by the map fitted on the frames of the other folds."""
    return apply_by_fold(fold_maps(predicted, truth, folds, k, ridge), predicted, folds)


def choose_correction(
    predicted: np.ndarray, truth: np.ndarray, folds: np.ndarray, k: int, kind: str, ridges
) -> tuple[list[LinearMap] | None, dict]:
    """The fold maps (``fold_maps``) of the chosen ridge (None: leave the poses as they are) and the report of
    the choice (``report["ridge_mm2"]``, ``report["applied"]``, the out-of-fold MPJPE of every ridge).

    predicted, truth: the training split's out-of-fold predictions and ground truth, (N, 17, 3) root-relative,
    in one frame per pose (the ray frame); folds: (N,) each frame's fold, 0..k-1.
    """
    if kind not in KINDS:
        raise ValueError(f"correction kind {kind!r} is not one of {', '.join(KINDS)}")
    if len(np.unique(folds)) < 2:
        raise ValueError("the training frames lie in fewer than 2 folds: nothing to cross-fit on")
    ridges = [float(r) for r in ridges]
    if kind != "none" and not ridges:
        raise ValueError(f"correction kind {kind!r} needs at least one ridge")

    def by_fold(poses):
        return {str(f): mpjpe(poses[folds == f], truth[folds == f]) for f in range(k) if (folds == f).any()}

    scores = {"uncorrected": mpjpe(predicted, truth)}
    report = {
        "kind": kind,
        "frames": int(len(predicted)),
        "out_of_fold_mpjpe_mm": scores,
        "out_of_fold_mpjpe_mm_by_fold": {"uncorrected": by_fold(predicted)},
    }
    best, best_maps = None, None
    for ridge in ridges if kind != "none" else []:
        maps = fold_maps(predicted, truth, folds, k, ridge)
        corrected = apply_by_fold(maps, predicted, folds)
        scores[f"ridge {ridge:g}"] = mpjpe(corrected, truth)
        report["out_of_fold_mpjpe_mm_by_fold"][f"ridge {ridge:g}"] = by_fold(corrected)
        if best is None or scores[f"ridge {ridge:g}"] < scores[f"ridge {best:g}"]:
            best, best_maps = ridge, maps
    applied = best is not None and (kind == "linear" or scores[f"ridge {best:g}"] < scores["uncorrected"])
    report.update(ridge_mm2=best if applied else None, applied=applied)
    return (best_maps if applied else None), report


def _ray_poses(path: str | os.PathLike, store: DatasetStore) -> tuple[np.ndarray, np.ndarray]:
    rotations = ray_rotations(store)
    return to_ray_frame(load_for_store(path, store), rotations), rotations


def correct_baseline(
    train_store_path: str | os.PathLike,
    test_store_path: str | os.PathLike,
    network_train: str | os.PathLike,
    network_test: str | os.PathLike,
    k: int,
    kind: str,
    ridges,
    output_train: str | os.PathLike,
    output_test: str | os.PathLike,
    output_report: str | os.PathLike,
    method: str,
) -> dict:
    """Write a trained baseline's corrected predictions of both splits and ``correction.json`` (see the module
    docstring). ``network_*``: the fold models' predictions. Returns the report."""
    train, test = open_dataset(train_store_path), open_dataset(test_store_path)
    for store, split in ((train, "train"), (test, "test")):
        if store.split != split:
            raise ValueError(f"{store.path}: a {store.split!r}-split store, expected the {split!r} split")
    assignment = assign_folds(train.subjects, k)
    train_folds = predicting_fold("train", train.subject_names().tolist(), assignment)
    test_folds = predicting_fold("test", test.subject_names().tolist(), assignment)
    predicted, train_rotations = _ray_poses(network_train, train)
    truth = to_ray_frame(root_relative(train.joints_3d), train_rotations)
    maps, report = choose_correction(predicted, truth, train_folds, k, kind, ridges)
    test_predicted, test_rotations = _ray_poses(network_test, test)
    corrected, test_corrected = predicted, test_predicted
    if maps is not None:
        corrected = apply_by_fold(maps, predicted, train_folds)
        test_corrected = apply_by_fold(maps, test_predicted, test_folds)
    write_predictions(
        output_train, from_ray_frame(corrected, train_rotations), train.frame_ids(), split="train", method=method
    )
    write_predictions(
        output_test, from_ray_frame(test_corrected, test_rotations), test.frame_ids(), split="test", method=method
    )
    atomic_write_text(output_report, json.dumps(report, indent=2) + "\n")
    scores = report["out_of_fold_mpjpe_mm"]
    log.info(
        "%s: out-of-fold training MPJPE %s; %s",
        method,
        ", ".join(f"{name} {value:.1f} mm" for name, value in scores.items()),
        f"corrected with ridge {report['ridge_mm2']:g} mm²" if report["applied"] else "left uncorrected",
    )
    return report
