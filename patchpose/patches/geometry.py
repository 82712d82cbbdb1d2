"""Where each patch is cut: the paper's limb boxes (§3.2, §4.1) and the whole-frame box, as affines.

Units: frame px of the dataset's person-centred crops (pixel centres at integers, x right, y down;
``patchpose.crop_geometry``) and patch px of the cached patches (``cache_size``² px, same convention).
Every affine returned here maps patch px ``[u, v, 1]`` to frame px, shape (..., 2, 3), and is axis
aligned (no rotation), which is what ``patchpose.patches.sampler`` needs.

Limb patch, per limb of ``H36M.limbs`` (the skeleton's limb order), from the two 2D endpoints:

1. the tight box of the endpoints, h x w frame px;
2. centre-padded to max(m, h) x max(m, w), where m = ``min_side_at_256`` x frame side / 256 (the paper:
   28 px at its 256² frames, so 14 px at the synthetic world's 128² frames);
3. rescaled by ``scale`` (the paper: 2.3) about the limb centre;
4. ``square=True`` (our reading of "zero padded and enlarged to network input resolution"): padded to a
   square of its longer side about the centre, so the aspect ratio is kept; the part of the square that
   leaves the frame reads as zeros. ``square=False`` (the alternative reading): the box is stretched to
   the square patch, filling it but distorting the limb's aspect ratio;
5. resampled to ``cache_size``² px: bilinear where the box is at most one frame px wider than the patch, the
   area average of each patch pixel's footprint where it is larger (no aliasing of the limbs' ring textures;
   ``patchpose.patches.sampler``). The zoom to the network input size happens later, on the device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from patchpose.crop_geometry import limb_boxes, limb_patch_affines
from patchpose.skeleton import H36M

__all__ = ["PAPER_FRAME_SIDE", "LimbPatchGeometry", "check_joints_2d", "limb_patch_geometry", "whole_frame_geometry"]

PAPER_FRAME_SIDE = 256  # px: the frame size at which the paper states its 28 px minimum box side


@dataclass(frozen=True)
class LimbPatchGeometry:
    """The config's ``patches`` geometry keys.

    min_side_at_256: minimum box side, px at a 256² frame (scaled with the frame size). scale: box
    enlargement about the limb centre. square: pad to a square (True) or stretch (False).
    cache_size: side of the cached patches, px.
    """

    min_side_at_256: float = 28.0
    scale: float = 2.3
    square: bool = True
    cache_size: int = 64

    def __post_init__(self) -> None:
        if not (self.min_side_at_256 >= 0 and self.scale > 0 and int(self.cache_size) >= 1):
            raise ValueError(f"patch geometry needs min_side_at_256 >= 0, scale > 0, cache_size >= 1, got {self}")

    def min_side_px(self, frame_size: tuple[int, int]) -> float:
        """The minimum box side in frame px for frames of ``frame_size`` = (H, W) px (by the longer side)."""
        return self.min_side_at_256 * max(frame_size) / PAPER_FRAME_SIDE

    def as_attrs(self, frame_size: tuple[int, int]) -> dict:
        """The geometry as JSON for a store's attrs, with the minimum side it resolved to."""
        return {
            "min_side_at_256": float(self.min_side_at_256),
            "min_side_px": self.min_side_px(frame_size),
            "scale": float(self.scale),
            "square": bool(self.square),
        }


def check_joints_2d(where: str | os.PathLike, joints_2d, num_frames: int) -> np.ndarray:
    """(num_frames, 17, 2) finite 2D joints in frame px, as float64; ``ValueError`` naming ``where`` otherwise."""
    joints = np.asarray(joints_2d)
    expected = (num_frames, H36M.num_joints, 2)
    if joints.shape != expected:
        raise ValueError(f"{os.fspath(where)}: joints_2d must have shape {expected}, got {joints.shape}")
    if joints.dtype.kind not in "iuf":
        raise ValueError(f"{os.fspath(where)}: joints_2d must be real numbers, got dtype {joints.dtype}")
    bad = ~np.isfinite(joints)
    if bad.any():
        frame, joint, _ = np.argwhere(bad)[0]
        raise ValueError(
            f"{os.fspath(where)}: joints_2d holds NaN or inf "
            f"(first at frame {frame}, joint {H36M.joint_names[joint]}; {int(bad.any(axis=(1, 2)).sum())} frames)"
        )
    return joints.astype(np.float64)


def limb_patch_geometry(
    joints_2d: np.ndarray, frame_size: tuple[int, int], geometry: LimbPatchGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """Limb boxes and patch affines of N frames.

    joints_2d: (N, 17, 2) frame px (checked finite by the caller). Returns ``boxes`` (N, 16, 4) float64
    = (centre x, centre y, width, height) frame px of the padded and rescaled box (step 3), and
    ``affines`` (N, 16, 2, 3) float64, patch px -> frame px (steps 4-5).
    """
    centres, sizes = limb_boxes(joints_2d, geometry.min_side_px(frame_size), geometry.scale)
    affines = limb_patch_affines(centres, sizes, int(geometry.cache_size), square=geometry.square)
    return np.concatenate([centres, sizes], axis=-1), affines


def whole_frame_geometry(num_frames: int, frame_size: tuple[int, int], out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The uncropped input (the paper's Table 2): the whole frame as one patch of ``out_size``² px.

    A non-square frame is padded to a square about its centre (zeros), as the limb patches are.
    Returns boxes (N, 1, 4) and affines (N, 1, 2, 3), as ``limb_patch_geometry``.
    """
    height, width = frame_size
    box = np.array([(width - 1) / 2, (height - 1) / 2, width, height], dtype=np.float64)
    affine = limb_patch_affines(box[:2], box[2:], int(out_size), square=True)
    return np.tile(box, (num_frames, 1, 1)), np.tile(affine, (num_frames, 1, 1, 1))
