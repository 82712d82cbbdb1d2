"""What every bootstrap of the evaluation shares: its settings checked, and the percentile interval of its
replicates (the ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles, numpy's default linear interpolation). Kept apart
from ``bootstrap`` so that the rarity deciles (``rarity``), which the test split's rarity and the figures import,
do not cover the improvement intervals' code (``patchpose.provenance``: editing it reruns the evaluations, not
those)."""

from __future__ import annotations

import numpy as np

__all__ = ["check_resamples", "check_confidence", "percentile_interval"]


def check_resamples(resamples) -> int:
    """``resamples`` (B) as an int; ``ValueError`` unless it is an integer >= 1."""
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 1:
        raise ValueError(f"resamples must be an integer >= 1, got {resamples!r}")
    return int(resamples)


def check_confidence(confidence) -> float:
    """``confidence`` as a float; ``ValueError`` unless it lies in (0, 1)."""
    if isinstance(confidence, bool) or not isinstance(confidence, float | int) or not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    return float(confidence)


def percentile_interval(samples, confidence: float) -> tuple[float, float]:
    """The percentile interval (module docstring) of replicate statistics ``samples`` (B,): their
    ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles; NaN where a replicate is NaN."""
    low, high = np.quantile(np.asarray(samples, dtype=np.float64), [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)
