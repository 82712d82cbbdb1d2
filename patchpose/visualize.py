"""Drawing helpers for contact sheets: skeleton overlays, part-label overlays, tiling.

All images are (H, W, 3) uint8 RGB; 2D joints are (17, 2) px in the image's own frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from patchpose.atomic import atomic_write_bytes
from patchpose.parts import PALETTE
from patchpose.skeleton import H36M

__all__ = ["overlay_labels", "draw_skeleton", "tile", "annotate", "sheet_indices", "write_png"]

_LEFT, _RIGHT, _CENTRE = (255, 80, 80), (80, 160, 255), (255, 255, 255)


def overlay_labels(image: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend the palette colour of each non-background part label (H, W) into ``image``."""
    assert image.shape[:2] == labels.shape, f"image {image.shape} and labels {labels.shape} differ"
    colours = PALETTE[labels].astype(np.float32)
    mask = (labels > 0)[..., None]
    blended = np.where(mask, (1 - alpha) * image.astype(np.float32) + alpha * colours, image)
    return np.clip(blended, 0, 255).astype(np.uint8)


def draw_skeleton(image: np.ndarray, joints_2d: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Draw the 16 limbs (left red, right blue, centre white) and joints on a copy of ``image``."""
    assert joints_2d.shape == (H36M.num_joints, 2), f"joints_2d must be (17, 2), got {joints_2d.shape}"
    canvas = np.ascontiguousarray(image.copy())
    points = np.round(joints_2d).astype(int)
    for child, parent in H36M.limbs:
        colour = _LEFT if child in H36M.left_joints else _RIGHT if child in H36M.right_joints else _CENTRE
        cv2.line(
            canvas, tuple(map(int, points[parent])), tuple(map(int, points[child])), colour, thickness, cv2.LINE_AA
        )
    for point in points:
        cv2.circle(canvas, tuple(map(int, point)), max(1, thickness), (255, 255, 0), -1, cv2.LINE_AA)
    return canvas


def annotate(image: np.ndarray, text: str) -> np.ndarray:
    """Write a short caption in the top-left corner of a copy of ``image``."""
    canvas = np.ascontiguousarray(image.copy())
    scale = max(0.3, image.shape[0] / 400)
    cv2.putText(canvas, text, (2, int(12 * scale / 0.3)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(
        canvas, text, (2, int(12 * scale / 0.3)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
    )
    return canvas


def tile(images: Sequence[np.ndarray], columns: int, gap: int = 2) -> np.ndarray:
    """Tile equally sized (H, W, 3) images row-major into one image with ``gap`` px borders."""
    if not images:
        raise ValueError("nothing to tile")
    height, width = images[0].shape[:2]
    rows = -(-len(images) // columns)
    sheet = np.full((rows * (height + gap) + gap, columns * (width + gap) + gap, 3), 32, np.uint8)
    for index, image in enumerate(images):
        assert image.shape[:2] == (height, width), "tiles must share one size"
        r, c = divmod(index, columns)
        y, x = gap + r * (height + gap), gap + c * (width + gap)
        sheet[y : y + height, x : x + width] = image
    return sheet


def sheet_indices(num_frames: int, count: int) -> np.ndarray:
    """``count`` frame indices spread evenly over ``num_frames`` frames (deterministic, sorted, unique)."""
    return np.unique(np.linspace(0, num_frames - 1, min(count, num_frames)).round().astype(np.int64))


def write_png(path, image: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB image as PNG to ``path``, atomically."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed")
    atomic_write_bytes(path, data.tobytes())
