"""One ``fit()`` for every trained thing: seed, network, ``TrainSpec`` from the settings block, validation
rows held out by pose, the training loop (``patchpose.training.train``), the learning curve and the model file.

A trained stage supplies its data (``make_batch``, ``make_eval_batch``), loss and network builder. The
k-fold stages (keypoints2d, segmentation, the in-pipeline baselines) reach ``fit`` through
``patchpose.fold_models.train_fold_model``, which adds the fold plan; a fold-free stage (the updater:
the whole training split, poses of it held out) calls ``fit`` directly.

The settings block is ``{"model": ..., "training": ...}`` (more keys are allowed and are part of what a
checkpoint must match): ``training`` holds ``max_epochs`` (or ``epochs``), ``batch_size``,
``learning_rate``, ``weight_decay`` and optionally ``patience``, ``schedule``, ``plateau_factor`` and
``plateau_patience`` (``patchpose.training.TrainSpec``; absent keys take its defaults).

Model files (``save_torch``) hold ``{"model": state_dict (CPU), "model_settings", <describe>, "history",
"provenance", <extras>}`` in that order; ``describe`` is the caller's (the k-fold wrapper's: stage, fold,
k, trained_subjects, all_subjects).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from patchpose.csv_rows import write_csv_rows
from patchpose.dataset_format import DatasetStore
from patchpose.distributed import SINGLE, Ranks, rank_device
from patchpose.rng import stream
from patchpose.training import TrainSpec, Validation, read_history, save_torch, seed_torch, select_device, train

__all__ = ["train_spec", "holdout_poses", "fit", "write_learning_curve", "CURVE_COLUMNS", "MODEL_FILE_KEYS"]

CURVE_COLUMNS = ("epoch", "train_loss", "val_loss", "lr", "best")
MODEL_FILE_KEYS = ("model", "model_settings", "history", "provenance")  # what ``fit`` itself writes

log = logging.getLogger("patchpose.fitting")

_OPTIONAL_SPEC_KEYS = ("patience", "schedule", "plateau_factor", "plateau_patience")


def train_spec(training: dict, seed: int, names: tuple[str | int, ...]) -> TrainSpec:
    """The ``TrainSpec`` of a settings block's ``training`` dict (``max_epochs`` or ``epochs``, batch_size,
    learning_rate, weight_decay; patience, schedule, plateau_factor, plateau_patience when present, else
    TrainSpec's defaults); ``names`` name the RNG streams of its batches."""
    epochs = training["max_epochs"] if "max_epochs" in training else training["epochs"]
    optional = {key: training[key] for key in _OPTIONAL_SPEC_KEYS if key in training}
    return TrainSpec(
        epochs, training["batch_size"], training["learning_rate"], training["weight_decay"], seed, names, **optional
    )


def holdout_poses(
    store: DatasetStore, rows: np.ndarray, fraction: float, seed: int, names: tuple[str | int, ...]
) -> np.ndarray:
    """Sorted positions in ``rows`` (store rows, (M,) int) held out for validation: ``round(fraction x poses)``
    poses (at least 1, at most all but 1) drawn from the stream (seed, *names, "validation"), with every
    camera view of a chosen pose (same subject, action, subaction, frame_index) among ``rows``.

    ``rows`` may be a fold's frames (``patchpose.fold_models.holdout_rows``) or a whole split
    (``np.arange(store.num_frames)``). Returns (V,) int64, values in 0..M-1.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must lie in (0, 1), got {fraction}")
    label = " ".join(str(name) for name in names)
    rows = np.asarray(rows)
    keys = np.stack([store.subject[rows], store.action[rows], store.subaction[rows], store.frame_index[rows]], 1)
    poses, pose_of_row = np.unique(keys, axis=0, return_inverse=True)
    if len(poses) < 2:
        raise ValueError(f"{store.path}: {label} has {len(poses)} pose(s); validation needs at least 2")
    count = min(max(1, round(fraction * len(poses))), len(poses) - 1)
    chosen = stream(seed, *names, "validation").permutation(len(poses))[:count]
    held = np.flatnonzero(np.isin(pose_of_row.ravel(), chosen))
    log.info("%s: %d of %d poses (%d frames) held out for validation", label, count, len(poses), len(held))
    return held


def fit(
    names: tuple[str | int, ...],
    build_model: Callable[[dict], torch.nn.Module],
    settings: dict,
    seed: int,
    num_rows: int,
    make_batch: Callable,
    loss_fn: Callable,
    model_path: str | Path,
    checkpoint_path: str | Path,
    *,
    validation_rows: np.ndarray | None = None,
    make_eval_batch: Callable | None = None,
    curve_path: str | Path | None = None,
    extras: dict[str, Any] | None = None,
    after_training: Callable[[torch.nn.Module], dict[str, Any]] | None = None,
    after_epoch: Callable[[int], None] | None = None,
    provenance: dict[str, Any] | None = None,
    identity: dict[str, Any] | None = None,
    describe: dict[str, Any] | None = None,
    ranks: Ranks = SINGLE,
    validation_batch_size: int = 256,
) -> torch.nn.Module:
    """Seed torch from (seed, *names), build the network from ``settings["model"]`` (so its initial weights
    are the seed's), train it on rows ``0..num_rows-1`` with ``settings["training"]`` (``train_spec``) and
    write the model file ``model_path``. Returns the trained model (eval mode; the best epoch's weights
    with validation).

    names: the run's RNG stream names, e.g. ("keypoints2d", "fold", 0) or ("updater", "lifting").
    make_batch(rows, rng, device) -> (inputs, targets) with ``rows`` in 0..num_rows-1 (augmented);
    loss_fn(model(inputs), targets) -> scalar. validation_rows (e.g. from ``holdout_poses``): distinct rows
    never trained on, scored after every epoch with make_eval_batch(rows, device) -> (inputs, targets) (no
    augmentation), in batches of ``validation_batch_size`` (memory-bound inputs, e.g. the updater's patches,
    score fastest in training-sized batches). curve_path: the learning curve CSV (``CURVE_COLUMNS``) to write.
    extras: stored in the model file (e.g. normalisation statistics); after_training(model) -> dict: more
    extras computed from the trained model (e.g. a calibration on the validation rows). after_epoch(epoch):
    see ``training.train``.

    The checkpoint resumes only under the same settings, seed, ``identity`` (what else the run depends
    on, e.g. the fold, k and subjects), validation rows and ``provenance`` (its inputs' content digests
    and its code digest, ``patchpose.provenance``; a checkpoint of other inputs is ignored, so a rerun on
    changed data trains from scratch). ``describe``: entries of the model file after ``model_settings``.

    ranks: this process's place among several training together (``patchpose.distributed.launch``; each on
    its own GPU where there are enough, else the CPU): all build the same initial network, then each draws its
    own dropout stream; only rank 0 runs ``after_training`` and writes the curve and the model file.
    """
    _check_entries(model_path, "describe", describe)
    _check_entries(model_path, "extras", extras)
    spec = train_spec(settings["training"], seed, names)
    config = {"settings": settings, "seed": seed, **(identity or {}), "provenance": provenance or {}}
    rows, validation = np.arange(num_rows), None
    if validation_rows is not None:
        if make_eval_batch is None:
            raise ValueError("validation_rows need make_eval_batch")
        held = np.asarray(validation_rows, dtype=np.int64)
        if len(np.unique(held)) != len(held) or held.min(initial=0) < 0 or held.max(initial=0) >= num_rows:
            raise ValueError(f"validation rows must be distinct rows of 0..{num_rows - 1}")
        rows = np.setdiff1d(rows, held)
        validation = Validation(
            len(held), lambda positions, device: make_eval_batch(held[positions], device), validation_batch_size
        )
        config["validation_rows"] = held.tolist()
    seed_torch(seed, *names)
    model = build_model(settings["model"])
    if ranks.parallel:
        seed_torch(seed, *names, "rank", ranks.rank)

    def train_batch(positions, rng, device):
        return make_batch(rows[positions], rng, device)

    device = rank_device(ranks) if ranks.parallel else select_device()
    model = train(model, len(rows), train_batch, loss_fn, spec, checkpoint_path, config, device, after_epoch,
                  validation, ranks)  # fmt: skip
    if not ranks.writer:
        return model
    history = read_history(checkpoint_path)
    if after_training is not None:
        computed = after_training(model)
        _check_entries(model_path, "after_training", computed)
        extras = {**(extras or {}), **computed}
    payload = {
        "model": {name: tensor.cpu() for name, tensor in model.state_dict().items()},
        "model_settings": settings["model"],
        **(describe or {}),
        "history": history,
        "provenance": provenance or {},
        **(extras or {}),
    }
    if curve_path is not None:
        write_learning_curve(curve_path, history)
    save_torch(model_path, payload)
    return model


def _check_entries(model_path: str | Path, name: str, entries: dict | None) -> None:
    clash = sorted(set(entries or {}) & set(MODEL_FILE_KEYS))
    if clash:
        raise ValueError(f"{model_path}: {name} would overwrite the model file's own {clash}")


def write_learning_curve(path: str | Path, history: Sequence[dict]) -> None:
    """The per-epoch records of ``patchpose.training.read_history`` as CSV (``CURVE_COLUMNS``; val_loss
    and best empty without validation)."""

    def cell(value):
        return f"{value:.6g}" if isinstance(value, float) else value

    rows = [{column: cell(record.get(column, "")) for column in CURVE_COLUMNS} for record in history]
    write_csv_rows(path, rows, CURVE_COLUMNS)
