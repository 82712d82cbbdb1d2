"""Paired, cluster-resampled bootstrap intervals of an improvement (initial - refined, mm), per action and overall.

Data: per frame ``i`` the improvement ``d_i = e_initial,i - e_refined,i`` (mm; positive = the refined file is
better) of one frame in two prediction files of the same store ("paired": both errors of a frame move
together), its action and its cluster (``patchpose.evaluation.groups``: a pose's views on the synthetic world,
a sequence on Human3.6M; every cluster lies inside one action).

Resampling, stratified by action. One replicate draws, independently in every action ``a`` holding ``n_a``
clusters, ``n_a`` of them with replacement, whole: a cluster's frames are always taken or left together,
never split. From the drawn frames (a cluster drawn twice counts twice):

* the action mean: the mean over the drawn frames of ``a`` (sum of the drawn clusters' improvements over
  their frame count), as the table's action rows are means over an action's frames;
* the **mean of action means**: the plain mean of the replicate's action means, the statistic of the table
  row ``MEAN_OF_ACTION_MEANS_LABEL`` (every action weighs the same);
* the **mean over frames**: all drawn frames' improvements over their count (row ``MEAN_OVER_FRAMES_LABEL``).

Why stratified: the test set's make-up by action is fixed by its design (synthetic: ``test_poses_per_action``
per subject and action; Human3.6M: the protocol's sequences), and the headline statistic weighs actions
equally. Resampling clusters across all actions at once would let each action's share vary from replicate
to replicate and, with few clusters per action (Human3.6M has 2 test subjects x 2 subactions), leave an
action with no cluster at all, whose mean of action means is then undefined. Within each action the
replicates vary only where the data do: which poses or recordings the action happened to get.

Interval: percentile, the ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles (numpy's default linear
interpolation) of the ``B`` replicate statistics, ``c`` = ``confidence`` (0.95). Point estimate: the
statistic of the data themselves (``patchpose.metrics.per_action_errors`` of the improvements), not the
replicates' mean. Seeded: action ``a``'s draws come from ``patchpose.rng.stream(seed, *stream_names, a)``,
so they do not depend on the other actions, on chunking or on job order; ``B`` and the seed come from the
caller (the config).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from patchpose.evaluation.frame_errors import FrameErrors, check_paired
from patchpose.evaluation.groups import cluster_ids, group_ids
from patchpose.evaluation.intervals import check_confidence, check_resamples, percentile_interval, resampled_sums
from patchpose.evaluation.tables import action_order as canonical_action_order
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL, MEAN_OVER_FRAMES_LABEL, per_action_errors
from patchpose.rng import stream

__all__ = [
    "CI_COLUMNS",
    "Replicates",
    "Intervals",
    "bootstrap_replicates",
    "paired_bootstrap",
    "improvement_intervals",
]

CI_COLUMNS = ("action", "frames", "clusters", "improvement_mm", "ci_low_mm", "ci_high_mm")


@dataclass(frozen=True, eq=False)
class Replicates:
    """The bootstrap replicates of an improvement, mm. ``actions`` in order; per action its ``frames`` and
    ``clusters``; ``action_means`` (B, A); ``mean_of_action_means`` and ``mean_over_frames`` (B,)."""

    actions: tuple[str, ...]
    frames: tuple[int, ...]
    clusters: tuple[int, ...]
    action_means: np.ndarray
    mean_of_action_means: np.ndarray
    mean_over_frames: np.ndarray


@dataclass(frozen=True)
class Intervals:
    """Point estimates and percentile intervals of an improvement (mm), one row per action then the two
    average rows (labels as in the per-action table); each row a dict keyed by ``CI_COLUMNS``. The call's
    ``confidence``, ``resamples`` (B), ``seed`` and ``metric`` (``None`` when given improvements directly)."""

    rows: tuple[dict, ...]
    confidence: float
    resamples: int
    seed: int
    metric: str | None = None

    def row(self, label: str) -> dict:
        """The row of an action or of an average label; ``KeyError`` naming the labels otherwise."""
        for row in self.rows:
            if row["action"] == label:
                return row
        raise KeyError(f"no interval row {label!r}; rows: {', '.join(row['action'] for row in self.rows)}")


def _clusters_by_action(improvement: np.ndarray, labels: np.ndarray, clusters: np.ndarray, order) -> list:
    """Per action in ``order``: (sum of improvements (C_a,), frame count (C_a,)) of each of its clusters."""
    spanning = group_ids(clusters, labels).max() + 1 != np.unique(clusters).size
    if spanning:
        raise ValueError("a cluster holds frames of several actions; clusters must lie inside one action")
    per_action = []
    for action in order:
        selected = labels == action
        _, local = np.unique(clusters[selected], return_inverse=True)
        per_action.append((np.bincount(local, weights=improvement[selected]), np.bincount(local)))
    return per_action


def bootstrap_replicates(
    improvement_mm,
    actions,
    clusters,
    *,
    resamples: int,
    seed: int,
    stream_names: Sequence[str | int] = (),
    action_order: Sequence[str] | None = None,
) -> Replicates:
    """``resamples`` (B) stratified cluster-bootstrap replicates (module docstring) of improvements ``(N,)`` mm
    with N action labels and N integer cluster ids. ``action_order``: as ``per_action_errors`` (default:
    canonical Human3.6M order, then others by name). ``ValueError`` for bad inputs."""
    check_resamples(resamples)
    summary = per_action_errors(
        improvement_mm, actions, canonical_action_order(actions) if action_order is None else action_order
    )
    improvement = np.asarray(improvement_mm, dtype=np.float64)
    labels = np.asarray([str(a) for a in actions])
    clusters = np.asarray(clusters)
    if clusters.shape != improvement.shape or clusters.dtype.kind not in "iu":
        raise ValueError(f"clusters must be {improvement.shape[0]} integer ids, got {clusters.dtype} {clusters.shape}")
    sums = np.empty((resamples, len(summary.actions)))
    counts = np.empty((resamples, len(summary.actions)))
    by_action = _clusters_by_action(improvement, labels, clusters, summary.actions)
    for column, (action, (cluster_sums, cluster_sizes)) in enumerate(zip(summary.actions, by_action, strict=True)):
        rng = stream(seed, *stream_names, action)
        sums[:, column], counts[:, column] = resampled_sums((cluster_sums, cluster_sizes), resamples, rng)
    action_means = sums / counts
    return Replicates(
        actions=summary.actions,
        frames=summary.frame_counts,
        clusters=tuple(int(sizes.size) for _, sizes in by_action),
        action_means=action_means,
        mean_of_action_means=action_means.mean(axis=1),
        mean_over_frames=sums.sum(axis=1) / counts.sum(axis=1),
    )


def paired_bootstrap(
    improvement_mm,
    actions,
    clusters,
    *,
    resamples: int,
    seed: int,
    stream_names: Sequence[str | int] = (),
    confidence: float = 0.95,
    action_order: Sequence[str] | None = None,
    metric: str | None = None,
) -> Intervals:
    """Point estimates and percentile intervals (module docstring) of improvements ``(N,)`` mm per action,
    for the mean of action means and for the mean over frames. Arguments as ``bootstrap_replicates``;
    ``confidence`` in (0, 1); ``metric`` is only recorded."""
    check_confidence(confidence)
    replicates = bootstrap_replicates(
        improvement_mm,
        actions,
        clusters,
        resamples=resamples,
        seed=seed,
        stream_names=stream_names,
        action_order=action_order,
    )
    summary = per_action_errors(improvement_mm, actions, replicates.actions)
    total = sum(replicates.frames), sum(replicates.clusters)

    def row(label, frames, clusters, estimate, samples) -> dict:
        low, high = percentile_interval(samples, confidence)
        values = (label, int(frames), int(clusters), float(estimate), float(low), float(high))
        return dict(zip(CI_COLUMNS, values, strict=True))

    rows = [
        row(action, frames, clusters, estimate, replicates.action_means[:, column])
        for column, (action, frames, clusters, estimate) in enumerate(
            zip(replicates.actions, replicates.frames, replicates.clusters, summary.action_means, strict=True)
        )
    ]
    rows.append(row(MEAN_OF_ACTION_MEANS_LABEL, *total, summary.mean_of_action_means, replicates.mean_of_action_means))
    rows.append(row(MEAN_OVER_FRAMES_LABEL, *total, summary.mean_over_frames, replicates.mean_over_frames))
    return Intervals(tuple(rows), float(confidence), int(resamples), int(seed), metric)


def improvement_intervals(
    initial: FrameErrors,
    refined: FrameErrors,
    *,
    resamples: int,
    seed: int,
    stream_names: Sequence[str | int] = (),
    metric: str = "mpjpe_mm",
    confidence: float = 0.95,
) -> Intervals:
    """Intervals of ``initial - refined`` in ``metric`` (``"mpjpe_mm"`` or ``"pa_mpjpe_mm"``) for two
    per-frame error tables of one store, clusters by the tables' ``source`` (``groups``). The tables must
    pair row for row (``check_paired``; ``FrameErrorsFileError`` naming both otherwise)."""
    check_paired(initial, refined)
    clusters = cluster_ids(
        initial.source, initial.subject, initial.action, initial.subaction, initial.frame_index, where=initial.origin
    )
    return paired_bootstrap(
        initial.metric(metric) - refined.metric(metric),
        initial.action,
        clusters,
        resamples=resamples,
        seed=seed,
        stream_names=stream_names,
        confidence=confidence,
        metric=metric,
    )
