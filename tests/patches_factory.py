"""Inputs for the patches stage in tests: a segmentation store made from a dataset's own part labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from patchpose.parts import encode_labels
from patchpose.segmentation.store import write_segmentation


def write_label_segmentation(path: str | Path, dataset_store) -> Path:
    """A segmentation store whose ``encoded`` is the palette colour of the ground-truth part labels."""

    def produce(start: int, stop: int):
        labels = dataset_store.read_part_labels(np.arange(start, stop))
        return encode_labels(labels).transpose(0, 3, 1, 2), labels, np.zeros(stop - start, np.int64)

    write_segmentation(path, dataset_store.split, dataset_store.frame_ids(), dataset_store.frame_size, produce)
    return Path(path)
