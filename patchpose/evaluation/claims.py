"""Claims a results section makes, checked against the numbers: one dict per claim for ``claims.json``."""

from __future__ import annotations

import math

from patchpose.evaluation.bootstrap import Intervals
from patchpose.evaluation.frame_errors import FrameErrors, check_paired
from patchpose.evaluation.tables import action_order
from patchpose.metrics import MEAN_OF_ACTION_MEANS_LABEL, MEAN_OVER_FRAMES_LABEL, per_action_errors

__all__ = ["METRIC_NAMES", "improvement_claim"]

METRIC_NAMES = {"mpjpe_mm": "MPJPE", "pa_mpjpe_mm": "PA-MPJPE"}


def improvement_claim(
    initial: FrameErrors, refined: FrameErrors, intervals: Intervals, *, average: str = MEAN_OF_ACTION_MEANS_LABEL
) -> dict:
    """ "The refined file's average error is lower, and the interval of the improvement excludes 0", checked.

    ``initial``, ``refined``: per-frame error tables of one store (paired row for row); ``intervals``: the
    bootstrap of ``initial - refined`` in ``intervals.metric`` (``bootstrap.improvement_intervals``);
    ``average``: which average row of the per-action table the claim is about (default the mean of action
    means, the headline convention). Returns a JSON-ready dict: ``claim`` (the sentence), ``holds`` (refined
    average < initial average and the interval's low end > 0), and the numbers behind it: ``metric``,
    ``average``, ``initial`` and ``refined`` (the tables' origins), ``initial_mm``, ``refined_mm``,
    ``improvement_mm``, ``ci_low_mm``, ``ci_high_mm``, ``confidence``, ``resamples``, ``seed``, ``frames``,
    ``clusters``. ``ValueError`` when the intervals are not those of these two tables.
    """
    check_paired(initial, refined)
    if intervals.metric not in METRIC_NAMES:
        raise ValueError(
            f"{refined.origin}: the intervals must name their metric ({', '.join(METRIC_NAMES)}), got "
            f"{intervals.metric!r}; compute them with improvement_intervals"
        )
    if average not in (MEAN_OF_ACTION_MEANS_LABEL, MEAN_OVER_FRAMES_LABEL):
        raise ValueError(
            f"average must be {MEAN_OF_ACTION_MEANS_LABEL!r} or {MEAN_OVER_FRAMES_LABEL!r}, got {average!r}"
        )
    order = action_order(initial.action)
    summaries = [per_action_errors(table.metric(intervals.metric), table.action, order) for table in (initial, refined)]
    field = "mean_of_action_means" if average == MEAN_OF_ACTION_MEANS_LABEL else "mean_over_frames"
    initial_mm, refined_mm = (getattr(summary, field) for summary in summaries)
    row = intervals.row(average)
    if not math.isclose(row["improvement_mm"], initial_mm - refined_mm, rel_tol=1e-9, abs_tol=1e-9):
        raise ValueError(
            f"{refined.origin}: the intervals' improvement {row['improvement_mm']:.6f} mm is not initial - refined "
            f"= {initial_mm - refined_mm:.6f} mm ({average}); they were computed for other tables"
        )
    claim = (
        f"refined {METRIC_NAMES[intervals.metric]} lower than initial ({average}), "
        f"{intervals.confidence:.0%} bootstrap interval of the improvement excludes 0"
    )
    return {
        "claim": claim,
        "holds": bool(refined_mm < initial_mm and row["ci_low_mm"] > 0),
        "metric": intervals.metric,
        "average": average,
        "initial": initial.origin,
        "refined": refined.origin,
        "initial_mm": initial_mm,
        "refined_mm": refined_mm,
        "improvement_mm": initial_mm - refined_mm,
        "ci_low_mm": row["ci_low_mm"],
        "ci_high_mm": row["ci_high_mm"],
        "confidence": intervals.confidence,
        "resamples": intervals.resamples,
        "seed": intervals.seed,
        "frames": row["frames"],
        "clusters": row["clusters"],
    }
