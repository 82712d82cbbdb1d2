"""What every bootstrap of the evaluation shares: its settings checked, whole clusters drawn with replacement
(``resampled_sums``), and the percentile interval of its replicates (the ``(1 - c) / 2`` and ``(1 + c) / 2``
quantiles, numpy's default linear interpolation). Kept apart from ``bootstrap`` so that the rarity deciles
(``rarity``), which the test split's rarity and the figures import, do not cover the improvement intervals' code
(``patchpose.provenance``: editing it reruns the evaluations, not those)."""

from __future__ import annotations

import numpy as np

__all__ = ["check_resamples", "check_confidence", "resampled_sums", "percentile_interval"]

DRAWS_PER_CHUNK = 1 << 22  # cluster indices drawn at once (32 MiB of int64), whatever B and the cluster count


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


def resampled_sums(per_cluster, resamples: int, rng) -> list[np.ndarray]:
    """``resamples`` (B) draws of as many clusters as ``per_cluster``'s arrays hold (C each: one value per cluster),
    with replacement, from ``rng``: for each array, (B,) sums over the drawn clusters (a cluster drawn twice counts
    twice). The draws come in chunks of at most ``DRAWS_PER_CHUNK`` indices, so memory is bounded whatever B and C,
    and the replicates do not depend on the chunking."""
    arrays = [np.asarray(values, dtype=np.float64) for values in per_cluster]
    size = arrays[0].size
    sums = [np.empty(resamples) for _ in arrays]
    chunk = max(1, DRAWS_PER_CHUNK // size)
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        picks = rng.integers(0, size, size=(stop - start, size))
        for total, values in zip(sums, arrays, strict=True):
            total[start:stop] = values[picks].sum(axis=1)
    return sums


def percentile_interval(samples, confidence: float) -> tuple[float, float]:
    """The percentile interval (module docstring) of replicate statistics ``samples`` (B,): their
    ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles; NaN where a replicate is NaN."""
    low, high = np.quantile(np.asarray(samples, dtype=np.float64), [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)
