"""Synthetic subjects: body proportions and limb thickness.

Each subject has its own bone lengths (varied around Human3.6M's training
means) and its own limb thickness. Left and right are kept symmetric, as real
bodies nearly are, so that left/right limbs look alike and only context
(or a segmentation) tells them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patchpose.skeleton import H36M

__all__ = ["H36M_MEAN_BONE_LENGTHS_MM", "SubjectBody", "make_subject"]

# (16,) mm, limb order of ``H36M.limbs`` (limb k ends in joint k + 1). Rounded
# means of the Human3.6M training subjects (S1, S5, S6, S7, S8).
H36M_MEAN_BONE_LENGTHS_MM = np.array(
    [133, 454, 450, 133, 454, 450, 233, 257, 121, 115, 151, 279, 250, 151, 279, 250], dtype=np.float64
)
H36M_MEAN_BONE_LENGTHS_MM.setflags(write=False)

# (16,) mm capsule radius per limb at unit thickness; the torso limbs (hips,
# spine, shoulders) are drawn by the torso shapes, their radius sets the
# torso's half-depth.
_BASE_LIMB_RADII_MM = np.array([80, 68, 48, 80, 68, 48, 95, 105, 48, 48, 58, 44, 36, 58, 44, 36], dtype=np.float64)

# Joint pairs that mirror each other's limbs (child joints 1..3 <-> 4..6, 14..16 <-> 11..13).
_MIRROR_LIMBS = [(0, 3), (1, 4), (2, 5), (13, 10), (14, 11), (15, 12)]


@dataclass(frozen=True)
class SubjectBody:
    """One synthetic subject's shape.

    bone_lengths_mm: (16,) mm, limb order of ``H36M.limbs``.
    limb_radii_mm: (16,) mm, capsule radius per limb.
    head_radius_mm: radius of the head ellipsoid's middle axis, mm.
    hand_length_mm / foot_length_mm: wrist->fingertip and ankle->toe, mm.
    """

    name: str
    bone_lengths_mm: np.ndarray
    limb_radii_mm: np.ndarray
    head_radius_mm: float
    hand_length_mm: float
    foot_length_mm: float

    def __post_init__(self) -> None:
        for field in ("bone_lengths_mm", "limb_radii_mm"):
            value = np.asarray(getattr(self, field), dtype=np.float64)
            if value.shape != (H36M.num_limbs,) or not np.all(np.isfinite(value)) or np.any(value <= 0):
                raise ValueError(f"SubjectBody {self.name}: {field} must be 16 positive finite mm, got {value}")
            value.setflags(write=False)
            object.__setattr__(self, field, value)


def make_subject(name: str, rng: np.random.Generator, proportion_sd: float = 0.04, thickness_sd: float = 0.1):
    """Draw a subject: global scale ~ N(1, 0.05), per-bone factors ~ N(1, proportion_sd),
    thickness factor ~ N(1, thickness_sd) (clipped to +-2.5 sd); left/right symmetric.

    Returns a ``SubjectBody``; deterministic for a given ``rng`` state.
    """
    if proportion_sd < 0 or thickness_sd < 0:
        raise ValueError("proportion_sd and thickness_sd must be >= 0")
    scale = 1.0 + np.clip(rng.normal(0.0, 0.05), -0.125, 0.125)
    per_bone = 1.0 + np.clip(
        rng.normal(0.0, proportion_sd, size=H36M.num_limbs), -2.5 * proportion_sd, 2.5 * proportion_sd
    )
    per_radius = 1.0 + np.clip(rng.normal(0.0, thickness_sd / 2, size=H36M.num_limbs), -thickness_sd, thickness_sd)
    for a, b in _MIRROR_LIMBS:
        per_bone[b] = per_bone[a]
        per_radius[b] = per_radius[a]
    thickness = 1.0 + np.clip(rng.normal(0.0, thickness_sd), -2.5 * thickness_sd, 2.5 * thickness_sd)
    return SubjectBody(
        name=name,
        bone_lengths_mm=H36M_MEAN_BONE_LENGTHS_MM * scale * per_bone,
        limb_radii_mm=_BASE_LIMB_RADII_MM * thickness * per_radius,
        head_radius_mm=float(100.0 * scale * (1.0 + rng.normal(0.0, 0.03))),
        hand_length_mm=float(180.0 * scale),
        foot_length_mm=float(230.0 * scale),
    )
