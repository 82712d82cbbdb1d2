"""Inputs for the patches stage in tests: a segmentation store made from a dataset's own part labels."""

from __future__ import annotations

from pathlib import Path

from patchpose.segmentation.store import write_ground_truth_segmentation


def write_label_segmentation(path: str | Path, dataset_store) -> Path:
    """A segmentation store whose ``encoded`` is the palette colour of the ground-truth part labels."""
    write_ground_truth_segmentation(path, dataset_store)
    return Path(path)
