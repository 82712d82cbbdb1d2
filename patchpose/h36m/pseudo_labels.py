"""Pseudo part labels for Human3.6M crops: limb regions rasterised from the 2D ground truth.

The release ships no part segmentation, so the segmentation stage trains on these. For one crop:

1. Every limb ``k`` of ``H36M.limbs`` is a thick line between its two joints' crop px, labelled
   ``LIMB_PART[k]``. Its thickness is the part's physical width (``widths_mm``, e.g. ``upper_leg: 160``)
   converted to crop px at the limb's depth: ``width_px = width_mm * fx / Z / s`` with ``Z`` the mean camera
   depth (mm) of the two joints and ``s`` the crop scale (original px per crop px, ``affine[0, 0]``).
2. The torso is additionally the filled quadrilateral hips-shoulders (part ``torso``).
3. Hands and feet (no joint in the 17-joint set) are discs of diameter ``hand`` / ``foot`` centred 0.25 x the
   forearm length beyond the wrist / 0.15 x the shin length beyond the ankle.
4. Items are painted far to near (by mean depth), so nearer limbs occlude farther ones; a hand or foot is
   painted just in front of the limb it ends.
5. With a background mask (original image, True = person), every crop pixel the mask calls background is
   set to 0; the mask is resampled into the crop with nearest neighbour.

Pixels are labelled by OpenCV's rasteriser (8-connected lines, ``round`` thickness, at least 1 px). The labels
are approximate by construction (capsules, not silhouettes); ``docs/h36m.md`` says so.
"""

from __future__ import annotations

import cv2
import numpy as np

from patchpose.crop_geometry import warp_crop
from patchpose.parts import LIMB_PART, PART_NAMES
from patchpose.skeleton import H36M

__all__ = ["DEFAULT_WIDTHS_MM", "pseudo_part_labels"]

DEFAULT_WIDTHS_MM: dict[str, float] = {
    "head": 200.0,
    "torso": 150.0,
    "upper_arm": 100.0,
    "lower_arm": 80.0,
    "hand": 90.0,
    "upper_leg": 160.0,
    "lower_leg": 110.0,
    "foot": 100.0,
}

_J = H36M.joint_index
_TORSO = [_J("left_hip"), _J("right_hip"), _J("right_shoulder"), _J("left_shoulder")]
# (part name, centre joint, direction from joint a to joint b, fraction along it)
_EXTREMITIES = [
    ("left_hand", _J("left_wrist"), _J("left_elbow"), _J("left_wrist"), 0.25),
    ("right_hand", _J("right_wrist"), _J("right_elbow"), _J("right_wrist"), 0.25),
    ("left_foot", _J("left_ankle"), _J("left_knee"), _J("left_ankle"), 0.15),
    ("right_foot", _J("right_ankle"), _J("right_knee"), _J("right_ankle"), 0.15),
]


def _width_key(part: str) -> str:
    return part.removeprefix("left_").removeprefix("right_")


def pseudo_part_labels(
    joints_2d: np.ndarray,
    depth_mm: np.ndarray,
    focal_px: float,
    affine: np.ndarray,
    frame_size: int,
    widths_mm: dict[str, float] | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Part ids (frame_size, frame_size) uint8 for one crop.

    joints_2d: (17, 2) crop px; depth_mm: (17,) camera-frame Z in mm (> 0); focal_px: mean of fx, fy in
    original px; affine: (2, 3) crop px -> original px; mask: optional (H, W) bool foreground in the original
    image.
    """
    widths = {**DEFAULT_WIDTHS_MM, **(widths_mm or {})}
    joints_2d = np.asarray(joints_2d, dtype=np.float64)
    depth_mm = np.asarray(depth_mm, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(np.asarray(affine)[:, :2]))))

    def to_px(width_mm: float, z: float) -> int:
        return max(1, int(round(width_mm * focal_px / z / scale)))

    items = []  # (depth, order, draw function)
    torso = PART_NAMES.index("torso")
    polygon = np.round(joints_2d[_TORSO]).astype(np.int32)
    items.append((depth_mm[_TORSO].mean(), 0, lambda img: cv2.fillConvexPoly(img, polygon, torso)))
    for k, (child, parent) in enumerate(H36M.limbs):
        part = int(LIMB_PART[k])
        z = (depth_mm[child] + depth_mm[parent]) / 2
        a, b = (tuple(int(v) for v in np.round(joints_2d[j])) for j in (parent, child))
        thickness = to_px(widths[_width_key(PART_NAMES[part])], z)
        items.append((z, 1 + k, lambda img, a=a, b=b, p=part, t=thickness: cv2.line(img, a, b, p, t)))
    for order, (name, joint, start, end, fraction) in enumerate(_EXTREMITIES):
        centre = joints_2d[joint] + fraction * (joints_2d[end] - joints_2d[start])
        radius = max(1, to_px(widths[_width_key(name)], depth_mm[joint]) // 2)
        c, part = tuple(int(v) for v in np.round(centre)), PART_NAMES.index(name)
        # painted right after (in front of) the limb it ends, never under it
        z = min(depth_mm[joint], (depth_mm[start] + depth_mm[end]) / 2) - 1e-3
        items.append((z, 100 + order, lambda img, c=c, r=radius, p=part: cv2.circle(img, c, r, p, -1)))
    labels = np.zeros((frame_size, frame_size), dtype=np.uint8)
    for _, _, draw in sorted(items, key=lambda item: (-item[0], item[1])):
        draw(labels)
    if mask is not None:
        inside = warp_crop(np.asarray(mask, dtype=np.uint8), affine, frame_size, interpolation=cv2.INTER_NEAREST)
        labels[inside == 0] = 0
    return labels
