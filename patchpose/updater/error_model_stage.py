"""The error-model stage (``baselines.<name>.updater: error_model``): fit on real residuals, plot, and sample the
training split's synthetic initial poses (``patchpose.updater.error_model``). Rules: ``fit_error_model`` and
``sample_error_model_poses`` in ``rules/updater.smk``; outputs under ``results/<dataset>/error_model/<name>/``.

Residuals (pairs of predicted and true poses) come from one of two places:

* the user's **validation file** (``baselines.<name>.validation_file``): any prediction file
  (docs/predictions_format.md; the baseline's ``format``, ``unit``, ``joint_names``), validated as the import
  validates a baseline's file, whose frames are any frames of the dataset's stores (a subset, of either split);
* else the **training splits of other baselines** (``error_model_baselines``; default every lifting and
  integral3d baseline): their k-fold predictions, so errors on subjects the model never saw.

The sampled poses are written in the prediction format as the training split's predictions, so the updater
trains on them exactly as on a baseline's (``train_updater`` reads them as its ``initial`` input).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from patchpose.atomic import atomic_write_bytes
from patchpose.dataset_format import DatasetStore, open_dataset
from patchpose.poses3d.errors import PredictionFileError, preview
from patchpose.poses3d.files import file_format, read_predictions, write_predictions
from patchpose.poses3d.format import check_frame_ids
from patchpose.poses3d.joint_order_check import check_joint_order
from patchpose.poses3d.loading import load_for_store
from patchpose.poses3d.normalise import canonicalise
from patchpose.rng import stream
from patchpose.skeleton import H36M
from patchpose.updater.error_model import (
    MIN_FIT_FRAMES,
    ErrorModel,
    fit_error_model,
    read_error_model,
    residual_statistics,
    sample_poses,
    write_error_model,
)

__all__ = ["validation_pairs", "baseline_pairs", "fit_stage", "plot_fit", "sample_training_poses"]

log = logging.getLogger("patchpose.updater.error_model")


def validation_pairs(
    path: str | os.PathLike,
    stores: Mapping[str, DatasetStore],
    *,
    format: str = "auto",
    unit: str = "auto",
    joint_names=None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(truth (N, 17, 3) mm absolute camera frame, predictions (N, 17, 3) mm root-relative, description) for the
    frames of the validation file ``path``, each looked up in whichever of ``stores`` (by split) holds it.
    ``PredictionFileError`` naming the file for anything the baseline import refuses (structure, joint order,
    unit, ids not canonical or repeated), ids in no store, or fewer than ``MIN_FIT_FRAMES`` frames."""
    raw = read_predictions(path, file_format(path, format))
    canonical, _ = canonicalise(raw, unit=unit, joint_names=joint_names)
    check_frame_ids(path, canonical.frame_ids)
    ids = np.asarray(canonical.frame_ids, dtype=str)
    truth = np.zeros((len(ids), H36M.num_joints, 3))
    found = np.zeros(len(ids), dtype=bool)
    frames = {}
    for split, store in stores.items():
        row_of = {frame: row for row, frame in enumerate(store.frame_ids())}
        rows = np.array([row_of.get(frame, -1) for frame in ids.tolist()], dtype=np.int64)
        inside = rows >= 0
        truth[inside] = store.joints_3d[rows[inside]]
        found |= inside
        frames[split] = int(inside.sum())
    if not found.all():
        where = ", ".join(str(store.path) for store in stores.values())
        raise PredictionFileError(
            path, f"{int((~found).sum())} frame ids are not in the dataset ({where}): {preview(ids[~found])}"
        )
    if len(ids) < MIN_FIT_FRAMES:
        raise PredictionFileError(
            path, f"holds {len(ids)} frames; an error model is fitted on at least {MIN_FIT_FRAMES} validation frames"
        )
    check_joint_order(path, canonical.poses_3d, truth - truth[:, :1])
    if frames.get("test"):
        log.warning(
            "%s: %d of its frames are test-split frames; the error model sees their errors", path, frames["test"]
        )
    return truth, canonical.poses_3d, {"source": "validation_file", "file": os.fspath(path), "frames": frames}


def baseline_pairs(
    predictions: Mapping[str, str | os.PathLike], store: DatasetStore
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(truth, predictions, description) of every baseline's complete ``store`` split (``predictions``: name ->
    prediction file), the truth repeated once per baseline. ``PredictionFileError`` naming a file that does not
    cover the split."""
    if not predictions:
        raise ValueError("an error model fitted on baselines needs at least one baseline's predictions")
    poses = [load_for_store(path, store) for path in predictions.values()]
    truth = np.concatenate([np.asarray(store.joints_3d, dtype=np.float64)] * len(poses))
    description = {
        "source": "baselines",
        "baselines": {name: os.fspath(path) for name, path in predictions.items()},
        "frames": {store.split: int(truth.shape[0])},
    }
    return truth, np.concatenate(poses), description


def _histogram(axes, observed, sampled, title: str, unit: str) -> None:
    values = np.concatenate([observed.ravel(), sampled.ravel()])
    low, high = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
    bins = np.linspace(low, high if high > low else low + 1, 41)
    axes.hist(observed.ravel(), bins=bins, density=True, alpha=0.5, label="fitted on (real)")
    axes.hist(sampled.ravel(), bins=bins, density=True, alpha=0.5, label="sampled (model)")
    axes.set_title(title, fontsize=9)
    axes.set_xlabel(unit, fontsize=8)
    axes.tick_params(labelsize=7)


def _flip_rate(statistics: dict) -> np.ndarray:
    defined = statistics["depth_defined"]
    return (statistics["depth_flipped"] & defined).sum(axis=0) / np.maximum(defined.sum(axis=0), 1)


def plot_fit(observed: dict, sampled: dict, model: ErrorModel, title: str) -> bytes:
    """PNG bytes: histograms of the residual statistics (``residual_statistics``) of the pairs fitted on and of
    poses sampled from the fitted model on the same truth, the per-limb depth-flip rates, and the fitted
    per-limb orientation noise."""
    figure = Figure(figsize=(15, 8.5), dpi=80)
    FigureCanvasAgg(figure)
    grid = figure.subplots(2, 3)
    _histogram(grid[0, 0], observed["mpjpe_mm"], sampled["mpjpe_mm"], "MPJPE per frame", "mm")
    _histogram(grid[0, 1], observed["angle_deg"], sampled["angle_deg"], "limb direction error (all limbs)", "deg")
    _histogram(grid[0, 2], observed["length_residual_mm"], sampled["length_residual_mm"],
               "bone length residual, scale removed", "mm")  # fmt: skip
    _histogram(grid[1, 0], observed["log_scale"], sampled["log_scale"], "log global scale (bone length ratio)", "")
    grid[0, 0].legend(fontsize=8)
    limbs = np.arange(H36M.num_limbs)
    labels = [name.split("->")[1] for name in H36M.limb_names]
    for axes, series, heading in (
        (grid[1, 1], ((_flip_rate(observed), "fitted on (real)"), (_flip_rate(sampled), "sampled (model)")),
         "depth sign flipped (limbs with |d.ray| > 0.3)"),
        (grid[1, 2], ((np.degrees(model.depth_sigma_rad), "depth sigma"),
                      (np.degrees(model.image_sigma_rad), "image sigma")), "fitted orientation noise, deg"),
    ):  # fmt: skip
        for offset, (values, label) in zip((-0.2, 0.2), series, strict=True):
            axes.bar(limbs + offset, values, width=0.4, label=label)
        axes.set_xticks(limbs, labels, rotation=70, fontsize=7)
        axes.set_title(heading, fontsize=9)
        axes.set_ylim(top=axes.get_ylim()[1] * 1.25)  # room for the legend above the bars
        axes.legend(fontsize=8, ncols=2)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def fit_stage(
    *,
    name: str,
    stores: Mapping[str, str | os.PathLike],
    params_path: str | os.PathLike,
    plot_path: str | os.PathLike,
    seed: int,
    validation_file: str | os.PathLike | None = None,
    validation_settings: Mapping | None = None,
    baseline_predictions: Mapping[str, str | os.PathLike] | None = None,
) -> ErrorModel:
    """Fit baseline ``name``'s error model on the validation file (with ``validation_settings``: ``format``,
    ``unit``, ``joint_names``) or, without one, on ``baseline_predictions`` of the training split; write the
    parameters (JSON, with what they were fitted on) and the plot (PNG; the sampled side seeded by ``seed``).
    ``stores``: the dataset's store paths by split (the training split at least)."""
    opened = {split: open_dataset(path) for split, path in stores.items()}
    if validation_file is not None:
        truth, predicted, fitted_on = validation_pairs(validation_file, opened, **dict(validation_settings or {}))
    else:
        truth, predicted, fitted_on = baseline_pairs(baseline_predictions or {}, opened["train"])
    model = fit_error_model(truth, predicted)
    sampled = sample_poses(model, truth, stream(seed, "error_model", name, "plot"))
    figure = plot_fit(
        residual_statistics(truth, predicted),
        residual_statistics(truth, sampled),
        model,
        f"{name}: error model fitted on {fitted_on['source'].replace('_', ' ')} ({len(truth)} frames)",
    )
    write_error_model(params_path, model, {**fitted_on, "seed": seed})
    atomic_write_bytes(plot_path, figure)
    log.info(
        "%s: error model fitted on %d frames (%s): scale %.3f x/÷ %.3f, flip probability %.3f, depth sigma %.1f deg, "
        "image sigma %.1f deg, jitter %.1f mm (means over limbs/joints)",
        name, len(truth), fitted_on["source"], np.exp(model.log_scale_mean), np.exp(model.log_scale_std),
        model.flip_probability.mean(), np.degrees(model.depth_sigma_rad.mean()),
        np.degrees(model.image_sigma_rad.mean()), model.jitter_mm[1:].mean(),
    )  # fmt: skip
    return model


def sample_training_poses(
    *, name: str, params: str | os.PathLike, dataset: str | os.PathLike, output: str | os.PathLike, seed: int
) -> np.ndarray:
    """The training split's synthetic initial poses for baseline ``name``: the store ``dataset``'s ground truth
    perturbed by the error model ``params`` (seeded by ``seed`` and ``name``), written to ``output`` in the
    prediction format (the store's row order). Returns (N, 17, 3) mm root-relative."""
    model = read_error_model(params)
    store = open_dataset(dataset)
    if store.split != "train":
        raise ValueError(f"{dataset}: an error model samples the training split's poses, got a {store.split!r} store")
    poses = sample_poses(model, store.joints_3d, stream(seed, "error_model", name, "train"))
    write_predictions(output, poses, store.frame_ids(), split="train", method=f"{name} (error model)")
    truth = np.asarray(store.joints_3d, dtype=np.float64)
    error = np.linalg.norm(poses - (truth - truth[:, :1]), axis=-1).mean()
    log.info("%s: %d training poses sampled from %s (MPJPE %.1f mm against the truth)", name, len(poses), params, error)
    return poses
