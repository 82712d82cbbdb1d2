"""Shrinking an updater's residual toward zero by factors fitted on its validation frames.

An updater trained on five training subjects may predict residuals that do not carry over to a person it has
never seen; added in full (Eq. 1) they then raise the error. The validation frames (by default a whole held-out
training subject, ``updater.training.validation_subjects``) are scored the way the test split will be, so the
factor ``alpha`` that minimises the squared error of ``alpha x prediction`` against the target there is the
least-squares answer to "how much of this prediction to trust":

    alpha = <prediction, target> / <prediction, prediction>, clipped to [0, 1]

``per_output``: one factor per output (limb x axis: 48), ``global``: one for all, ``none``: all ones (the
paper's Eq. 1 as written). Clipping keeps the refinement a shrinkage (0: leave the initial pose alone) and never
an amplification or a sign flip. Torch-free.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CALIBRATIONS", "calibration_factors"]

CALIBRATIONS = ("per_output", "global", "none")


def calibration_factors(predictions, targets, kind: str) -> np.ndarray:
    """Factors (outputs,) in [0, 1] for ``predictions`` and ``targets`` (frames, outputs) of the validation
    frames. An output the updater always predicts as 0 gets 0 (nothing to scale)."""
    if kind not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}, got {kind!r}")
    predictions = np.asarray(predictions, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if predictions.ndim != 2 or predictions.shape != targets.shape:
        raise ValueError(
            f"predictions and targets must both be (frames, outputs), got {predictions.shape} and {targets.shape}"
        )
    if len(predictions) == 0:
        raise ValueError("calibration needs at least one validation frame")
    outputs = predictions.shape[1]
    if kind == "none":
        return np.ones(outputs)
    axis = 0 if kind == "per_output" else None
    agreement = (predictions * targets).sum(axis=axis)
    power = (predictions * predictions).sum(axis=axis)
    alpha = np.divide(agreement, power, out=np.zeros_like(np.asarray(agreement, dtype=np.float64)), where=power > 0)
    return np.broadcast_to(np.clip(alpha, 0.0, 1.0), (outputs,)).astype(np.float64).copy()
