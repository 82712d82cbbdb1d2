"""Human3.6M cameras: parameters, rigid transforms and the Human3.6M lens model.

Frames and units: world frame in mm (z up, floor ~ z=0); camera frame in mm (x right,
y down, z forward along the optical axis); normalized coordinates are ``(X/Z, Y/Z)``;
pixels are ``(u right, v down)``. ``X_cam = R @ (X_world - C)`` with ``R`` world->camera.

Lens model (Human3.6M's, NOT OpenCV's), tangential ``[p1, p2]`` in metadata.xml order::

    r2 = x^2 + y^2;  radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3;  tan = p1 y + p2 x
    x' = x (radial + tan) + p2 r2;  y' = y (radial + tan) + p1 r2;  u = fx x' + cx;  v = fy y' + cy

Broadcasting rule (every function here): a camera parameter array of shape ``(*B, C)``
(``C`` its core shape: 3x3, 3, 4, 5, ...) goes with points of shape ``(*B, *P, D)``. Its
batch dims ``B`` line up with the LEADING batch dims of the points (numpy broadcasting
within ``B``), and it is shared over the remaining ``P``. So ``(4,)`` intrinsics serve any
points, and per-frame ``(N, 4)`` intrinsics serve points ``(N, J, 3)``. Non-finite inputs
propagate as NaN.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

__all__ = ["H36M_CAMERA_IDS", "H36M_CAMERA_SUBJECTS", "Camera", "quaternion_to_matrix", "load_h36m_cameras",
           "h36m_camera", "world_to_camera", "camera_to_world", "distort", "undistort", "project",
           "pixel_rays"]  # fmt: skip

H36M_CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
H36M_CAMERA_SUBJECTS = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")


def _frozen(values, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array}")
    array.setflags(write=False)
    return array


def _align(params, points_batch: tuple[int, ...], core: tuple[int, ...], name: str) -> np.ndarray:
    """Reshape ``(*B, *core)`` params to ``(*B, 1, ..., 1, *core)`` so ``B`` meets the points' leading dims."""
    params = np.asarray(params, dtype=np.float64)
    n_core = len(core)
    if params.ndim < n_core or params.shape[params.ndim - n_core :] != core:
        raise ValueError(f"{name} must have shape (..., {', '.join(map(str, core))}), got {params.shape}")
    batch = params.shape[: params.ndim - n_core]
    leading = points_batch[: len(batch)]
    if len(batch) > len(points_batch) or any(b != p and 1 not in (b, p) for b, p in zip(batch, leading, strict=True)):
        raise ValueError(f"{name} batch shape {batch} does not match the leading dims of the points' {points_batch}")
    return params.reshape(batch + (1,) * (len(points_batch) - len(batch)) + core)


def _points(points, width: int, name: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim < 1 or points.shape[-1] != width:
        raise ValueError(f"{name} must have shape (..., {width}), got {points.shape}")
    return points


def quaternion_to_matrix(quaternion) -> np.ndarray:
    """Rotation matrix ``(..., 3, 3)`` of a unit quaternion ``(..., 4)`` ordered ``[w, x, y, z]``.

    The matrix rotates the same way as the quaternion (``R v == q v q*``). Norms off by more
    than 1e-3 raise ``ValueError``; smaller drift is normalised away.
    """
    q = _points(quaternion, 4, "quaternion")
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if not np.all(np.abs(norm - 1.0) < 1e-3):
        raise ValueError(f"quaternion must be unit length [w, x, y, z], got norms {norm[..., 0]}")
    w, x, y, z = np.moveaxis(q / norm, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def _rigid(points, rotation, centre, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    points = _points(points, 3, name)
    batch = points.shape[:-1]
    return points, _align(rotation, batch, (3, 3), "rotation"), _align(centre, batch, (3,), "centre")


def world_to_camera(points_world, rotation, centre) -> np.ndarray:
    """``R @ (X - C)``: points ``(..., 3)`` mm world -> ``(..., 3)`` mm camera; ``R`` (..., 3, 3), ``C`` (..., 3) mm."""
    points_world, rotation, centre = _rigid(points_world, rotation, centre, "points_world")
    return np.matmul(rotation, (points_world - centre)[..., None])[..., 0]


def camera_to_world(points_cam, rotation, centre) -> np.ndarray:
    """``R^T @ X + C``, the inverse of ``world_to_camera``: ``(..., 3)`` mm camera -> ``(..., 3)`` mm world."""
    points_cam, rotation, centre = _rigid(points_cam, rotation, centre, "points_cam")
    return np.matmul(np.swapaxes(rotation, -1, -2), points_cam[..., None])[..., 0] + centre


def _lens_terms(xy: np.ndarray, radial: np.ndarray, tangential: np.ndarray):
    x, y = xy[..., 0], xy[..., 1]
    k1, k2, k3 = radial[..., 0], radial[..., 1], radial[..., 2]
    p1, p2 = tangential[..., 0], tangential[..., 1]
    r2 = x * x + y * y
    scale = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3)) + p1 * y + p2 * x
    return x, y, r2, scale, (k1 + r2 * (2.0 * k2 + 3.0 * r2 * k3)), p1, p2


def distort(xy_normalized, radial, tangential) -> np.ndarray:
    """Human3.6M lens model: undistorted ``(..., 2)`` normalized coords -> distorted ``(..., 2)``.

    ``radial`` (..., 3) = [k1, k2, k3]; ``tangential`` (..., 2) = [p1, p2] in metadata.xml order.
    """
    xy = _points(xy_normalized, 2, "xy_normalized")
    radial = _align(radial, xy.shape[:-1], (3,), "radial")
    tangential = _align(tangential, xy.shape[:-1], (2,), "tangential")
    x, y, r2, scale, _, p1, p2 = _lens_terms(xy, radial, tangential)
    return np.stack([x * scale + p2 * r2, y * scale + p1 * r2], axis=-1)


def undistort(xy_distorted, radial, tangential, iterations: int = 30, tolerance: float = 1e-13) -> np.ndarray:
    """Invert ``distort`` by vectorised Newton steps: distorted ``(..., 2)`` -> undistorted ``(..., 2)`` normalized.

    Stops once every residual ``|distort(x) - x_d|`` is below ``tolerance`` (normalized units);
    raises ``ValueError`` naming how many points have not converged after ``iterations`` steps
    (e.g. far outside the image, where the lens polynomial folds over).
    """
    if iterations < 1 or not tolerance > 0:
        raise ValueError(f"iterations must be >= 1 and tolerance > 0, got {iterations}, {tolerance}")
    target = _points(xy_distorted, 2, "xy_distorted")
    radial = _align(radial, target.shape[:-1], (3,), "radial")
    tangential = _align(tangential, target.shape[:-1], (2,), "tangential")
    finite = np.all(np.isfinite(target), axis=-1)  # non-finite inputs propagate as NaN, never "fail"
    xy = target.copy()
    for step in itertools.count():
        x, y, r2, scale, d_radial, p1, p2 = _lens_terms(xy, radial, tangential)
        residual = np.stack([x * scale + p2 * r2, y * scale + p1 * r2], axis=-1) - target
        unconverged = finite & ~np.all(np.abs(residual) <= tolerance, axis=-1)
        if not np.any(unconverged):
            return xy
        if step == iterations:
            raise ValueError(f"undistort did not converge for {np.count_nonzero(unconverged)} of {finite.size} points")
        # Jacobian of distort: d(scale)/dx = 2 x d_radial + p2, d(scale)/dy = 2 y d_radial + p1.
        ds_dx, ds_dy = 2.0 * x * d_radial + p2, 2.0 * y * d_radial + p1
        j00, j01 = scale + x * ds_dx + 2.0 * p2 * x, x * ds_dy + 2.0 * p2 * y
        j10, j11 = y * ds_dx + 2.0 * p1 * x, scale + y * ds_dy + 2.0 * p1 * y
        det = j00 * j11 - j01 * j10
        rx, ry = residual[..., 0], residual[..., 1]
        with np.errstate(divide="ignore", invalid="ignore"):  # a singular Jacobian shows up as unconverged
            xy = xy - np.stack([(j11 * rx - j01 * ry) / det, (j00 * ry - j10 * rx) / det], axis=-1)


def _lens_params(intrinsics, distortion, batch: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Aligned (focal, principal point, radial, tangential) from ``(..., 4)`` intrinsics and ``(..., 5)`` distortion."""
    intrinsics = _align(intrinsics, batch, (4,), "intrinsics")
    distortion = _align(distortion, batch, (5,), "distortion")
    return intrinsics[..., 0:2], intrinsics[..., 2:4], distortion[..., :3], distortion[..., 3:]


def project(points_cam, intrinsics, distortion) -> np.ndarray:
    """Camera-frame points ``(..., 3)`` mm -> pixels ``(..., 2)`` (u right, v down) through the H36M lens.

    ``intrinsics`` (..., 4) = [fx, fy, cx, cy] px; ``distortion`` (..., 5) = [k1, k2, k3, p1, p2]
    (see the module docstring for the broadcasting rule). Points with ``Z <= 0`` raise ``ValueError``.
    """
    points_cam = _points(points_cam, 3, "points_cam")
    behind = int(np.count_nonzero(points_cam[..., 2] <= 0))
    if behind:
        raise ValueError(f"{behind} of {points_cam[..., 2].size} points are at or behind the camera (Z <= 0)")
    focal, principal, radial, tangential = _lens_params(intrinsics, distortion, points_cam.shape[:-1])
    return distort(points_cam[..., :2] / points_cam[..., 2:3], radial, tangential) * focal + principal


def pixel_rays(pixels, intrinsics, distortion, iterations: int = 30) -> np.ndarray:
    """Pixels ``(..., 2)`` -> unit ray directions ``(..., 3)`` in the camera frame (Z > 0).

    The inverse of ``project`` up to depth; same parameters and broadcasting rule.
    """
    pixels = _points(pixels, 2, "pixels")
    focal, principal, radial, tangential = _lens_params(intrinsics, distortion, pixels.shape[:-1])
    xy = undistort((pixels - principal) / focal, radial, tangential, iterations=iterations)
    rays = np.concatenate([xy, np.ones_like(xy[..., :1])], axis=-1)
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera. Arrays are float64 and read-only.

    ``radial`` (3,) = [k1, k2, k3]; ``tangential`` (2,) = [p1, p2] in metadata.xml order;
    ``rotation`` (3, 3) world->camera; ``centre`` (3,) camera centre, mm, world frame; pixels for the rest.
    """

    camera_id: str
    fx: float
    fy: float
    cx: float
    cy: float
    radial: np.ndarray
    tangential: np.ndarray
    rotation: np.ndarray
    centre: np.ndarray
    res_w: int
    res_h: int

    def __post_init__(self) -> None:
        for name in ("fx", "fy", "cx", "cy"):
            value = float(getattr(self, name))
            if not np.isfinite(value) or (name in ("fx", "fy") and value <= 0):
                raise ValueError(f"Camera {self.camera_id}: {name} must be finite (and > 0 for focal), got {value}")
            object.__setattr__(self, name, value)
        for name, shape in (("radial", (3,)), ("tangential", (2,)), ("rotation", (3, 3)), ("centre", (3,))):
            object.__setattr__(self, name, _frozen(getattr(self, name), shape, f"Camera {self.camera_id}: {name}"))
        orthonormal = np.allclose(self.rotation @ self.rotation.T, np.eye(3), atol=1e-5)
        if not (orthonormal and np.linalg.det(self.rotation) > 0):
            raise ValueError(f"Camera {self.camera_id}: rotation must be a proper rotation matrix, got {self.rotation}")
        if int(self.res_w) < 1 or int(self.res_h) < 1:
            raise ValueError(f"Camera {self.camera_id}: resolution must be positive, got {self.res_w}x{self.res_h}")
        object.__setattr__(self, "res_w", int(self.res_w))
        object.__setattr__(self, "res_h", int(self.res_h))

    @property
    def intrinsics(self) -> np.ndarray:
        """(4,) [fx, fy, cx, cy] px."""
        return np.array([self.fx, self.fy, self.cx, self.cy])

    @property
    def distortion(self) -> np.ndarray:
        """(5,) [k1, k2, k3, p1, p2], tangential in metadata.xml order."""
        return np.concatenate([self.radial, self.tangential])

    def project_world(self, points_world) -> np.ndarray:
        """World points ``(..., 3)`` mm -> pixels ``(..., 2)``."""
        return project(world_to_camera(points_world, self.rotation, self.centre), self.intrinsics, self.distortion)


@lru_cache(maxsize=1)
def _parse_h36m_cameras() -> dict[str, dict[str, Camera]]:
    text = resources.files("patchpose").joinpath("data/h36m_cameras.json").read_text(encoding="utf-8")
    data = json.loads(text)
    cameras: dict[str, dict[str, Camera]] = {}
    for subject in H36M_CAMERA_SUBJECTS:
        by_id = cameras[subject] = {}
        for camera_id in H36M_CAMERA_IDS:
            intr, extr = data["intrinsics"][camera_id], data["extrinsics"][subject][camera_id]
            rotation = quaternion_to_matrix(
                extr["orientation_wxyz_cam_to_world"]
            ).T  # q turns camera->world; R is world->camera
            radial, tangential = [intr["k1"], intr["k2"], intr["k3"]], intr["p_metadata_order"]
            centre = extr["translation_mm_camera_centre_world"]
            focal_centre = (intr["fx"], intr["fy"], intr["cx"], intr["cy"])
            resolution = (intr["res_w"], intr["res_h"])
            by_id[camera_id] = Camera(camera_id, *focal_centre, radial, tangential, rotation, centre, *resolution)
    return cameras


def load_h36m_cameras() -> dict[str, dict[str, Camera]]:
    """All Human3.6M cameras with extrinsics: subject (S1, S5-S9, S11) -> camera id -> ``Camera``."""
    return {subject: dict(by_id) for subject, by_id in _parse_h36m_cameras().items()}


def h36m_camera(subject: str, camera_id: str) -> Camera:
    """The ``Camera`` of one subject's session; ``KeyError`` names the subjects / ids that exist."""
    cameras = _parse_h36m_cameras()
    if subject not in cameras:
        raise KeyError(f"no Human3.6M cameras for subject {subject!r}; known subjects: {', '.join(cameras)}")
    if camera_id not in cameras[subject]:
        raise KeyError(f"no Human3.6M camera {camera_id!r}; known camera ids: {', '.join(H36M_CAMERA_IDS)}")
    return cameras[subject][camera_id]
