"""The body (and props) as ray-traceable primitives in the CAMERA frame (x right, y down, z forward; mm).

Three shapes (ray-cast by ``render.intersect`` / ``render.surface_normals``): ``Capsule``
(cylinder + hemispherical caps), ``Ellipsoid`` and ``OrientedBox``. Each carries a
part id (``patchpose.parts``), an ``AxisFrame`` its texture is laid out in, and a ``Material``.
``body_primitives`` builds a subject's body from 17 joints: segments flow into each other at the
joints (an elbow is upper arm meeting forearm, a wrist ends in a hand, an ankle in a foot).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patchpose.parts import PART_NAMES
from patchpose.skeleton import H36M
from patchpose.synthetic.appearance import Appearance, Material
from patchpose.synthetic.body import SubjectBody

__all__ = ["AxisFrame", "Capsule", "Ellipsoid", "OrientedBox", "body_primitives"]


def _vec(value, name: str) -> np.ndarray:
    array = np.array(value, dtype=np.float64)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be 3 finite numbers, got {value!r}")
    array.setflags(write=False)
    return array


def _unit(v: np.ndarray, fallback=None) -> np.ndarray:
    norm = np.linalg.norm(v)
    if norm < 1e-9:
        if fallback is None:
            raise ValueError(f"cannot normalise a zero vector {v}")
        return np.asarray(fallback, dtype=np.float64)
    return v / norm


def _perpendicular(axis: np.ndarray, hint: np.ndarray | None = None) -> np.ndarray:
    """A unit vector perpendicular to unit ``axis``: ``hint`` orthogonalised if usable, else any."""
    for candidate in ([] if hint is None else [hint]) + [np.eye(3)[int(np.argmin(np.abs(axis)))]]:
        v = candidate - (candidate @ axis) * axis
        if np.linalg.norm(v) > 0.1 * np.linalg.norm(candidate):
            return v / np.linalg.norm(v)
    raise AssertionError("unreachable: a basis vector is always usable")


def _rotation(value, name: str) -> np.ndarray:
    r = np.array(value, dtype=np.float64)
    if r.shape != (3, 3) or not np.allclose(r.T @ r, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
        raise ValueError(f"{name} must be a 3x3 rotation matrix (orthonormal, det +1)")
    r.setflags(write=False)
    return r


@dataclass(frozen=True, eq=False)
class AxisFrame:
    """Texture frame: ``origin`` (3,) mm, unit ``axis`` (3,), ``length`` mm, unit ``ref`` (3,) perpendicular
    to ``axis`` (the "front"); coordinates are along ``axis``, along ``axis x ref`` (lateral), along ``ref``."""

    origin: np.ndarray
    axis: np.ndarray
    length: float
    ref: np.ndarray = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "origin", _vec(self.origin, "AxisFrame.origin"))
        axis = _vec(self.axis, "AxisFrame.axis")
        if abs(np.linalg.norm(axis) - 1.0) > 1e-6 or not self.length > 0:
            raise ValueError("AxisFrame needs a unit axis and a positive length")
        ref = _perpendicular(axis, None if self.ref is None else np.asarray(self.ref, dtype=np.float64))
        object.__setattr__(self, "axis", axis)
        object.__setattr__(self, "ref", _vec(ref, "AxisFrame.ref"))
        object.__setattr__(self, "_basis", np.stack([axis, np.cross(axis, ref), ref], axis=1))

    def coordinates(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) camera-frame points -> (N, 3) mm (along axis, along axis x ref, along ref)."""
        return points @ self._basis - self.origin @ self._basis


def _check(part: int, material: Material) -> None:
    if not 0 <= part < len(PART_NAMES):
        raise ValueError(f"part id must lie in [0, {len(PART_NAMES) - 1}], got {part}")
    if not isinstance(material, Material):
        raise TypeError(f"material must be a Material, got {type(material).__name__}")


@dataclass(frozen=True, eq=False)
class Capsule:
    """Segment ``start``-``end`` (3,) mm swept by a sphere of ``radius`` mm. Default frame: start -> end."""

    start: np.ndarray
    end: np.ndarray
    radius: float
    part: int
    material: Material
    frame: AxisFrame | None = None
    name: str = "capsule"

    def __post_init__(self) -> None:
        a, b = _vec(self.start, "Capsule.start"), _vec(self.end, "Capsule.end")
        if not self.radius > 0:
            raise ValueError(f"Capsule {self.name}: radius must be > 0 mm, got {self.radius}")
        _check(self.part, self.material)
        object.__setattr__(self, "start", a)
        object.__setattr__(self, "end", b)
        if self.frame is None:
            axis = _unit(b - a, fallback=(0.0, -1.0, 0.0))
            object.__setattr__(self, "frame", AxisFrame(a, axis, max(float(np.linalg.norm(b - a)), self.radius)))

    def cull_segment(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(p0, p1, r): the shape lies inside the finite cylinder of radius r about segment p0-p1, i.e.
        every point of it projects onto the segment within r of it (used for culling). For a capsule the
        segment runs a radius past each end so that the caps are inside too."""
        reach = self.radius * _unit(self.end - self.start, fallback=(0.0, 0.0, 1.0))
        return self.start - reach, self.end + reach, float(self.radius)


@dataclass(frozen=True, eq=False)
class Ellipsoid:
    """Centre (3,) mm, ``rotation`` (3, 3) whose columns are the ellipsoid's axes in the camera frame,
    ``radii`` (3,) semi-axes in mm along those columns. Default frame: along the first column."""

    centre: np.ndarray
    rotation: np.ndarray
    radii: np.ndarray
    part: int
    material: Material
    frame: AxisFrame | None = None
    name: str = "ellipsoid"

    def __post_init__(self) -> None:
        object.__setattr__(self, "centre", _vec(self.centre, "Ellipsoid.centre"))
        object.__setattr__(self, "rotation", _rotation(self.rotation, "Ellipsoid.rotation"))
        radii = _vec(self.radii, "Ellipsoid.radii")
        if np.any(radii <= 0):
            raise ValueError(f"Ellipsoid {self.name}: radii must be > 0 mm, got {radii}")
        object.__setattr__(self, "radii", radii)
        _check(self.part, self.material)
        if self.frame is None:
            axis = self.rotation[:, 0]
            frame = AxisFrame(self.centre - radii[0] * axis, axis, 2.0 * radii[0], self.rotation[:, 2])
            object.__setattr__(self, "frame", frame)

    def cull_segment(self) -> tuple[np.ndarray, np.ndarray, float]:
        k = int(np.argmax(self.radii))
        half = self.radii[k] * self.rotation[:, k]
        return self.centre - half, self.centre + half, float(np.sort(self.radii)[1])


@dataclass(frozen=True, eq=False)
class OrientedBox:
    """A prop (e.g. the chair): ``centre`` (3,) mm, ``half_size`` (3,) mm, ``rotation`` (3, 3) box -> camera.
    Labelled background (part 0) unless told otherwise; ``material`` defaults to plain ``colour``."""

    centre: np.ndarray
    half_size: np.ndarray
    rotation: np.ndarray
    colour: np.ndarray = (0.45, 0.3, 0.2)
    material: Material | None = None
    part: int = 0
    frame: AxisFrame | None = None
    name: str = "box"

    def __post_init__(self) -> None:
        object.__setattr__(self, "centre", _vec(self.centre, "OrientedBox.centre"))
        half = _vec(self.half_size, "OrientedBox.half_size")
        if np.any(half <= 0):
            raise ValueError(f"OrientedBox {self.name}: half_size must be > 0 mm, got {half}")
        object.__setattr__(self, "half_size", half)
        object.__setattr__(self, "rotation", _rotation(self.rotation, "OrientedBox.rotation"))
        if self.material is None:
            object.__setattr__(self, "material", Material(colour=self.colour))
        _check(self.part, self.material)
        if self.frame is None:
            k = int(np.argmax(half))
            axis = self.rotation[:, k]
            frame = AxisFrame(self.centre - half[k] * axis, axis, 2.0 * half[k], self.rotation[:, (k + 1) % 3])
            object.__setattr__(self, "frame", frame)

    def cull_segment(self) -> tuple[np.ndarray, np.ndarray, float]:
        k = int(np.argmax(self.half_size))
        half = self.half_size[k] * self.rotation[:, k]
        return self.centre - half, self.centre + half, float(np.linalg.norm(np.delete(self.half_size, k)))


_PART = {name: i for i, name in enumerate(PART_NAMES)}


def body_primitives(joints: np.ndarray, body: SubjectBody, appearance: Appearance) -> list:
    """A subject's body as primitives in the camera frame.

    joints: (17, 3) mm, Human3.6M order, camera frame. body: radii, head/hand/foot sizes.
    appearance: the subject's materials (left and right limbs share them).
    Returns a list of ``Capsule`` / ``Ellipsoid``: torso (abdomen and chest ellipsoids, hips and
    shoulders capsules) sharing one texture frame pelvis -> thorax; neck capsule and head ellipsoid
    (part head); per side upper/lower arm and leg capsules, a hand along the forearm and a foot
    pointing forward from the ankle (perpendicular to the shin and the hip line).
    """
    j = np.asarray(joints, dtype=np.float64)
    if j.shape != (H36M.num_joints, 3) or not np.all(np.isfinite(j)):
        raise ValueError(f"joints must be ({H36M.num_joints}, 3) finite mm in the camera frame, got {j.shape}")
    if not isinstance(appearance, Appearance):
        raise TypeError("appearance must be an Appearance")
    radius = body.limb_radii_mm  # limb k ends in joint k + 1
    pelvis, spine, thorax, nose, head = j[0], j[7], j[8], j[9], j[10]
    up = _unit(thorax - pelvis, fallback=(0.0, -1.0, 0.0))
    hip_line = _unit(j[4] - j[1], fallback=_perpendicular(up))
    left = _perpendicular(up, _unit(j[11] - j[14], hip_line) + hip_line)
    forward = np.cross(left, up)
    torso_frame = AxisFrame(pelvis, up, max(float(np.linalg.norm(thorax - pelvis)), 1.0), forward)
    torso = appearance["torso"]
    half_hips, half_shoulders = np.linalg.norm(j[4] - j[1]) / 2, np.linalg.norm(j[11] - j[14]) / 2

    def ellipsoid(lo, hi, lateral, depth, name):
        axis = _unit(hi - lo, fallback=up)
        side = _perpendicular(axis, left)
        rotation = np.stack([side, axis, np.cross(side, axis)], axis=1)
        radii = (lateral, max(np.linalg.norm(hi - lo) / 2, depth), depth)
        return Ellipsoid((lo + hi) / 2, rotation, radii, _PART["torso"], torso, torso_frame, name)

    # abdomen and chest overlap well past the spine so the waist does not pinch
    abdomen = _unit(spine - pelvis, up), 0.6 * radius[6], 0.45 * np.linalg.norm(spine - pelvis)
    chest = _unit(thorax - spine, up), 0.45 * np.linalg.norm(thorax - spine), 0.4 * radius[7]
    prims: list = [
        ellipsoid(
            pelvis - abdomen[1] * abdomen[0],
            spine + abdomen[2] * abdomen[0],
            0.5 * (half_hips + half_shoulders) + 10,
            radius[6],
            "abdomen",
        ),
        ellipsoid(
            spine - chest[1] * chest[0], thorax + chest[2] * chest[0], 0.9 * half_shoulders, 0.95 * radius[7], "chest"
        ),
        Capsule(j[1], j[4], 0.9 * radius[0], _PART["torso"], appearance["waist"], name="hips"),
        Capsule(j[14], j[11], radius[10], _PART["torso"], torso, torso_frame, "shoulders"),
        Capsule(
            thorax, thorax + 0.85 * (nose - thorax), 0.9 * radius[8], _PART["head"], appearance["neck"], name="neck"
        ),
    ]
    # head: up from the thorax, facing where the nose is
    head_up = _unit(head - thorax, fallback=up)
    face = _perpendicular(head_up, (nose - thorax) if np.linalg.norm(nose - head) > 15.0 else forward)
    if face @ forward < -0.5:  # the nose joint is always in front; guard against a garbled head
        face = _perpendicular(head_up, forward)
    hr = body.head_radius_mm
    head_side = np.cross(head_up, face)
    centre = head - 0.8 * hr * head_up + 0.1 * hr * face
    head_frame = AxisFrame(centre, head_up, 1.12 * hr, face)
    prims.append(
        Ellipsoid(centre, np.stack([head_side, head_up, face], axis=1), (0.78 * hr, 1.12 * hr, hr),
                  _PART["head"], appearance["head"], head_frame, "head")
    )  # fmt: skip
    for side, (shoulder, elbow, wrist), (hip, knee, ankle) in (
        ("left", (11, 12, 13), (4, 5, 6)),
        ("right", (14, 15, 16), (1, 2, 3)),
    ):
        for (a, b), slot, part in (
            ((shoulder, elbow), "upper_arm", f"{side}_upper_arm"),
            ((elbow, wrist), "lower_arm", f"{side}_lower_arm"),
            ((hip, knee), "upper_leg", f"{side}_upper_leg"),
            ((knee, ankle), "lower_leg", f"{side}_lower_leg"),
        ):
            prims.append(Capsule(j[a], j[b], radius[b - 1], _PART[part], appearance[slot], name=part))
        # hand: a flat ellipsoid continuing the forearm, palm facing the body
        along = _unit(j[wrist] - j[elbow], fallback=-up)
        thick = _perpendicular(along, left if abs(along @ left) < 0.95 else up)
        length = body.hand_length_mm
        rotation = np.stack([along, np.cross(thick, along), thick], axis=1)
        radii = (0.5 * length, 0.26 * length, max(0.12 * length, 0.5 * radius[wrist - 1]))
        prims.append(
            Ellipsoid(j[wrist] + 0.5 * length * along, rotation, radii, _PART[f"{side}_hand"], appearance["hand"],
                      AxisFrame(j[wrist], along, length, thick), f"{side}_hand")
        )  # fmt: skip
        # foot: forward from the ankle, perpendicular to the shin and the hip line
        shin_up = _unit(j[knee] - j[ankle], fallback=up)
        toe = np.cross(hip_line, shin_up)
        toe = toe / np.linalg.norm(toe) if np.linalg.norm(toe) > 0.3 else _perpendicular(shin_up, forward)
        length = body.foot_length_mm
        rotation = np.stack([toe, np.cross(-shin_up, toe), -shin_up], axis=1)
        centre = j[ankle] + 0.3 * length * toe - 0.8 * radius[ankle - 1] * shin_up
        prims.append(
            Ellipsoid(centre, rotation, (0.62 * length, 0.2 * length, 0.17 * length), _PART[f"{side}_foot"],
                      appearance["foot"], AxisFrame(j[ankle], toe, length, -shin_up), f"{side}_foot")
        )  # fmt: skip
    return prims
