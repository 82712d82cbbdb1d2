"""Frames in memory for the networks: a split's crops read in chunks and downscaled once.

Images are (N, 3, S, S) uint8 RGB tensors (channel-first), downscaled from the store's crops with
area averaging (OpenCV ``INTER_AREA``, deterministic). Networks divide by 255 per batch.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from patchpose.dataset_format import DatasetStore

__all__ = ["load_frames", "to_unit_float"]

CHUNK = 512


def load_frames(store: DatasetStore, indices: np.ndarray, size: int) -> torch.Tensor:
    """(len(indices), 3, size, size) uint8 crops of ``store`` frames ``indices`` (any order); the store's
    crops must be square (``DatasetStore.crop_side``), so resizing keeps the aspect ratio."""
    indices = np.asarray(indices, dtype=np.int64)
    resize = store.crop_side() != size
    out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
    for start in range(0, len(indices), CHUNK):
        chunk = store.read_frames(indices[start : start + CHUNK])
        for offset, frame in enumerate(chunk):
            out[start + offset] = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA) if resize else frame
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def to_unit_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float32 in [0, 1] on ``device``."""
    return images.to(device, non_blocking=True).float().div_(255)
