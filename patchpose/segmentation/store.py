"""The segmentation store: one zarr v3 group per split, next to the dataset store it segments.

Layout of ``results/<dataset>/segmentation/<split>.zarr`` (row ``i`` is frame ``i`` of the dataset
store ``results/<dataset>/dataset/<split>.zarr``):

- ``encoded``: (N, 3, H, W) uint8, the colour-encoded segmentation S of the paper: per pixel the
  expected palette colour under the predicted part probabilities, ``sum_k p_k PALETTE[k]``, rounded;
  channels R, G, B; H x W = the frame size. Chunks of 64 frames, zstd.
- ``labels``: (N, H, W) uint8 most probable part id (``patchpose.parts.PART_NAMES``).
- ``fold``: (N,) int64, the fold model that predicted the frame (``patchpose.folds``).
- attrs: ``format`` = "patchpose-segmentation", ``format_version`` = 1, ``split``, ``num_frames``,
  ``frame_size`` [H, W], ``part_names``, ``palette`` (15 x 3), ``frame_ids_sha256`` (sha256 of the
  dataset store's frame ids joined by newlines), ``complete`` = true (written last).
The store is written atomically (``patchpose.atomic.atomic_directory``). Every chunk is written
(``write_empty_chunks``), so a missing chunk file means a damaged store: zarr would read it as zeros
(background) without complaint, so ``open_segmentation`` checks that every chunk file is there.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from patchpose.atomic import atomic_directory
from patchpose.dataset_validation import first_missing_chunk
from patchpose.parts import NUM_PARTS, PALETTE, PART_NAMES, encode_labels

__all__ = [
    "SegmentationStore",
    "write_segmentation",
    "write_ground_truth_segmentation",
    "coarse_labels",
    "open_segmentation",
    "frame_ids_digest",
]

FORMAT = "patchpose-segmentation"
VERSION = 1
CHUNK = 64


def frame_ids_digest(frame_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(frame_ids).encode("utf-8")).hexdigest()


def _layout(n: int, h: int, w: int) -> dict[str, tuple[tuple[int, ...], str, int]]:
    """Per array: shape after the frame axis, dtype, frames per chunk."""
    return {
        "encoded": ((3, h, w), "uint8", CHUNK),
        "labels": ((h, w), "uint8", CHUNK),
        "fold": ((), "int64", max(n, 1)),
    }


def write_segmentation(path, split: str, frame_ids: list[str], frame_size, produce) -> None:
    """Write the store at ``path``. ``produce(start, stop)`` -> (encoded (B,3,H,W) uint8, labels (B,H,W)
    uint8, fold (B,) int64) for rows ``start:stop``, called in order."""
    n, (h, w) = len(frame_ids), tuple(frame_size)
    with atomic_directory(path) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        every_chunk = {"compressors": [ZstdCodec(level=3)], "config": {"write_empty_chunks": True}}
        arrays = {name: group.create_array(name, shape=(n, *shape), chunks=(rows, *shape), dtype=dtype, **every_chunk)
                  for name, (shape, dtype, rows) in _layout(n, h, w).items()}  # fmt: skip
        encoded, labels, folds = arrays["encoded"], arrays["labels"], arrays["fold"]
        fold_values = np.zeros(n, np.int64)
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            e, lab, f = produce(start, stop)
            encoded[start:stop], labels[start:stop], fold_values[start:stop] = e, lab, f
        folds[:] = fold_values
        group.attrs.update(
            format=FORMAT,
            format_version=VERSION,
            split=split,
            num_frames=n,
            frame_size=[h, w],
            part_names=list(PART_NAMES),
            palette=PALETTE.tolist(),
            frame_ids_sha256=frame_ids_digest(frame_ids),
        )
        group.attrs["complete"] = True


def coarse_labels(labels: np.ndarray, side: int) -> np.ndarray:
    """(N, H, W) part labels as a perfect segmenter with a ``side`` x ``side`` output would give them: each
    part's share of every cell (area average), upsampled bilinearly to H x W as the segmentation stage
    upsamples its logits, then the most probable part. Returns (N, H, W) uint8."""
    import torch  # only here: the store's readers and writers need no torch
    from torch.nn import functional as F

    if side < 1:
        raise ValueError(f"side must be a positive number of cells, got {side}")
    one_hot = F.one_hot(torch.from_numpy(np.asarray(labels, np.int64)), NUM_PARTS).permute(0, 3, 1, 2).float()
    shares = F.adaptive_avg_pool2d(one_hot, side)
    upsampled = F.interpolate(shares, size=one_hot.shape[-2:], mode="bilinear", align_corners=False)
    return upsampled.argmax(1).numpy().astype(np.uint8)


def write_ground_truth_segmentation(path, dataset_store, side: int | None = None) -> None:
    """A store at ``path`` holding the dataset store's own part labels (``read_part_labels``) and their palette
    colours, fold 0 everywhere: what a perfect segmentation would give (an oracle; tests and
    ``benchmarks/segmentation_oracle.py``); with ``side``, a perfect one at ``side`` x ``side`` cells
    (``coarse_labels``). Raises ``ValueError`` for a dataset store without part labels."""
    if not dataset_store.has_part_labels:
        raise ValueError(f"{dataset_store.path}: has no part_labels to write a ground-truth segmentation from")

    def produce(start: int, stop: int):
        labels = dataset_store.read_part_labels(np.arange(start, stop))
        if side is not None:
            labels = coarse_labels(labels, side)
        return encode_labels(labels).transpose(0, 3, 1, 2), labels, np.zeros(stop - start, np.int64)

    write_segmentation(path, dataset_store.split, dataset_store.frame_ids(), dataset_store.frame_size, produce)


class SegmentationStore:
    """A validated, read-only segmentation store."""

    def __init__(self, path: Path, group: zarr.Group):
        self.path, self._group = path, group
        self.num_frames: int = group.attrs["num_frames"]
        self.split: str = group.attrs["split"]
        self.frame_size = tuple(group.attrs["frame_size"])

    def read_encoded(self, indices) -> np.ndarray:
        """(B, 3, H, W) uint8 colour-encoded segmentation of frames ``indices``."""
        return self._group["encoded"].oindex[np.asarray(indices, dtype=np.int64)]

    def read_labels(self, indices) -> np.ndarray:
        """(B, H, W) uint8 most probable part ids of frames ``indices``."""
        return self._group["labels"].oindex[np.asarray(indices, dtype=np.int64)]

    @property
    def fold(self) -> np.ndarray:
        return self._group["fold"][...]


def open_segmentation(path, dataset_store=None) -> SegmentationStore:
    """Open a store; with ``dataset_store`` also check it segments exactly that store's frames."""
    path = Path(path)
    try:
        group = zarr.open_group(path, mode="r", zarr_format=3)
        attrs = dict(group.attrs)
    except Exception as error:
        raise ValueError(f"{path}: not a readable segmentation store: {error}") from error
    if attrs.get("format") != FORMAT or attrs.get("format_version") != VERSION or not attrs.get("complete"):
        raise ValueError(f"{path}: not a complete {FORMAT} store of version {VERSION}")
    if attrs.get("palette") != PALETTE.tolist() or attrs.get("part_names") != list(PART_NAMES):
        raise ValueError(f"{path}: written with another palette or part list")
    missing = [key for key in ("split", "num_frames", "frame_size", "frame_ids_sha256") if key not in attrs]
    if missing:
        raise ValueError(f"{path}: missing attrs {missing}")
    (h, w), n = attrs["frame_size"], attrs["num_frames"]
    for name, (shape, dtype, _) in _layout(n, h, w).items():
        if name not in group:
            raise ValueError(f"{path}: missing array {name!r}")
        array = group[name]
        if array.shape != (n, *shape) or array.dtype != np.dtype(dtype):
            raise ValueError(f"{path}: array {name!r} is {array.shape} {array.dtype}, expected {(n, *shape)} {dtype}")
        chunk = first_missing_chunk(path, name, array)
        if chunk is not None:
            raise ValueError(f"{path}: array {name!r}: missing chunk file {chunk} (truncated store)")
    if dataset_store is not None and attrs["frame_ids_sha256"] != frame_ids_digest(dataset_store.frame_ids()):
        raise ValueError(f"{path}: segments other frames than {dataset_store.path}")
    return SegmentationStore(path, group)
