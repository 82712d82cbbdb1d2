"""Contact sheet of a patch store: what the cache holds, beside where it was cut.

One row per chosen frame (spread evenly over the split): the frame with the patches' sampled regions
drawn (each in the palette colour of the limb's body part, ``patchpose.parts.LIMB_PART``), then the
patches' RGB channels (2 rows of 8 limbs in ``H36M.limbs`` order), then their segmentation channels in the
same arrangement. The frame tile is 2R x 2R px (R = the store's patch size), the patches R x R.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from patchpose.crop_geometry import apply_affine
from patchpose.parts import LIMB_PART, PALETTE
from patchpose.patches.store import PatchStore
from patchpose.visualize import annotate, sheet_indices, tile, write_png

__all__ = ["sampled_regions", "frame_row", "contact_sheet", "write_contact_sheet"]

_PATCH_COLUMNS = 8
_GAP = 2


def sampled_regions(affines: np.ndarray, size: int) -> np.ndarray:
    """(P, 2, 2) frame px (x, y) of the top-left and bottom-right outer pixel edges of each patch."""
    edges = np.array([[-0.5, -0.5], [size - 0.5, size - 0.5]])
    return apply_affine(affines, np.broadcast_to(edges, (len(affines), 2, 2)))


def _region_colours(count: int) -> list[tuple[int, int, int]]:
    if count == len(LIMB_PART):
        return [tuple(int(c) for c in PALETTE[part]) for part in LIMB_PART]
    return [(255, 255, 0)] * count


def _patch_grid(images: np.ndarray) -> np.ndarray:
    """(P, R, R, 3) patches -> one block of rows of ``_PATCH_COLUMNS``."""
    columns = min(_PATCH_COLUMNS, len(images))
    return tile(list(images), columns, gap=_GAP)


def frame_row(frame: np.ndarray, patches: np.ndarray, affines: np.ndarray, caption: str = "") -> np.ndarray:
    """One sheet row: frame (H, W, 3) uint8 with regions, then RGB and segmentation patch blocks.

    patches: (P, 6, R, R) uint8 of the store; affines: (P, 2, 3) patch px -> frame px.
    """
    count, _, size, _ = patches.shape
    rgb = patches[:, :3].transpose(0, 2, 3, 1)
    segmentation = patches[:, 3:].transpose(0, 2, 3, 1)
    rgb_block, seg_block = _patch_grid(rgb), _patch_grid(segmentation)
    side = rgb_block.shape[0] if count > 1 else 2 * size
    zoom = side / max(frame.shape[:2])
    canvas = cv2.resize(
        frame, (round(frame.shape[1] * zoom), round(frame.shape[0] * zoom)), interpolation=cv2.INTER_AREA
    )
    canvas = np.ascontiguousarray(canvas)
    corners = (sampled_regions(affines, size) + 0.5) * zoom - 0.5
    for (top_left, bottom_right), colour in zip(corners, _region_colours(count), strict=True):
        cv2.rectangle(canvas, tuple(np.round(top_left).astype(int).tolist()),
                      tuple(np.round(bottom_right).astype(int).tolist()), colour, 1, cv2.LINE_AA)  # fmt: skip
    if caption:
        canvas = annotate(canvas, caption)
    height = max(canvas.shape[0], rgb_block.shape[0])
    parts = [canvas, rgb_block, seg_block]
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, _GAP), (0, 0)), constant_values=32) for p in parts]
    return np.concatenate(padded, axis=1)


def contact_sheet(store: PatchStore, dataset_store, count: int) -> np.ndarray:
    """(H, W, 3) uint8 sheet of ``count`` frames spread evenly over the split."""
    chosen = sheet_indices(store.num_frames, count)
    frames = dataset_store.read_frames(chosen)
    patches, affines = store.read(chosen), store.read_affine(chosen)
    ids = dataset_store.frame_ids()
    captions = [" ".join(ids[n].split("/")[:2]) for n in chosen]  # subject and action
    rows = [frame_row(frames[i], patches[i], affines[i], captions[i]) for i in range(len(chosen))]
    return tile(rows, 1, gap=_GAP)


def write_contact_sheet(store: PatchStore, dataset_store, count: int, path: str | os.PathLike) -> None:
    """Write ``contact_sheet(...)`` as a PNG at ``path``, atomically."""
    write_png(path, contact_sheet(store, dataset_store, count))
