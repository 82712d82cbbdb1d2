"""Which frames belong together: the views of one pose, and the clusters the bootstrap resamples.

Both are integer ids ``(N,)`` int64, numbered 0, 1, ... in the order the groups first appear in the rows,
from the frame-id parts of a dataset store or a per-frame error table (the same columns).

* **Pose**: the frames that show one body configuration, the same (subject, action, subaction,
  frame_index) from any camera. On both datasets the cameras of one instant share the frame index (the
  synthetic world renders each pose from every camera; Human3.6M's four cameras are synchronised).
* **Cluster**: frames whose errors are not independent, so a resample must take or leave them together.
  It depends on the dataset, named by the store's ``source`` attribute:

  - ``"synthetic"``: a pose. Its views share one 3D pose and, largely, one error; different poses are
    drawn ``pose_spacing_frames`` apart (64 frames, 1.28 s, by default).
  - ``"h36m"``: a sequence (subject, action, subaction): its test frames are one continuous recording of one
    person, 64 frames apart, and neighbouring frames share the difficulty of the recording.

Every cluster lies inside one action (both keys hold the action), so a bootstrap stratified by action can
resample clusters within each action.
"""

from __future__ import annotations

import numpy as np

from patchpose.dataset_format import DatasetStore

__all__ = ["CLUSTER_KEYS", "group_ids", "pose_ids", "cluster_ids", "store_pose_ids", "store_cluster_ids"]

POSE_KEY = ("subject", "action", "subaction", "frame_index")
CLUSTER_KEYS = {"synthetic": POSE_KEY, "h36m": ("subject", "action", "subaction")}


def group_ids(*columns) -> np.ndarray:
    """(N,) int64 ids of the distinct rows of ``columns`` (each (N,)), numbered in order of first appearance."""
    arrays = [np.asarray(column) for column in columns]
    num_rows = arrays[0].shape[0] if arrays and arrays[0].ndim == 1 else -1
    if num_rows < 0 or any(array.shape != (num_rows,) for array in arrays):
        raise ValueError(f"group columns must be flat and of one length, got shapes {[a.shape for a in arrays]}")
    keys = np.rec.fromarrays(arrays) if num_rows else np.zeros(0)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.reshape(-1)]


def pose_ids(subject, action, subaction, frame_index) -> np.ndarray:
    """(N,) int64 pose of each frame (module docstring): its views share the id."""
    return group_ids(subject, action, subaction, frame_index)


def cluster_ids(source: str, subject, action, subaction, frame_index, *, where: str = "frames") -> np.ndarray:
    """(N,) int64 bootstrap cluster of each frame for a dataset of ``source`` (module docstring).

    ``ValueError`` naming ``where`` (the store or table) for a source without a cluster definition.
    """
    if source not in CLUSTER_KEYS:
        raise ValueError(
            f"{where}: no bootstrap clusters are defined for source {source!r}; known: {', '.join(CLUSTER_KEYS)}"
        )
    columns = {"subject": subject, "action": action, "subaction": subaction, "frame_index": frame_index}
    return group_ids(*(columns[key] for key in CLUSTER_KEYS[source]))


def store_pose_ids(store: DatasetStore) -> np.ndarray:
    """(N,) int64 pose of each row of ``store``."""
    return pose_ids(store.subject_names(), store.action_names(), store.subaction, store.frame_index)


def store_cluster_ids(store: DatasetStore) -> np.ndarray:
    """(N,) int64 bootstrap cluster of each row of ``store``, by its ``source`` attribute."""
    names = (store.subject_names(), store.action_names(), store.subaction, store.frame_index)
    return cluster_ids(store.source, *names, where=str(store.path))
