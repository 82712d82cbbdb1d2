"""Batch augmentation on torch tensors: random scale, rotation, horizontal flip (with left/right swap)
and colour jitter, shared by the 2D keypoint and segmentation stages.

Geometry works in normalised image coordinates ``u in [-1, 1]`` (``align_corners=False``: pixel
centre ``x`` of an ``S``-pixel image is ``u = (x + 0.5) / S * 2 - 1``). A transform is a 2x2 matrix
``M`` mapping output coordinates to input coordinates (``u_in = M u_out``), ``M = R(theta) F / s``
with scale ``s``, rotation ``theta`` and ``F = diag(-1, 1)`` when flipped. Random numbers come from the
caller's numpy generator (deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from patchpose.parts import PART_NAMES
from patchpose.skeleton import H36M

__all__ = [
    "Augment",
    "Transforms",
    "sample_transforms",
    "warp",
    "warp_points",
    "jitter_colour",
    "pixels_to_unit",
    "unit_to_pixels",
    "PART_FLIP",
    "flip_part_labels",
]


def _part_flip() -> np.ndarray:
    names = list(PART_NAMES)
    swap = [n.replace("left_", "@").replace("right_", "left_").replace("@", "right_") for n in names]
    return np.array([names.index(s) for s in swap], dtype=np.int64)


PART_FLIP = _part_flip()  # (15,) part id after a horizontal flip
PART_FLIP.setflags(write=False)


@dataclass(frozen=True)
class Augment:
    """scale: max relative zoom (s in [1-scale, 1+scale]); rotation_deg: max |rotation|, degrees;
    flip: random horizontal flips with left/right swap; colour_jitter: max relative change of
    brightness, contrast and saturation; channel_shuffle: a random order of the R, G, B channels per
    example (clothing colours of unseen subjects differ from the training subjects')."""

    scale: float
    rotation_deg: float
    flip: bool
    colour_jitter: float
    channel_shuffle: bool = False

    @classmethod
    def from_config(cls, block: dict) -> Augment:
        return cls(float(block["scale"]), float(block["rotation_deg"]), bool(block["flip"]), float(block["colour"]),
                   bool(block.get("channel_shuffle", False)))  # fmt: skip


@dataclass(frozen=True)
class Transforms:
    """One batch's draws: matrices (B, 2, 2) output->input, flipped (B,) bool, colour (B, 3) factors,
    channel_order (B, 3) int64 (a permutation of 0, 1, 2 per example; None: keep the channels)."""

    matrices: torch.Tensor
    flipped: torch.Tensor
    colour: torch.Tensor
    channel_order: torch.Tensor | None = None


def sample_transforms(rng: np.random.Generator, count: int, augment: Augment) -> Transforms:
    """Draw ``count`` transforms (always the same number of draws, so streams stay aligned)."""
    scale = 1 + rng.uniform(-augment.scale, augment.scale, count)
    theta = np.deg2rad(rng.uniform(-augment.rotation_deg, augment.rotation_deg, count))
    flipped = (rng.random(count) < 0.5) & augment.flip
    colour = 1 + rng.uniform(-augment.colour_jitter, augment.colour_jitter, (count, 3))
    shuffled = np.argsort(rng.random((count, 3)), axis=1)  # drawn either way: streams stay aligned
    cos, sin = np.cos(theta), np.sin(theta)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    flip = np.where(flipped, -1.0, 1.0)
    matrices = rotation * np.stack([flip, np.ones(count)], -1)[:, None, :] / scale[:, None, None]
    return Transforms(
        torch.as_tensor(matrices, dtype=torch.float32),
        torch.as_tensor(flipped),
        torch.as_tensor(colour, dtype=torch.float32),
        torch.as_tensor(shuffled, dtype=torch.int64) if augment.channel_shuffle else None,
    )


def warp(images: torch.Tensor, transforms: Transforms, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Resample (B, C, H, W) float images to (B, C, size, size) under the transforms (zeros outside)."""
    theta = torch.cat([transforms.matrices, torch.zeros(len(images), 2, 1)], dim=2).to(images.device)
    grid = F.affine_grid(theta, [len(images), images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)


def warp_points(points: torch.Tensor, transforms: Transforms) -> torch.Tensor:
    """(B, 17, 2) joints in unit coordinates of the input -> of the warped output, left/right swapped
    where flipped."""
    inverse = torch.linalg.inv(transforms.matrices).to(points.device)
    moved = torch.einsum("bij,bkj->bki", inverse, points)
    perm = torch.tensor(H36M.flip_permutation, device=points.device)
    return torch.where(transforms.flipped.to(points.device)[:, None, None], moved[:, perm], moved)


def flip_part_labels(labels: torch.Tensor, transforms: Transforms) -> torch.Tensor:
    """(B, H, W) int64 part ids of warped labels -> left/right swapped where flipped."""
    swapped = torch.as_tensor(PART_FLIP.copy(), device=labels.device)[labels]
    return torch.where(transforms.flipped.to(labels.device)[:, None, None], swapped, labels)


def jitter_colour(images: torch.Tensor, transforms: Transforms) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1]: reorder the channels, then scale brightness, contrast (about the image
    mean) and saturation (about the grey value) by the drawn factors; clipped to [0, 1]."""
    factors = transforms.colour.to(images.device)[:, :, None, None, None]
    if transforms.channel_order is not None:
        order = transforms.channel_order.to(images.device)[:, :, None, None].expand_as(images)
        images = torch.gather(images, 1, order)
    out = images * factors[:, 0]
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * factors[:, 1] + mean
    grey = out.mean(dim=1, keepdim=True)
    out = (out - grey) * factors[:, 2] + grey
    return out.clamp(0, 1)


def pixels_to_unit(points: torch.Tensor | np.ndarray, size: int):
    """Pixel-centre coordinates of an ``size``-pixel image -> unit coordinates in [-1, 1]."""
    return (points + 0.5) / size * 2 - 1


def unit_to_pixels(points: torch.Tensor | np.ndarray, size: int):
    """Inverse of ``pixels_to_unit``."""
    return (points + 1) / 2 * size - 0.5
