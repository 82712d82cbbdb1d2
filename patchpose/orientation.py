"""OriNet limb orientations as the refinement module uses them (paper §3.2, Eq. 1 and Eq. 2).

Each of the 16 limbs ``k = (child_k, parent_k)`` of ``H36M.limbs`` gets an orientation vector

    U_k = (X[child_k] - X[parent_k]) / mean_mm[k]                       (unitless)

where ``mean_mm[k]`` is the limb's mean bone length over a training split. Shapes and frames:
orientations are ``(N, 16, 3)`` unitless in the poses' frame (camera frame in this pipeline);
poses are ``(N, 17, 3)`` mm. Decoding rebuilds a pose root-to-leaves along the skeleton tree,
``X[child_k] = X[parent_k] + U_k * mean_mm[k]``, from a given root position (default zero, i.e.
root-relative).

Linear algebra: the rebuild is linear in ``U`` (it is a fixed sum of scaled limb vectors per joint),
and encoding is exact, so for any initial pose ``X0`` and ground truth ``Xgt``

    X0 + residual_pose(U_gt - U_0) = X0 + (Xgt - Xgt[root]) - (X0 - X0[root]) = Xgt - Xgt[root] + X0[root],

i.e. the ideal residual (Eq. 2's target) fixes every limb and keeps the initial root. Note the paper
encodes the *direction with its length* (normalised by a statistic, not by each pose's own length),
which is what makes this round trip exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from patchpose.skeleton import H36M

__all__ = [
    "BoneStatistics",
    "bone_lengths",
    "bone_statistics",
    "encode_orientation",
    "decode_orientation",
    "residual_pose",
    "refine",
    "orientation_residual_target",
]

NUM_JOINTS = H36M.num_joints
NUM_LIMBS = H36M.num_limbs


def _finite_array(values, shape_tail: tuple[int, ...], name: str) -> np.ndarray:
    """``values`` as float64 ``(N, *shape_tail)``; ValueError on a wrong shape or any NaN/inf."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, shape_tail))}), got {array.shape}")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} contains {bad} non-finite values (NaN or inf)")
    return array


def _poses(poses, name: str = "poses") -> np.ndarray:
    return _finite_array(poses, (NUM_JOINTS, 3), name)


def _orientations(orientations, name: str = "orientations") -> np.ndarray:
    return _finite_array(orientations, (NUM_LIMBS, 3), name)


def _limb_vectors(poses: np.ndarray) -> np.ndarray:
    """(N, 17, 3) mm -> (N, 16, 3) mm, ``X[child_k] - X[parent_k]`` per limb."""
    return poses[:, H36M.limb_children] - poses[:, H36M.limb_parents]


def bone_lengths(poses) -> np.ndarray:
    """Bone lengths ``(N, 16)`` mm of poses ``(N, 17, 3)`` mm (any frame), limb order of ``H36M.limbs``."""
    return np.linalg.norm(_limb_vectors(_poses(poses)), axis=-1)


def _frozen_vector(values, name: str) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    if array.shape != (NUM_LIMBS,):
        raise ValueError(f"{name} must have shape ({NUM_LIMBS},), got {array.shape}")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} contains {bad} non-finite values (NaN or inf)")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class BoneStatistics:
    """Per-limb bone length statistics of a training split (limb order of ``H36M.limbs``).

    ``mean_mm`` (16,) mm, every entry > 0 (it divides orientations); ``std_mm`` (16,) mm, >= 0
    (population standard deviation); ``num_poses`` the number of training poses, >= 1.
    Arrays are read-only copies. Compare two instances with :meth:`equals`.
    """

    mean_mm: np.ndarray
    std_mm: np.ndarray
    num_poses: int
    limb_names: tuple[str, ...] = field(default=H36M.limb_names, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean_mm", _frozen_vector(self.mean_mm, "mean_mm"))
        object.__setattr__(self, "std_mm", _frozen_vector(self.std_mm, "std_mm"))
        if np.any(self.mean_mm <= 0):
            bad = [H36M.limb_names[k] for k in np.flatnonzero(self.mean_mm <= 0)]
            raise ValueError(f"mean_mm must be > 0 for every limb; non-positive for {', '.join(bad)}")
        if np.any(self.std_mm < 0):
            raise ValueError(f"std_mm must be >= 0, got {self.std_mm.tolist()}")
        if isinstance(self.num_poses, bool) or not isinstance(self.num_poses, (int, np.integer)):
            raise ValueError(f"num_poses must be an int, got {type(self.num_poses).__name__}")
        if self.num_poses < 1:
            raise ValueError(f"num_poses must be >= 1, got {self.num_poses}")
        object.__setattr__(self, "num_poses", int(self.num_poses))

    def equals(self, other: BoneStatistics) -> bool:
        """Exact equality of all fields."""
        return (
            np.array_equal(self.mean_mm, other.mean_mm)
            and np.array_equal(self.std_mm, other.std_mm)
            and self.num_poses == other.num_poses
        )

    def to_dict(self) -> dict:
        """JSON-ready dict: ``mean_mm``/``std_mm`` lists of 16 floats, ``num_poses``, ``limb_names``."""
        return {
            "mean_mm": self.mean_mm.tolist(),
            "std_mm": self.std_mm.tolist(),
            "num_poses": self.num_poses,
            "limb_names": list(self.limb_names),
        }

    @classmethod
    def from_dict(cls, data: dict) -> BoneStatistics:
        """Inverse of :meth:`to_dict`; ValueError on missing keys, bad values or a different limb order."""
        missing = {"mean_mm", "std_mm", "num_poses"} - set(data)
        if missing:
            raise ValueError(f"bone statistics lack keys: {', '.join(sorted(missing))}")
        names = data.get("limb_names")
        if names is not None and tuple(names) != H36M.limb_names:
            raise ValueError(f"limb_names {list(names)} do not match the H36M limb order {list(H36M.limb_names)}")
        return cls(mean_mm=data["mean_mm"], std_mm=data["std_mm"], num_poses=data["num_poses"])


def bone_statistics(train_poses) -> BoneStatistics:
    """Mean and population std of each limb's length over ``train_poses`` (N >= 1, 17, 3) mm, any frame."""
    lengths = bone_lengths(train_poses)
    if lengths.shape[0] == 0:
        raise ValueError("train_poses is empty; bone statistics need at least one pose")
    return BoneStatistics(mean_mm=lengths.mean(axis=0), std_mm=lengths.std(axis=0), num_poses=lengths.shape[0])


def _check_stats(stats) -> BoneStatistics:
    if not isinstance(stats, BoneStatistics):
        raise ValueError(f"stats must be a BoneStatistics, got {type(stats).__name__}")
    return stats


def encode_orientation(poses, stats: BoneStatistics) -> np.ndarray:
    """Poses ``(N, 17, 3)`` mm, any frame -> orientations ``(N, 16, 3)`` unitless, same frame.

    ``U_k = (X[child_k] - X[parent_k]) / stats.mean_mm[k]``; independent of the root position.
    """
    stats = _check_stats(stats)
    return _limb_vectors(_poses(poses)) / stats.mean_mm[None, :, None]


def decode_orientation(orientations, stats: BoneStatistics, root=None) -> np.ndarray:
    """Orientations ``(N, 16, 3)`` unitless -> poses ``(N, 17, 3)`` mm, rebuilt along the skeleton tree.

    ``X[root] = root`` (``(N, 3)`` mm; zeros when None, giving a root-relative pose), then for each limb
    in ``H36M.limbs`` order (every parent precedes its child) ``X[child_k] = X[parent_k] + U_k * mean_mm[k]``.
    Vectorised over N. Inverse of :func:`encode_orientation` up to the root position.
    """
    stats = _check_stats(stats)
    orientations = _orientations(orientations)
    num_frames = orientations.shape[0]
    poses = np.zeros((num_frames, NUM_JOINTS, 3), dtype=np.float64)
    if root is not None:
        root = _finite_array(root, (3,), "root")
        if root.shape[0] != num_frames:
            raise ValueError(f"root has {root.shape[0]} frames but orientations have {num_frames}")
        poses[:, 0] = root
    limb_vectors_mm = orientations * stats.mean_mm[None, :, None]
    for k, (child, parent) in enumerate(H36M.limbs):
        poses[:, child] = poses[:, parent] + limb_vectors_mm[:, k]
    return poses


def residual_pose(delta_orientations, stats: BoneStatistics) -> np.ndarray:
    """Residual orientations ``ΔU`` (N, 16, 3) unitless -> residual pose ``(N, 17, 3)`` mm with ``ΔX[root] = 0``.

    The paper's ``U_norm(ΔU)`` (scaled back by the mean bone lengths) rebuilt along the skeleton tree.
    """
    return decode_orientation(delta_orientations, stats, root=None)


def refine(initial_poses, delta_orientations, stats: BoneStatistics) -> np.ndarray:
    """Eq. 1: ``X1 = X0 + residual_pose(ΔU)``; ``(N, 17, 3)`` mm camera frame, root of ``X0`` kept."""
    initial_poses = _poses(initial_poses, "initial_poses")
    delta_orientations = _orientations(delta_orientations, "delta_orientations")
    if delta_orientations.shape[0] != initial_poses.shape[0]:
        raise ValueError(
            f"delta_orientations has {delta_orientations.shape[0]} frames but initial_poses has "
            f"{initial_poses.shape[0]}"
        )
    return initial_poses + residual_pose(delta_orientations, stats)


def orientation_residual_target(gt_poses, initial_poses, stats: BoneStatistics) -> np.ndarray:
    """Eq. 2's regression target ``U_gt - U_init``: ``(N, 16, 3)`` unitless from two ``(N, 17, 3)`` mm poses.

    Both poses must be in the same frame (camera frame here); their root positions do not matter.
    """
    gt_poses = _poses(gt_poses, "gt_poses")
    initial_poses = _poses(initial_poses, "initial_poses")
    if gt_poses.shape != initial_poses.shape:
        raise ValueError(f"gt_poses {gt_poses.shape} and initial_poses {initial_poses.shape} differ in shape")
    return encode_orientation(gt_poses, stats) - encode_orientation(initial_poses, stats)
