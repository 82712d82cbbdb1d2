"""Joint names of 3D prediction files: aliases, named orders, and the mapping onto ``H36M``'s order.

A prediction file declares its 17 joints by name, in the order its ``poses_3d`` holds them. Names are
matched after normalisation (lower case, everything but letters and digits dropped, so ``"R_Hip"``,
``"r-hip"`` and ``"RHip"`` are one name) against the aliases below: our own ``H36M.joint_names``,
VideoPose3D's names (which are Martinez et al.'s Human3.6M names), and a few spelled-out variants.
The named orders ``h36m``, ``videopose3d`` and ``martinez`` stand for whole 17-name lists.

Note: VideoPose3D's (and Martinez's) 17-joint order *is* our order, joint for joint; only the names
differ. A file in another order is still accepted when it names its joints, and is permuted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from patchpose.poses3d.errors import PredictionFileError
from patchpose.skeleton import H36M

__all__ = [
    "JOINT_ALIASES",
    "NAMED_ORDERS",
    "VIDEOPOSE3D_JOINT_NAMES",
    "canonical_joint",
    "resolve_joint_names",
    "permutation_to_h36m",
]

VIDEOPOSE3D_JOINT_NAMES: tuple[str, ...] = (
    "Hip",
    "RHip",
    "RKnee",
    "RFoot",
    "LHip",
    "LKnee",
    "LFoot",
    "Spine",
    "Thorax",
    "Neck/Nose",
    "Head",
    "LShoulder",
    "LElbow",
    "LWrist",
    "RShoulder",
    "RElbow",
    "RWrist",
)

NAMED_ORDERS: dict[str, tuple[str, ...]] = {
    "h36m": H36M.joint_names,
    "videopose3d": VIDEOPOSE3D_JOINT_NAMES,
    "martinez": VIDEOPOSE3D_JOINT_NAMES,
}

# Our joint name -> the other names it goes by (our own name and VideoPose3D's are always included).
_EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "pelvis": ("root", "hips"),
    "right_hip": ("r_hip",),
    "right_knee": ("r_knee",),
    "right_ankle": ("r_ankle", "right_foot", "r_foot"),
    "left_hip": ("l_hip",),
    "left_knee": ("l_knee",),
    "left_ankle": ("l_ankle", "left_foot", "l_foot"),
    "spine": ("torso",),
    "thorax": (),
    "neck_nose": ("nose", "neck/nose"),
    "head": (),
    "left_shoulder": ("l_shoulder",),
    "left_elbow": ("l_elbow",),
    "left_wrist": ("l_wrist",),
    "right_shoulder": ("r_shoulder",),
    "right_elbow": ("r_elbow",),
    "right_wrist": ("r_wrist",),
}


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _alias_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for ours, theirs in zip(H36M.joint_names, VIDEOPOSE3D_JOINT_NAMES, strict=True):
        for alias in (ours, theirs, *_EXTRA_ALIASES[ours]):
            key = _normalise(alias)
            assert table.get(key, ours) == ours, f"alias {alias!r} is ambiguous"
            table[key] = ours
    return table


JOINT_ALIASES: dict[str, str] = _alias_table()
"""Normalised alias -> our joint name."""


def _known_names() -> str:
    return (
        f"ours ({', '.join(H36M.joint_names)}), VideoPose3D's ({', '.join(VIDEOPOSE3D_JOINT_NAMES)}), "
        f"named orders {', '.join(NAMED_ORDERS)}"
    )


def canonical_joint(name: str) -> str | None:
    """Our joint name for ``name`` (any known alias, any case/separators); ``None`` if unknown."""
    return JOINT_ALIASES.get(_normalise(name)) if isinstance(name, str) else None


def resolve_joint_names(path: str | os.PathLike, declared) -> tuple[str, ...]:
    """The joint names a file or config declares: a named order (``"h36m"``, ...) or a list of names.

    Returns the names as given (not yet mapped). ``PredictionFileError`` naming ``path`` for ``None``
    (no order declared anywhere) or an unknown named order.
    """
    if declared is None:
        raise PredictionFileError(
            path,
            "the joint order is unknown: the file has no joint_names and the config gives none; declare "
            f"joint_names as a list of 17 names or one of the named orders {', '.join(NAMED_ORDERS)}",
        )
    if isinstance(declared, str):
        if declared.lower() not in NAMED_ORDERS:
            raise PredictionFileError(
                path, f"unknown named joint order {declared!r}; known orders: {', '.join(NAMED_ORDERS)}"
            )
        return NAMED_ORDERS[declared.lower()]
    return tuple(str(name) for name in declared)


def permutation_to_h36m(path: str | os.PathLike, names: Sequence[str]) -> np.ndarray:
    """(17,) int index array ``perm`` with ``poses[:, perm]`` in ``H36M`` order, for a file whose joints are ``names``.

    ``PredictionFileError`` naming ``path`` if the list is not 17 names, holds an unknown name (the message
    lists the known names), or names one joint twice.
    """
    names = list(names)
    if len(names) != H36M.num_joints:
        raise PredictionFileError(
            path, f"joint_names lists {len(names)} joints, expected the {H36M.num_joints} Human3.6M joints"
        )
    ours = [canonical_joint(name) for name in names]
    unknown = [name for name, mapped in zip(names, ours, strict=True) if mapped is None]
    if unknown:
        raise PredictionFileError(
            path, f"unknown joint name(s) {', '.join(map(repr, unknown))}; known: {_known_names()}"
        )
    seen: dict[str, str] = {}
    for name, mapped in zip(names, ours, strict=True):
        if mapped in seen:
            raise PredictionFileError(path, f"joint names {seen[mapped]!r} and {name!r} both mean {mapped!r}")
        seen[mapped] = name
    return np.array([ours.index(joint) for joint in H36M.joint_names], dtype=np.int64)
