"""2D keypoint metrics and contact sheet: mean / median joint error (crop px), PCK, and the trivial
baseline (the training split's mean 2D pose placed in every crop)."""

from __future__ import annotations

import cv2
import numpy as np

from patchpose.csv_rows import write_csv_rows
from patchpose.visualize import annotate, draw_skeleton, sheet_indices, tile, write_png

__all__ = ["joint_errors", "summarise", "metrics_rows", "contact_sheet"]

COLUMNS = ("split", "method", "frames", "mean_error_px", "median_error_px", "pck", "pck_threshold_px")


def joint_errors(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, 17) Euclidean error per joint, px. predicted, truth: (N, 17, 2) crop px."""
    return np.linalg.norm(np.asarray(predicted, np.float64) - np.asarray(truth, np.float64), axis=-1)


def summarise(predicted: np.ndarray, truth: np.ndarray, threshold_px: float) -> dict[str, float]:
    """Mean and median joint error (px) and PCK: the fraction of joints within ``threshold_px``."""
    errors = joint_errors(predicted, truth)
    return {
        "frames": len(errors),
        "mean_error_px": float(errors.mean()),
        "median_error_px": float(np.median(errors)),
        "pck": float((errors <= threshold_px).mean()),
        "pck_threshold_px": float(threshold_px),
    }


def metrics_rows(predictions: dict, truths: dict, mean_pose: np.ndarray, threshold_px: float) -> list[dict]:
    """Rows per split: the network (train split: k-fold predictions) and the mean-pose baseline."""
    rows = []
    for split in predictions:
        truth = truths[split]
        rows.append({"split": split, "method": "network", **summarise(predictions[split], truth, threshold_px)})
        baseline = np.broadcast_to(mean_pose, truth.shape)
        rows.append({"split": split, "method": "mean_pose_baseline", **summarise(baseline, truth, threshold_px)})
    return rows


def contact_sheet(frames: np.ndarray, truth: np.ndarray, predicted: np.ndarray, scale: int = 2) -> np.ndarray:
    """Pairs of tiles (ground truth | prediction with its mean error) per frame, 4 pairs per row."""
    tiles = []
    for image, gt, pred in zip(frames, truth, predicted, strict=True):
        big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        error = joint_errors(pred[None], gt[None]).mean()
        tiles.append(annotate(draw_skeleton(big, (gt + 0.5) * scale - 0.5), "truth"))
        tiles.append(annotate(draw_skeleton(big, (pred + 0.5) * scale - 0.5), f"pred {error:.1f}px"))
    return tile(tiles, columns=8)


def evaluate(stores: dict, prediction_paths: dict, pck_threshold: float, sheet_frames: int, metrics_path, sheets):
    """Write the metrics CSV (rows per split and method) and one contact sheet per split.

    stores / prediction_paths / sheets: per split ("train", "test") dataset store path, ``.npz``
    prediction path and PNG path. pck_threshold: PCK threshold as a fraction of the crop side.
    """
    from patchpose.dataset_format import open_dataset
    from patchpose.keypoints2d.stage import read_predictions

    opened = {split: open_dataset(path) for split, path in stores.items()}
    predictions = {split: read_predictions(prediction_paths[split], opened[split]) for split in opened}
    truths = {split: opened[split].joints_2d for split in opened}
    mean_pose = opened["train"].joints_2d.mean(axis=0)
    threshold_px = pck_threshold * opened["test"].crop_side()
    rows = metrics_rows(predictions, truths, mean_pose, threshold_px)
    write_csv_rows(metrics_path, rows, COLUMNS)
    for split, store in opened.items():
        chosen = sheet_indices(store.num_frames, sheet_frames)
        write_png(
            sheets[split], contact_sheet(store.read_frames(chosen), truths[split][chosen], predictions[split][chosen])
        )
    return rows
