"""The patches stage: cut a split's limb patches (or its whole frames) into a patch store.

Inputs: the dataset store (RGB frames, ground-truth 2D joints), the segmentation store (colour-coded
segmentation S) and, for the ``predicted`` 2D source, the keypoints2d predictions
(``results/<dataset>/keypoints2d/<split>_joints_2d.npz``). Frames are processed in blocks of a few dozen,
so memory does not grow with the dataset. Output layout: ``patchpose.patches.store``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from patchpose.dataset_format import open_dataset
from patchpose.patches.geometry import LimbPatchGeometry, check_joints_2d, limb_patch_geometry, whole_frame_geometry
from patchpose.patches.sampler import cut_patches
from patchpose.patches.store import write_patch_store
from patchpose.segmentation.store import open_segmentation
from patchpose.skeleton import H36M

__all__ = ["SOURCES", "BLOCK_BYTES", "block_frames", "joints_for_source", "write_limb_patches", "write_uncropped"]

log = logging.getLogger("patchpose.patches")

SOURCES = ("predicted", "groundtruth")  # where the limb boxes' 2D joints come from
BLOCK_BYTES = 32 * 2**20  # patches held in memory per block of frames


def block_frames(patches_per_frame: int, size: int) -> int:
    """Frames per block so that a block's patches take about ``BLOCK_BYTES``."""
    return int(np.clip(BLOCK_BYTES // (patches_per_frame * 6 * size * size), 1, 256))


def joints_for_source(source: str, store, joints_path: str | os.PathLike | None) -> np.ndarray:
    """(N, 17, 2) float64 frame px joints that place the limb boxes; ``ValueError`` naming the file."""
    if source == "predicted":
        if joints_path is None:
            raise ValueError(f"2D source 'predicted' needs the keypoints2d predictions file for {store.path}")
        from patchpose.keypoints2d.stage import read_predictions  # torch: only where predictions are read

        return check_joints_2d(joints_path, read_predictions(joints_path, store), store.num_frames)
    if source == "groundtruth":
        return check_joints_2d(f"{store.path} (field 'joints_2d')", store.joints_2d, store.num_frames)
    raise ValueError(f"unknown 2D source {source!r}; choose one of {SOURCES}")


def _write(store, segmentation, output_path, *, kind, source, patch_names, size, geometry_attrs, storage, place):
    """Cut every frame's patches placed by ``place(start, stop) -> (boxes, affines)`` into the store."""
    chunk = block_frames(len(patch_names), size)
    report_every = max(1, store.num_frames // 10)

    def produce(start: int, stop: int):
        rows = np.arange(start, stop)
        boxes, affines = place(start, stop)
        patches = cut_patches(store.read_frames(rows), segmentation.read_encoded(rows), affines, size)
        if start // report_every != stop // report_every or stop == store.num_frames:
            log.info("%s %s: %d/%d frames cut", kind, source, stop, store.num_frames)
        return patches, affines, boxes

    return write_patch_store(
        output_path, kind=kind, source=source, split=store.split, frame_ids=store.frame_ids(),
        frame_size=store.frame_size, patch_names=patch_names, patch_size=size, geometry=geometry_attrs,
        compressor=storage["compressor"], compression_level=storage["compression_level"], chunk_frames=chunk,
        produce=produce,
    )  # fmt: skip


def write_limb_patches(
    dataset_path: str | os.PathLike,
    segmentation_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    source: str,
    geometry: LimbPatchGeometry,
    storage: dict,
    joints_path: str | os.PathLike | None = None,
    threads: int = 1,
) -> Path:
    """Write the 16 limb patches of every frame of a split, placed by the ``source`` 2D joints.

    storage: ``{"compressor": "zstd" | "lz4", "compression_level": int}``. Returns the store path.
    """
    cv2.setNumThreads(int(threads))
    store = open_dataset(dataset_path)
    segmentation = open_segmentation(segmentation_path, store)
    joints = joints_for_source(source, store, joints_path)
    log.info("%s: %d frames of %s px, min box side %.2f px, scale %g, square %s, cache %d px", output_path,
             store.num_frames, store.frame_size, geometry.min_side_px(store.frame_size), geometry.scale,
             geometry.square, geometry.cache_size)  # fmt: skip

    def place(start: int, stop: int):
        return limb_patch_geometry(joints[start:stop], store.frame_size, geometry)

    return _write(
        store, segmentation, output_path, kind="limbs", source=source, patch_names=H36M.limb_names,
        size=int(geometry.cache_size), geometry_attrs=geometry.as_attrs(store.frame_size), storage=storage,
        place=place,
    )  # fmt: skip


def write_uncropped(
    dataset_path: str | os.PathLike,
    segmentation_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    size: int,
    storage: dict,
    threads: int = 1,
) -> Path:
    """Write every frame of a split, whole and resized to ``size``² px (the paper's Table 2 input)."""
    cv2.setNumThreads(int(threads))
    store = open_dataset(dataset_path)
    segmentation = open_segmentation(segmentation_path, store)
    log.info("%s: %d frames of %s px resized to %d px", output_path, store.num_frames, store.frame_size, size)

    def place(start: int, stop: int):
        return whole_frame_geometry(stop - start, store.frame_size, size)

    return _write(
        store, segmentation, output_path, kind="uncropped", source="uncropped", patch_names=("frame",),
        size=int(size), geometry_attrs={"whole_frame": True}, storage=storage, place=place,
    )  # fmt: skip
