"""Segmentation metrics and contact sheet: IoU per part and mean IoU over a split, with two baselines
(every pixel background; the training split's per-pixel most frequent label, the "mean label map")."""

from __future__ import annotations

import cv2
import numpy as np

from patchpose.csv_rows import write_csv_rows
from patchpose.parts import NUM_PARTS, PART_NAMES, encode_labels
from patchpose.visualize import annotate, sheet_indices, tile, write_png

__all__ = ["confusion_counts", "iou_from_counts", "mean_label_map", "contact_sheet"]

COLUMNS = ("split", "method", "frames", "mean_iou", *(f"iou_{name}" for name in PART_NAMES))


def confusion_counts(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(15, 15) int64 pixel counts [truth, predicted] of integer part maps of equal shape."""
    index = truth.astype(np.int64).ravel() * NUM_PARTS + predicted.astype(np.int64).ravel()
    return np.bincount(index, minlength=NUM_PARTS * NUM_PARTS).reshape(NUM_PARTS, NUM_PARTS)


def iou_from_counts(counts: np.ndarray) -> tuple[np.ndarray, float]:
    """IoU per part (NaN for a part absent from both truth and prediction) and their mean (NaNs skipped)."""
    intersection = np.diag(counts).astype(np.float64)
    union = counts.sum(0) + counts.sum(1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, np.nan)
    return iou, float(np.nanmean(iou))


def mean_label_map(labels: np.ndarray) -> np.ndarray:
    """(H, W) most frequent part id per pixel over (N, H, W) labels (ties -> the lower id)."""
    counts = np.stack([(labels == k).sum(axis=0) for k in range(NUM_PARTS)])
    return counts.argmax(axis=0).astype(np.uint8)


def metrics_row(split: str, method: str, frames: int, counts: np.ndarray) -> dict:
    iou, mean = iou_from_counts(counts)
    return {"split": split, "method": method, "frames": frames, "mean_iou": mean,
            **{f"iou_{n}": v for n, v in zip(PART_NAMES, iou, strict=True)}}  # fmt: skip


def contact_sheet(frames: np.ndarray, truth: np.ndarray, encoded: np.ndarray, scale: int = 2) -> np.ndarray:
    """Triples (frame | ground-truth palette map | predicted colour encoding) per frame, 3 triples a row.
    frames (B, H, W, 3) uint8, truth (B, H, W) part ids, encoded (B, 3, H, W) uint8."""
    tiles = []
    for image, labels, colour in zip(frames, truth, encoded, strict=True):

        def big(x):
            return cv2.resize(x, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)

        tiles += [big(image), annotate(big(encode_labels(labels)), "truth"),
                  annotate(big(np.ascontiguousarray(colour.transpose(1, 2, 0))), "pred")]  # fmt: skip
    return tile(tiles, columns=9)


def evaluate(stores: dict, segmentation_paths: dict, sheet_frames: int, metrics_path, sheets) -> list[dict]:
    """Write the metrics CSV (per split: network, all-background and mean-label-map baselines) and one
    contact sheet per split. stores / segmentation_paths / sheets: per split paths."""
    from patchpose.dataset_format import open_dataset
    from patchpose.segmentation.store import open_segmentation

    opened = {split: open_dataset(path) for split, path in stores.items()}
    segmentations = {split: open_segmentation(segmentation_paths[split], opened[split]) for split in opened}
    train = opened["train"]
    prior = mean_label_map(np.concatenate([train.read_part_labels(np.arange(s, min(s + 512, train.num_frames)))
                                           for s in range(0, train.num_frames, 512)]))  # fmt: skip
    rows = []
    for split, store in opened.items():
        counts = {name: np.zeros((NUM_PARTS, NUM_PARTS), np.int64) for name in ("network", "background", "prior")}
        for start in range(0, store.num_frames, 512):
            rows_ = np.arange(start, min(start + 512, store.num_frames))
            truth = store.read_part_labels(rows_)
            counts["network"] += confusion_counts(segmentations[split].read_labels(rows_), truth)
            counts["background"] += confusion_counts(np.zeros_like(truth), truth)
            counts["prior"] += confusion_counts(np.broadcast_to(prior, truth.shape), truth)
        rows.append(metrics_row(split, "network", store.num_frames, counts["network"]))
        rows.append(metrics_row(split, "all_background_baseline", store.num_frames, counts["background"]))
        rows.append(metrics_row(split, "mean_label_map_baseline", store.num_frames, counts["prior"]))
        chosen = sheet_indices(store.num_frames, sheet_frames)
        sheet = contact_sheet(store.read_frames(chosen), store.read_part_labels(chosen),
                              segmentations[split].read_encoded(chosen))  # fmt: skip
        write_png(sheets[split], sheet)
    write_csv_rows(metrics_path, rows, COLUMNS)
    return rows
