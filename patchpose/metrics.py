"""3D pose error metrics (Human3.6M protocols 1 and 2) and per-action aggregation.

Pure functions on arrays; poses are ``(N, J, 3)`` mm in one common frame (camera frame here), any J.

* Protocol 1, MPJPE: both poses root-aligned (joint ``root`` subtracted), then the mean Euclidean
  distance over joints and frames.
* Protocol 2, PA-MPJPE: the prediction is aligned per frame to the ground truth by the least-squares
  similarity transform (rotation, uniform scale, translation; reflections excluded), then MPJPE
  without root alignment.

Note: Procrustes minimises the *sum of squared* joint errors, so per frame the RMS joint error after
it never exceeds the root-aligned RMS error, but the *mean* joint error (what PA-MPJPE reports) can
exceed MPJPE, e.g. when a single joint is far off and the fit spreads its error over all joints.

Per-action aggregation reports both conventions found in the literature: the mean of per-action means
(VideoPose3D's tables) and the mean over all frames (every frame weighted equally).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ActionErrors",
    "MEAN_OF_ACTION_MEANS_LABEL",
    "MEAN_OVER_FRAMES_LABEL",
    "TABLE_COLUMNS",
    "per_joint_errors",
    "per_frame_mpjpe",
    "mpjpe",
    "procrustes_align",
    "per_frame_pa_mpjpe",
    "pa_mpjpe",
    "per_action_errors",
    "per_action_table",
]

MEAN_OF_ACTION_MEANS_LABEL = "average (mean of action means)"
MEAN_OVER_FRAMES_LABEL = "average (mean over frames)"
TABLE_COLUMNS = ("action", "frames", "mpjpe_mm", "pa_mpjpe_mm")


def _pose_pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``pred``/``gt`` to float64 ``(N, J, 3)`` of equal shape, all finite."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    for name, array in (("pred", pred), ("gt", gt)):
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"{name} must have shape (N, J, 3), got {array.shape}")
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must have the same shape")
    if pred.shape[0] == 0 or pred.shape[1] == 0:
        raise ValueError(f"pred and gt must hold at least one frame and one joint, got {pred.shape}")
    for name, array in (("pred", pred), ("gt", gt)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise ValueError(f"{name} contains {bad} non-finite values (NaN or inf)")
    return pred, gt


def per_joint_errors(pred, gt, root: int | None = 0) -> np.ndarray:
    """Euclidean joint errors ``(N, J)`` mm after subtracting joint ``root`` from both poses.

    ``root=None`` skips root alignment (raw distances in the given frame).
    """
    pred, gt = _pose_pair(pred, gt)
    if root is not None:
        if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < pred.shape[1]:
            raise ValueError(f"root must be a joint index in [0, {pred.shape[1]}) or None, got {root!r}")
        pred = pred - pred[:, root : root + 1]
        gt = gt - gt[:, root : root + 1]
    return np.linalg.norm(pred - gt, axis=-1)


def per_frame_mpjpe(pred, gt, root: int | None = 0) -> np.ndarray:
    """Protocol-1 error per frame ``(N,)`` mm: mean over joints of :func:`per_joint_errors`."""
    return per_joint_errors(pred, gt, root).mean(axis=1)


def mpjpe(pred, gt, root: int | None = 0) -> float:
    """Protocol 1 (MPJPE) in mm: root-aligned mean Euclidean error over all joints and frames."""
    return float(per_joint_errors(pred, gt, root).mean())


def procrustes_align(pred, gt) -> np.ndarray:
    """``pred`` ``(N, J, 3)`` mapped per frame by the best similarity transform onto ``gt`` (same shape), mm.

    Per frame, with centred points ``P = pred - mean(pred)``, ``G = gt - mean(gt)`` (rows = joints):
    ``P^T G = U S V^T`` (batched SVD); rotation ``R = V D U^T`` with ``D = diag(1, 1, d)``,
    ``d = sign(det(V U^T))`` (the reflection fix: when the best orthogonal map is a reflection, the last,
    smallest singular direction is flipped so ``R`` is a proper rotation); scale
    ``s = trace(D S) / ||P||_F^2``; result ``s P R^T + mean(gt)``. A frame whose prediction is a single
    point (``||P|| = 0``) gets ``s = 0``, i.e. every joint at ``mean(gt)``.
    """
    pred, gt = _pose_pair(pred, gt)
    pred_centroid = pred.mean(axis=1, keepdims=True)
    gt_centroid = gt.mean(axis=1, keepdims=True)
    pred_centred = pred - pred_centroid
    gt_centred = gt - gt_centroid
    covariance = np.einsum("nji,njk->nik", pred_centred, gt_centred)  # (N, 3, 3) = P^T G
    u, singular_values, vt = np.linalg.svd(covariance)
    v = np.swapaxes(vt, 1, 2)
    reflection = np.linalg.det(v @ np.swapaxes(u, 1, 2)) < 0
    v[reflection, :, -1] *= -1
    singular_values[reflection, -1] *= -1
    rotation = v @ np.swapaxes(u, 1, 2)  # (N, 3, 3), det +1
    pred_norm_sq = np.einsum("nji,nji->n", pred_centred, pred_centred)
    safe_norm_sq = np.where(pred_norm_sq > 0, pred_norm_sq, 1.0)
    scale = np.where(pred_norm_sq > 0, singular_values.sum(axis=1) / safe_norm_sq, 0.0)
    rotated = np.einsum("nji,nki->njk", pred_centred, rotation)  # rows: R @ p_j
    return scale[:, None, None] * rotated + gt_centroid


def per_frame_pa_mpjpe(pred, gt) -> np.ndarray:
    """Protocol-2 error per frame ``(N,)`` mm: mean joint error after :func:`procrustes_align`."""
    aligned = procrustes_align(pred, gt)
    return np.linalg.norm(aligned - np.asarray(gt, dtype=np.float64), axis=-1).mean(axis=1)


def pa_mpjpe(pred, gt) -> float:
    """Protocol 2 (PA-MPJPE) in mm: mean joint error after per-frame similarity Procrustes alignment."""
    return float(per_frame_pa_mpjpe(pred, gt).mean())


@dataclass(frozen=True)
class ActionErrors:
    """Per-action summary of one per-frame error, all in mm.

    ``actions`` in the order used; ``action_means[i]`` and ``frame_counts[i]`` belong to ``actions[i]``.
    ``mean_of_action_means``: each action's mean, then the plain mean of those (VideoPose3D convention).
    ``mean_over_frames``: the mean over all frames, so actions weigh by their frame counts.
    """

    actions: tuple[str, ...]
    action_means: tuple[float, ...]
    frame_counts: tuple[int, ...]
    mean_of_action_means: float
    mean_over_frames: float

    def mean_for(self, action: str) -> float:
        """The mean error of ``action``; KeyError naming the known actions otherwise."""
        if action not in self.actions:
            raise KeyError(f"unknown action {action!r}; known: {', '.join(self.actions)}")
        return self.action_means[self.actions.index(action)]


def _action_labels(actions, num_frames: int) -> list[str]:
    if isinstance(actions, str) or np.ndim(actions) != 1 or len(actions) != num_frames:
        raise ValueError(f"actions must be a flat sequence of {num_frames} labels, got shape {np.shape(actions)}")
    return [str(a) for a in actions]


def _resolve_order(labels: list[str], action_order: Sequence[str] | None) -> tuple[str, ...]:
    present = set(labels)
    if action_order is None:
        return tuple(sorted(present))
    order = tuple(str(a) for a in action_order)
    if len(set(order)) != len(order):
        raise ValueError(f"action_order has duplicates: {list(order)}")
    unlisted = sorted(present - set(order))
    if unlisted:
        raise ValueError(f"actions missing from action_order: {', '.join(unlisted)}")
    empty = [a for a in order if a not in present]
    if empty:
        raise ValueError(f"action_order lists actions with no frames: {', '.join(empty)}")
    return order


def per_action_errors(errors_per_frame, actions, action_order: Sequence[str] | None = None) -> ActionErrors:
    """Aggregate per-frame errors ``(N,)`` mm by action label (``actions``: N strings, one per frame).

    ``action_order`` fixes the order of the result; it must list every action present exactly once and
    no absent action. By default the actions are sorted by name (lexicographic, so the order does not
    depend on frame order). Labels are compared as given: normalise them (e.g. strip a trailing
    sub-action number) before calling if "Walking 1" and "Walking" should be one action.
    """
    errors = np.asarray(errors_per_frame, dtype=np.float64)
    if errors.ndim != 1 or errors.shape[0] == 0:
        raise ValueError(f"errors_per_frame must have shape (N,) with N >= 1, got {errors.shape}")
    bad = int(np.count_nonzero(~np.isfinite(errors)))
    if bad:
        raise ValueError(f"errors_per_frame contains {bad} non-finite values (NaN or inf)")
    labels = _action_labels(actions, errors.shape[0])
    order = _resolve_order(labels, action_order)
    label_array = np.asarray(labels, dtype=object)
    means, counts = [], []
    for action in order:
        selected = errors[label_array == action]
        means.append(float(selected.mean()))
        counts.append(int(selected.shape[0]))
    return ActionErrors(
        actions=order,
        action_means=tuple(means),
        frame_counts=tuple(counts),
        mean_of_action_means=float(np.mean(means)),
        mean_over_frames=float(errors.mean()),
    )


def _table_row(action: str, frames: int, mpjpe_mm: float, pa_mpjpe_mm: float) -> dict:
    return dict(zip(TABLE_COLUMNS, (action, frames, mpjpe_mm, pa_mpjpe_mm), strict=True))


def per_action_table(
    mpjpe_per_frame, pa_mpjpe_per_frame, actions, action_order: Sequence[str] | None = None
) -> list[dict]:
    """CSV-ready rows with keys ``TABLE_COLUMNS`` (action, frames, mpjpe_mm, pa_mpjpe_mm), one per action.

    Inputs: per-frame protocol-1 and protocol-2 errors ``(N,)`` mm and N action labels. Action rows
    follow :func:`per_action_errors`'s order; two rows close the table, labelled
    ``MEAN_OF_ACTION_MEANS_LABEL`` and ``MEAN_OVER_FRAMES_LABEL``, both with ``frames`` = N.
    """
    p1 = per_action_errors(mpjpe_per_frame, actions, action_order)
    p2 = per_action_errors(pa_mpjpe_per_frame, actions, action_order)
    clashes = {MEAN_OF_ACTION_MEANS_LABEL, MEAN_OVER_FRAMES_LABEL} & set(p1.actions)
    if clashes:
        raise ValueError(f"action labels clash with the average rows' labels: {sorted(clashes)}")
    rows = [
        _table_row(action, count, m1, m2)
        for action, count, m1, m2 in zip(p1.actions, p1.frame_counts, p1.action_means, p2.action_means, strict=True)
    ]
    total = sum(p1.frame_counts)
    rows.append(_table_row(MEAN_OF_ACTION_MEANS_LABEL, total, p1.mean_of_action_means, p2.mean_of_action_means))
    rows.append(_table_row(MEAN_OVER_FRAMES_LABEL, total, p1.mean_over_frames, p2.mean_over_frames))
    return rows
