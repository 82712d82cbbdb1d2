"""Integral regression: heatmap logits -> normalised heatmaps -> expected joint coordinates.

Coordinates are unit coordinates in [-1, 1] of the heatmap (``align_corners=False``: the centre of
heatmap cell ``i`` of ``n`` is ``(i + 0.5) / n * 2 - 1``), so they are independent of the heatmap and
crop sizes; ``patchpose.augment.unit_to_pixels`` turns them into crop pixels.

The ``*_nd`` functions are the same for any number of spatial axes (the 2D ones call them): volumetric
heatmaps (B, J, d, h, w) give (x, y, z) with x along w, y along h and z along d
(``patchpose.baselines.integral3d``).
"""

from __future__ import annotations

import torch

__all__ = [
    "softmax_heatmaps",
    "expected_coordinates",
    "soft_argmax",
    "softmax_nd",
    "expected_coordinates_nd",
    "soft_argmax_nd",
    "gaussian_targets",
    "integral_loss",
]


def softmax_nd(logits: torch.Tensor, dims: int) -> torch.Tensor:
    """(..., *spatial) logits -> float32 probabilities summing to 1 over the last ``dims`` axes."""
    flat = logits.float().flatten(-dims)
    return torch.softmax(flat, dim=-1).reshape(logits.shape)


def _centres(n: int, device: torch.device) -> torch.Tensor:
    return (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n * 2 - 1


def expected_coordinates_nd(probabilities: torch.Tensor, dims: int) -> torch.Tensor:
    """(..., *spatial) probabilities over the last ``dims`` axes -> (..., dims) expected unit coordinates,
    ordered from the last axis backwards (x along the last, y the one before, ...); differentiable."""
    spatial = list(range(probabilities.ndim - dims, probabilities.ndim))
    coordinates = []
    for axis in reversed(spatial):
        marginal = probabilities.sum(dim=[a for a in spatial if a != axis])
        coordinates.append((marginal * _centres(probabilities.shape[axis], probabilities.device)).sum(dim=-1))
    return torch.stack(coordinates, dim=-1)


def soft_argmax_nd(logits: torch.Tensor, dims: int) -> torch.Tensor:
    """(..., *spatial) logits -> (..., dims) unit coordinates: softmax over the last ``dims`` axes, then
    expectation."""
    return expected_coordinates_nd(softmax_nd(logits, dims), dims)


def softmax_heatmaps(logits: torch.Tensor) -> torch.Tensor:
    """(B, J, h, w) logits -> (B, J, h, w) probabilities summing to 1 per joint."""
    return softmax_nd(logits, 2)


def expected_coordinates(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B, J, h, w) probabilities -> (B, J, 2) expected (x, y) in unit coordinates (differentiable)."""
    return expected_coordinates_nd(heatmaps, 2)


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """(B, J, h, w) logits -> (B, J, 2) unit coordinates: softmax, then expectation."""
    return expected_coordinates(softmax_heatmaps(logits))


def gaussian_targets(coords: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, J, 2) unit coordinates -> (B, J, size, size) normalised Gaussians, ``sigma`` in heatmap cells."""
    centres = _centres(size, coords.device)
    scale = (2 / size * sigma) ** 2
    gx = torch.exp(-((centres[None, None, :] - coords[..., 0:1]) ** 2) / (2 * scale))
    gy = torch.exp(-((centres[None, None, :] - coords[..., 1:2]) ** 2) / (2 * scale))
    maps = gy[..., :, None] * gx[..., None, :]
    return maps / maps.sum(dim=(-1, -2), keepdim=True).clamp_min(1e-12)


def integral_loss(
    stack_logits: list[torch.Tensor], coords: torch.Tensor, heatmap_weight: float, sigma: float
) -> torch.Tensor:
    """Sum over stacks of the L1 coordinate error (unit coordinates, mean over joints and axes) plus
    ``heatmap_weight`` x the cross-entropy of the normalised heatmap against a Gaussian target."""
    total = coords.new_zeros(())
    for logits in stack_logits:
        total = total + (soft_argmax(logits) - coords).abs().mean()
        if heatmap_weight > 0:
            target = gaussian_targets(coords, logits.shape[-1], sigma)
            log_p = torch.log_softmax(logits.float().flatten(2), dim=-1)
            total = total + heatmap_weight * -(target.flatten(2) * log_p).sum(-1).mean()
    return total
