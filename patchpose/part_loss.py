"""A soft Dice loss on part logits: one minus the mean over the parts of each part's soft Dice coefficient.

The per-pixel cross-entropy is lowest for a network that paints thin parts over with their neighbours: a forearm
is a few pixels of a 64 px frame. Dice scores every part by its own overlap, so a missed forearm costs as much as a
missed torso (Milletari et al. 2016; Sudre et al. 2017 for the multi-class mean). Counts are summed over the whole
batch, so a part absent from one frame does not count as a perfect score there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["soft_dice_loss"]


def soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """``1 - mean_k (2 sum p_k y_k + smooth) / (sum p_k + sum y_k + smooth)`` over the C classes of ``logits``.

    ``logits`` (B, C, H, W), ``labels`` (B, H, W) int in [0, C). ``p_k`` is the softmax probability of class
    ``k``, ``y_k`` its one-hot label; the sums run over the batch and the pixels. ``smooth`` (> 0) keeps a class
    that is absent and not predicted at a score of 1 and the gradient finite. Returns a scalar in [0, 1).
    """
    if logits.ndim != 4 or labels.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"expected logits (B, C, H, W) and labels (B, H, W), got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")  # fmt: skip
    if smooth <= 0:
        raise ValueError(f"smooth must be > 0, got {smooth}")
    classes = logits.shape[1]
    probabilities = logits.float().softmax(1)
    onehot = F.one_hot(labels.long(), classes).permute(0, 3, 1, 2).to(probabilities.dtype)
    dims = (0, 2, 3)
    overlap = (probabilities * onehot).sum(dims)
    total = probabilities.sum(dims) + onehot.sum(dims)
    return 1.0 - ((2.0 * overlap + smooth) / (total + smooth)).mean()
