"""The ``mean_pose`` baseline: no network; every frame gets the training subjects' mean pose. The reference row
of the tables: a method that cannot beat it has learnt nothing from its input.

**The pose.** The mean of the training frames' root-relative poses (pelvis at the origin, mm, ``H36M`` joint
order), each frame counted once (a subject with more frames weighs more, as in training), taken in one of two
frames (``frame``):

* ``"ray"`` (default): each training pose is first turned into its crop's ray frame
  (``patchpose.baselines.geometry``: the camera frame rotated so that the ray through the crop centre is +z,
  the frame ``lifting`` predicts in), and the mean is turned back into each predicted frame's camera frame with
  that frame's own ray rotation. A crop alone cannot tell how far off the optical axis the person stands; the
  prediction is then "the average person, seen the way this crop sees them".
* ``"camera"``: the mean of the camera-frame poses, the same (17, 3) array put in every frame.

**Folds** (``patchpose.folds``, ``folds.k``; the fold assignment of the trained baselines). Fold ``f``'s mean
is taken over the training frames of the subjects *outside* fold ``f`` (the frames fold ``f``'s network would
train on), and each frame gets the mean of the fold ``predicting_fold`` assigns it, as a trained baseline's
frame gets that fold's network: a training frame the fold holding its subject (so its own subject never
enters its prediction; the training split's residuals are then like the test split's), test frame ``i`` fold
``i mod k``.

Output: ``patchpose.poses3d.write_predictions`` (N, 17, 3) float64, camera frame, root-relative, mm, ``H36M``
order, the store's frame ids in its row order: the format every baseline is evaluated in.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from patchpose.baselines.geometry import from_ray_frame, ray_rotations, root_relative, to_ray_frame
from patchpose.dataset_format import DatasetStore, open_dataset
from patchpose.folds import FoldError, assign_folds, predicting_fold, training_mask
from patchpose.poses3d.files import write_predictions
from patchpose.skeleton import H36M

__all__ = ["FRAMES", "training_poses", "fold_mean_poses", "mean_pose_predictions", "predict_split"]

FRAMES = ("ray", "camera")

log = logging.getLogger("patchpose.baselines")


def _check_frame(frame: str) -> None:
    if frame not in FRAMES:
        raise ValueError(f"mean pose frame {frame!r} is not one of {', '.join(FRAMES)}")


def training_poses(train: DatasetStore, frame: str = "ray") -> np.ndarray:
    """(N, 17, 3) float64 root-relative poses, mm, of every frame of the training store ``train``: in each
    crop's ray frame (``frame="ray"``) or in the camera frame (``"camera"``)."""
    _check_frame(frame)
    poses = root_relative(train.joints_3d)
    return to_ray_frame(poses, ray_rotations(train)) if frame == "ray" else poses


def fold_mean_poses(train: DatasetStore, k: int, frame: str = "ray") -> np.ndarray:
    """(k, 17, 3) float64: row ``f`` is the mean root-relative pose, mm, in ``frame``, of the training frames
    whose subjects lie outside fold ``f`` (``patchpose.folds.assign_folds(train.subjects, k)``).

    Raises ``FoldError`` for a ``k`` the subjects cannot support and ``ValueError`` (naming the store) for a
    fold whose training subjects have no frames.
    """
    if train.split != "train":
        raise ValueError(f"{train.path}: a {train.split!r}-split store; the mean pose is taken over the training split")
    assignment = assign_folds(train.subjects, k)
    poses = training_poses(train, frame)
    subjects = train.subject_names()
    means = np.zeros((k, H36M.num_joints, 3))
    for fold in range(k):
        mask = training_mask(subjects, assignment, fold)
        outside = sorted(s for s, f in assignment.items() if f != fold)
        if not mask.any():
            raise ValueError(f"{train.path}: fold {fold}'s training subjects ({', '.join(outside)}) have no frames")
        means[fold] = poses[mask].mean(axis=0)
        log.info("mean pose of fold %d/%d (%s frame): %d frames of %s", fold, k, frame, mask.sum(), ", ".join(outside))
    return means


def mean_pose_predictions(
    train: DatasetStore, store: DatasetStore, split: str, k: int, frame: str = "ray"
) -> np.ndarray:
    """(N, 17, 3) float64 camera-frame root-relative poses, mm, of every frame of ``store`` (split ``split``):
    the mean pose of the fold ``predicting_fold`` gives each frame (see the module docstring), turned into
    the frame's camera frame with its ray rotation where ``frame="ray"``."""
    if store.split != split:
        raise ValueError(f"{store.path}: a {store.split!r}-split store, expected the {split!r} split")
    means = fold_mean_poses(train, k, frame)
    try:
        which = predicting_fold(split, store.subject_names().tolist(), assign_folds(train.subjects, k))
    except FoldError as error:
        raise FoldError(f"{store.path}: {error}") from None
    poses = means[which]
    return from_ray_frame(poses, ray_rotations(store)) if frame == "ray" else poses


def predict_split(
    train_path: str | os.PathLike,
    store_path: str | os.PathLike,
    split: str,
    k: int,
    frame: str,
    output_path: str | Path,
    method: str = "mean_pose",
) -> np.ndarray:
    """Write the mean-pose predictions of the ``split`` store at ``store_path`` (the training store at
    ``train_path`` gives the means; it may be the same store) to ``output_path`` in the prediction format,
    labelled ``method``. Returns the written (N, 17, 3) float64 poses."""
    train = open_dataset(train_path)
    store = train if Path(store_path).resolve() == Path(train_path).resolve() else open_dataset(store_path)
    poses = mean_pose_predictions(train, store, split, k, frame)
    write_predictions(output_path, poses, store.frame_ids(), split=split, method=method)
    log.info("wrote the mean pose of %d %s frames to %s", len(poses), split, output_path)
    return poses
