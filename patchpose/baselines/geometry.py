"""Frames, targets and augmentation of the baselines' 3D poses.

**Ray frame** (``lifting``). The lifter sees 2D joints in crop pixels and nothing of where the crop lies in
the camera image, yet the prediction format wants root-relative poses in the *camera* frame (x right,
y down, z forward, mm). A person off the optical axis is seen along a ray tilted by up to ~20 degrees in
the synthetic world, and the same crop then goes with camera-frame poses rotated by that tilt. So the
lifter predicts the pose in the crop's *ray frame*: the camera frame rotated by the shortest rotation that
takes the unit ray through the crop centre (``patchpose.camera.pixel_rays``, lens distortion undone) onto
+z. ``R`` (N, 3, 3) maps camera -> ray frame (``p_ray = R p_cam``); predictions go back with ``R^T``. The
crop geometry is known for every frame (``crop_affine``, the camera), so a real method would know it too.

**Crop units** (``integral3d``, Sun et al.'s 2.5D representation). Joint j is (u_j, v_j, d_j): its image
position in unit crop coordinates ([-1, 1], ``patchpose.augment.pixels_to_unit``) and its depth relative to
the root, d_j = (Z_j - Z_root) / S, in units of S = Z_root h / f, the millimetres one crop unit spans at the
root's depth (h: half the crop side in image px, f: the focal length in px). Given (u, v, d) the pose is known
up to the one scale S: joint j lies on the camera ray through its pixel at depth S (f / h + d_j)
(``back_project``); S itself is chosen so that the bone lengths best match the training subjects' mean bone
lengths (``fit_scale``, least squares), as the absolute depth cannot be read from a crop. (``crop_unit_mm``
gives the true S of a training frame, for calibrating that fit.)

**Flips, in-plane rotations and zooms** of a crop about its centre move (u, v) as the 2D joints move
(``patchpose.augment.warp_points``: left/right swapped after a flip) and scale d with the zoom
(``warp_crop_units``).
"""

from __future__ import annotations

import numpy as np
import torch

from patchpose.augment import Transforms, pixels_to_unit, unit_to_pixels, warp_points
from patchpose.camera import pixel_rays
from patchpose.crop_geometry import apply_affine
from patchpose.dataset_format import DatasetStore
from patchpose.orientation import bone_lengths
from patchpose.skeleton import H36M

__all__ = [
    "ray_rotations",
    "root_relative",
    "to_ray_frame",
    "from_ray_frame",
    "crop_units",
    "crop_unit_mm",
    "back_project",
    "fit_scale",
    "warp_crop_units",
    "flip_crop_units",
]


def _shortest_rotation_to_z(directions: np.ndarray) -> np.ndarray:
    """(N, 3) unit vectors d -> (N, 3, 3) rotations R with R d = +z, about the axis d x z (Rodrigues)."""
    d = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    axis = np.cross(d, np.array([0.0, 0.0, 1.0]))
    sin = np.linalg.norm(axis, axis=-1)
    cos = d[:, 2]
    if np.any(cos <= 0):
        raise ValueError("crop rays must point forward (z > 0)")
    safe = np.where(sin[:, None] > 1e-12, axis / np.maximum(sin, 1e-12)[:, None], 0.0)
    k = np.zeros((len(d), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -safe[:, 2], safe[:, 1], -safe[:, 0]
    k = k - np.swapaxes(k, 1, 2)
    return np.eye(3) + sin[:, None, None] * k + (1 - cos)[:, None, None] * (k @ k)


def ray_rotations(store: DatasetStore, indices: np.ndarray | None = None) -> np.ndarray:
    """(N, 3, 3) float64 camera -> ray frame rotations of ``store`` frames ``indices`` (default: all)."""
    indices = np.arange(store.num_frames) if indices is None else np.asarray(indices)
    height, width = store.frame_size
    centre = np.array([[(width - 1) / 2, (height - 1) / 2]])
    pixels = apply_affine(store.crop_affine[indices], np.broadcast_to(centre, (len(indices), 1, 2)))[:, 0]
    rays = pixel_rays(pixels, store.camera_intrinsics[indices], store.camera_distortion[indices])
    return _shortest_rotation_to_z(rays)


def root_relative(joints_3d: np.ndarray) -> np.ndarray:
    """(N, 17, 3) absolute camera-frame joints, mm -> root (pelvis, joint 0) at the origin, float64."""
    joints = np.asarray(joints_3d, dtype=np.float64)
    return joints - joints[:, :1]


def to_ray_frame(poses: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(N, J, 3) camera-frame vectors (root-relative poses) -> ray frame: ``p R^T`` per frame."""
    return np.einsum("nij,nkj->nki", rotations, poses)


def from_ray_frame(poses: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Inverse of ``to_ray_frame``: (N, J, 3) ray-frame vectors -> camera frame."""
    return np.einsum("nji,nkj->nki", rotations, poses)


def _depth_ratio(store: DatasetStore, indices: np.ndarray) -> np.ndarray:
    """(N,) f / h: focal length over half the crop side, both in original image px."""
    linear = store.crop_affine[indices][:, :, :2]
    half_side = np.sqrt(np.abs(np.linalg.det(linear))) * store.crop_side() / 2
    focal = np.sqrt(store.camera_intrinsics[indices, 0] * store.camera_intrinsics[indices, 1])
    return focal / half_side


def crop_unit_mm(store: DatasetStore, indices: np.ndarray) -> np.ndarray:
    """(N,) S = Z_root h / f: the ground-truth millimetres one crop unit spans at the root's depth."""
    indices = np.asarray(indices)
    return store.joints_3d[indices, 0, 2].astype(np.float64) / _depth_ratio(store, indices)


def crop_units(store: DatasetStore, indices: np.ndarray) -> np.ndarray:
    """(N, 17, 3) float64 ground-truth (u, v, d) of ``store`` frames ``indices`` (see the module docstring)."""
    indices = np.asarray(indices)
    uv = pixels_to_unit(store.joints_2d[indices].astype(np.float64), store.crop_side())
    depth = store.joints_3d[indices, :, 2].astype(np.float64)
    scale = crop_unit_mm(store, indices)[:, None]
    return np.concatenate([uv, ((depth - depth[:, :1]) / scale)[..., None]], axis=-1)


def back_project(store: DatasetStore, indices: np.ndarray, units: np.ndarray) -> np.ndarray:
    """(N, 17, 3) (u, v, d) of ``store`` frames ``indices`` -> (N, 17, 3) root-relative camera-frame pose in
    units of S (multiply by S in mm for millimetres): each joint on its pixel's ray at depth f / h + d."""
    indices = np.asarray(indices)
    pixels = unit_to_pixels(np.asarray(units[..., :2], dtype=np.float64), store.crop_side())
    image = apply_affine(store.crop_affine[indices], pixels)
    rays = pixel_rays(image, store.camera_intrinsics[indices, None], store.camera_distortion[indices, None])
    depth = _depth_ratio(store, indices)[:, None] + units[..., 2] - units[:, :1, 2]
    points = rays * (depth / rays[..., 2])[..., None]
    return points - points[:, :1]


def fit_scale(poses: np.ndarray, mean_bone_lengths: np.ndarray) -> np.ndarray:
    """(N,) s minimising sum_k (s l_k - mean_k)^2 over the 16 bones: l_k bone lengths of ``poses``
    (N, 17, 3), ``mean_bone_lengths`` (16,) mm (e.g. the training subjects' means)."""
    lengths = bone_lengths(poses)
    return (lengths @ mean_bone_lengths) / np.maximum((lengths**2).sum(axis=-1), 1e-12)


def warp_crop_units(units: torch.Tensor, transforms: Transforms) -> torch.Tensor:
    """(B, 17, 3) (u, v, d) of the input crops -> of the crops ``patchpose.augment.warp`` made under
    ``transforms``: (u, v) as ``warp_points`` moves them (left/right swapped where flipped), d times the zoom
    (a crop unit spans 1/zoom as many mm afterwards), swapped alike."""
    uv = warp_points(units[..., :2], transforms)
    zoom = torch.sqrt(torch.abs(torch.linalg.det(torch.linalg.inv(transforms.matrices)))).to(units.device)
    perm = torch.tensor(H36M.flip_permutation, device=units.device)
    depth = torch.where(transforms.flipped.to(units.device)[:, None], units[:, perm, 2], units[..., 2])
    return torch.cat([uv, (depth * zoom[:, None])[..., None]], dim=-1)


def flip_crop_units(units: np.ndarray) -> np.ndarray:
    """(N, 17, 3) (u, v, d) of horizontally mirrored crops: u negated, left/right joints swapped."""
    mirrored = np.asarray(units) * np.array([-1.0, 1.0, 1.0])
    return mirrored[:, H36M.flip_permutation]
