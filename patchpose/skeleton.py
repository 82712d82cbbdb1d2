"""The Human3.6M 17-joint skeleton: one immutable table every stage uses.

Joint order is the common 17-joint Human3.6M subset (as in VideoPose3D and
Martinez et al.), selected from the 32 raw motion-capture joints by
``RAW32_TO_H36M17``. Index 0 (pelvis) is the root.

The 16 limbs are ``(child, parent)`` pairs, one per non-root joint, in the
order of the child index: limb ``k`` ends in joint ``k + 1``. Every parent
index is smaller than its child's, so iterating limbs in this order visits
the tree root-to-leaves. The updater's 48-D output is these 16 limbs x xyz,
flattened limb-major: ``out.reshape(16, 3)[k]`` belongs to ``LIMBS[k]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Skeleton",
    "H36M",
    "JOINT_NAMES",
    "PARENTS",
    "LIMBS",
    "NUM_JOINTS",
    "NUM_LIMBS",
    "NUM_RAW_JOINTS",
    "RAW32_TO_H36M17",
]

NUM_RAW_JOINTS = 32  # joints of the raw Human3.6M motion capture, which ``raw32_selection`` indexes


def _frozen_array(values, dtype) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Skeleton:
    """A kinematic tree. All sequences are tuples; array views are read-only."""

    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    left_joints: tuple[int, ...]
    right_joints: tuple[int, ...]
    raw32_selection: tuple[int, ...]

    def __post_init__(self) -> None:
        """``ValueError`` naming the broken rule unless the table is a tree as the module docstring describes."""

        def fail(problem: str):
            raise ValueError(f"Skeleton: {problem}")

        for field in ("joint_names", "parents", "left_joints", "right_joints", "raw32_selection"):
            if not isinstance(getattr(self, field), tuple):
                fail(f"{field} must be a tuple, got {type(getattr(self, field)).__name__}")
        names, n = self.joint_names, len(self.joint_names)
        if n < 2:
            fail(f"needs a root and at least one limb, got {n} joints")
        if len(set(names)) != n:
            fail(f"joint names must be unique, repeated: {sorted({name for name in names if names.count(name) > 1})}")
        if len(self.parents) != n:
            fail(f"one parent per joint, got {len(self.parents)} parents for {n} joints")
        if self.parents[0] != -1:
            fail(f"joint 0 ({names[0]}) must be the root (parent -1), got parent {self.parents[0]}")
        for joint, parent in enumerate(self.parents[1:], start=1):
            if not 0 <= parent < joint:
                fail(f"the parent of joint {joint} ({names[joint]}) must come before it (0..{joint - 1}), got {parent}")
        if len(self.left_joints) != len(self.right_joints):
            fail(
                f"left and right joints must pair up, got {len(self.left_joints)} left, {len(self.right_joints)} right"
            )
        sides = self.left_joints + self.right_joints
        if any(not 0 < joint < n for joint in sides) or len(set(sides)) != len(sides):
            fail(
                f"left and right joints must be distinct non-root joints 1..{n - 1}, got left {self.left_joints}, "
                f"right {self.right_joints}"
            )
        raw = self.raw32_selection
        if len(raw) != n or len(set(raw)) != n or any(not 0 <= index < NUM_RAW_JOINTS for index in raw):
            fail(
                f"raw32_selection must pick {n} distinct raw joints, one per joint, each 0..{NUM_RAW_JOINTS - 1}, "
                f"got {raw}"
            )

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_limbs(self) -> int:
        return self.num_joints - 1

    @property
    def limbs(self) -> tuple[tuple[int, int], ...]:
        """``(child, parent)`` per limb, limb ``k`` ending in joint ``k + 1``."""
        return tuple((child, self.parents[child]) for child in range(1, self.num_joints))

    @property
    def limb_children(self) -> np.ndarray:
        """(16,) int child joint of each limb."""
        return _frozen_array([c for c, _ in self.limbs], np.int64)

    @property
    def limb_parents(self) -> np.ndarray:
        """(16,) int parent joint of each limb."""
        return _frozen_array([p for _, p in self.limbs], np.int64)

    @property
    def limb_names(self) -> tuple[str, ...]:
        """``"parent->child"`` joint names per limb, e.g. ``"left_knee->left_ankle"``."""
        return tuple(f"{self.joint_names[p]}->{self.joint_names[c]}" for c, p in self.limbs)

    @property
    def flip_permutation(self) -> np.ndarray:
        """(17,) index array swapping each left joint with its right partner."""
        perm = list(range(self.num_joints))
        for left, right in zip(self.left_joints, self.right_joints, strict=True):
            perm[left], perm[right] = right, left
        return _frozen_array(perm, np.int64)

    def joint_index(self, name: str) -> int:
        """Index of joint ``name``; ``KeyError`` naming the known joints otherwise."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"unknown joint {name!r}; known joints: {', '.join(self.joint_names)}") from None


H36M = Skeleton(
    joint_names=(
        "pelvis",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "spine",
        "thorax",
        "neck_nose",
        "head",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    left_joints=(4, 5, 6, 11, 12, 13),
    right_joints=(1, 2, 3, 14, 15, 16),
    raw32_selection=(0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27),
)

JOINT_NAMES = H36M.joint_names
PARENTS = H36M.parents
LIMBS = H36M.limbs
NUM_JOINTS = H36M.num_joints
NUM_LIMBS = H36M.num_limbs
RAW32_TO_H36M17 = H36M.raw32_selection
