"""Batch augmentation on torch tensors: random scale, rotation, horizontal flip (with left/right swap),
colour jitter and a recolouring of each body part, shared by the 2D keypoint and segmentation stages.

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

from patchpose.parts import NUM_PARTS, PART_NAMES
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
    "PART_PARENT",
    "flip_part_labels",
    "warp_part_labels",
    "sample_part_colours",
    "part_shares",
    "recolour_parts",
    "augment_frames",
]


def _part_flip() -> np.ndarray:
    names = list(PART_NAMES)
    swap = [n.replace("left_", "@").replace("right_", "left_").replace("@", "right_") for n in names]
    return np.array([names.index(s) for s in swap], dtype=np.int64)


PART_FLIP = _part_flip()  # (15,) part id after a horizontal flip
PART_FLIP.setflags(write=False)


def _part_parent() -> np.ndarray:
    names = list(PART_NAMES)
    chain = {"upper_arm": "torso", "lower_arm": "upper_arm", "hand": "lower_arm",
             "upper_leg": "torso", "lower_leg": "upper_leg", "foot": "lower_leg", "head": "torso"}  # fmt: skip
    parents = []
    for name in names:
        side, _, part = name.partition("_") if name.startswith(("left_", "right_")) else ("", "", name)
        parent = chain.get(part)
        parents.append(-1 if parent is None else names.index(parent if parent == "torso" else f"{side}_{parent}"))
    return np.array(parents, dtype=np.int64)


PART_PARENT = _part_parent()  # (15,) the part each part hangs from (-1: background, torso)
PART_PARENT.setflags(write=False)


@dataclass(frozen=True)
class Augment:
    """scale: max relative zoom (s in [1-scale, 1+scale]); rotation_deg: max |rotation|, degrees;
    flip: random horizontal flips with left/right swap; colour_jitter: max relative change of
    brightness, contrast and saturation; channel_shuffle: a random order of the R, G, B channels per
    example (clothing colours of unseen subjects differ from the training subjects'); part_recolour: the
    share of examples whose body parts and background are each recoloured on their own
    (``sample_part_colours``; needs the part labels), so that a network trained on a few people cannot tell
    a part by its owner's clothes."""

    scale: float
    rotation_deg: float
    flip: bool
    colour_jitter: float
    channel_shuffle: bool = False
    part_recolour: float = 0.0

    @classmethod
    def from_config(cls, block: dict) -> Augment:
        return cls(float(block["scale"]), float(block["rotation_deg"]), bool(block["flip"]), float(block["colour"]),
                   bool(block.get("channel_shuffle", False)), float(block.get("part_recolour", 0.0)))  # fmt: skip


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


def warp_part_labels(labels: torch.Tensor, transforms: Transforms, size: int) -> torch.Tensor:
    """(B, H, W) part ids of the frames before the warp -> (B, size, size) int64 ids of the warped frames (nearest
    neighbour, 0 = background outside), left/right swapped where flipped: the targets of a part head."""
    warped = warp(labels[:, None].float(), transforms, size, mode="nearest")[:, 0].round().long()
    return flip_part_labels(warped, transforms)


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


def sample_part_colours(rng: np.random.Generator, count: int, augment: Augment) -> torch.Tensor | None:
    """(count, 15, 3, 3) colour matrices, one per part id (background included) of each example, or None
    when ``augment.part_recolour`` is 0 (then nothing is drawn, so the streams are those of the augmentation
    without it). An example is recoloured with probability ``part_recolour``, else its matrices are the
    identity. A part's own matrix takes the R, G, B channels in a random order, each scaled by a gain in
    [0.5, 1.5] (shading and texture keep their pattern, the hue changes); half the parts take their parent's
    matrix instead (``PART_PARENT``: a sleeve over the upper and the lower arm), and half the right parts their
    left counterpart's (left and right dressed alike), so a colour edge is not always a part's edge and a part's
    edge is not always a colour edge."""
    if augment.part_recolour <= 0:
        return None
    chosen = rng.random(count) < augment.part_recolour
    order = np.argsort(rng.random((count, NUM_PARTS, 3)), axis=2)
    gains = rng.uniform(0.5, 1.5, (count, NUM_PARTS, 3))
    inherit = rng.random((count, NUM_PARTS)) < 0.5
    mirror = rng.random((count, NUM_PARTS)) < 0.5
    matrices = gains[..., None] * np.eye(3)[order]  # row c of a part's matrix picks channel order[c]
    for part, parent in enumerate(PART_PARENT):  # a parent comes first in PART_NAMES or is a root (torso)
        if parent >= 0:
            matrices[inherit[:, part], part] = matrices[inherit[:, part], parent]
        left = PART_FLIP[part]
        if PART_NAMES[part].startswith("right_"):
            matrices[mirror[:, part], part] = matrices[mirror[:, part], left]
    matrices[~chosen] = np.eye(3)
    return torch.as_tensor(matrices, dtype=torch.float32)


def part_shares(labels: torch.Tensor, transforms: Transforms, size: int) -> torch.Tensor:
    """(B, H, W) integer part ids of the unwarped frames -> (B, 15, size, size) float: each output pixel's
    share of every part, area-averaged to ``size`` as the frames are (``patchpose.frames``) and warped as
    they are, so boundary pixels mix their parts' colours as the frame's own pixels mix them. Not flipped:
    shares follow the pixels, not the parts' names."""
    one_hot = F.one_hot(labels.long(), NUM_PARTS).permute(0, 3, 1, 2).float()
    if labels.shape[-1] != size:
        one_hot = F.interpolate(one_hot, size=(size, size), mode="area")
    return warp(one_hot, transforms, size)


def recolour_parts(images: torch.Tensor, shares: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1], each pixel mapped by its parts' matrices weighted by its shares
    (``part_shares``; pixels warped in from outside the frame, all shares 0, stay 0), clipped to [0, 1]."""
    per_pixel = torch.einsum("bkhw,bkij->bijhw", shares, colours.to(images.device))
    return torch.einsum("bijhw,bjhw->bihw", per_pixel, images).clamp(0, 1)


def augment_frames(rng: np.random.Generator, frames: torch.Tensor, augment: Augment, size: int,
                   labels: torch.Tensor | None = None) -> tuple[torch.Tensor, Transforms]:  # fmt: skip
    """One training batch of the keypoint and segmentation networks: (B, 3, H, W) frames in [0, 1] -> warped to
    ``size`` under transforms drawn from ``rng``, each part recoloured (``augment.part_recolour``; ``labels``: the
    same frames' (B, H, W) part ids, unwarped, needed only then), colour-jittered; and the transforms, which the
    caller applies to its targets."""
    transforms = sample_transforms(rng, len(frames), augment)
    colours = sample_part_colours(rng, len(frames), augment)
    images = warp(frames, transforms, size)
    if colours is not None:
        if labels is None:
            raise ValueError("augment.part_recolour needs the frames' part labels")
        images = recolour_parts(images, part_shares(labels.to(images.device), transforms, size), colours)
    return jitter_colour(images, transforms), transforms


def pixels_to_unit(points: torch.Tensor | np.ndarray, size: int):
    """Pixel-centre coordinates of an ``size``-pixel image -> unit coordinates in [-1, 1]."""
    return (points + 0.5) / size * 2 - 1


def unit_to_pixels(points: torch.Tensor | np.ndarray, size: int):
    """Inverse of ``pixels_to_unit``."""
    return (points + 1) / 2 * size - 0.5
