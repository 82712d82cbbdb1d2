"""What the updater's networks take: cached uint8 patches -> normalised float images on the device, limb boxes
in frame px -> unitless box inputs.

Images: the zoom to the network input size happens on the device (paper §3.2: "zero padded and enlarged to
network input resolution"; the patch cache holds them at their native size). The uint8 batch crosses to the
device as it is (a quarter of the bytes of float32), then, there: the modality's channels, conversion to
float32, a bilinear resize to ``input_size`` (``align_corners=False``; antialiased only when downscaling, where
it averages the footprint instead of skipping pixels), the recolouring and the normalisation. The resize,
recolouring and normalisation are linear per pixel and channel, so they run in the cheapest order: a resize
that shrinks the patches comes first (the other two then touch a quarter of the pixels at 64 -> 32 px), one
that enlarges them last; only the recolouring's clipping to 0..255 sees averaged pixels when the resize comes
first. Normalisation: every 3-channel group, RGB and colour-coded segmentation alike, is standardised with
ImageNet's per-channel mean and standard deviation, ``(value / 255 - mean[c]) / std[c]``, what torchvision's
ImageNet weights were trained on, so the ``resnet``'s pretrained first convolution (``patchpose.updater.resnet``)
sees inputs of the statistics it expects; the other networks see the same inputs. On CUDA the result is channels_last.

Recolouring (training only, ``updater.training.augment``): before the normalisation, the frame's R, G, B in
every patch of a frame are mixed by that frame's 3 x 3 matrix (``recolouring``: a random permutation of the
channels and a random gain per channel; with ``per_limb`` one per patch), so clothing colours stop identifying
the training subjects; the colour-coded segmentation channels are labels and are never touched. Each frame's
matrices are drawn from its own stream (one draw of the batch's stream, then the frame's store row), so they do
not depend on how a batch is split among training processes.

Boxes: a patch store's ``box`` (N, P, 4) frame px (centre x, centre y, width, height) -> (N, P, 4) float32 in
unit coordinates of the frame: the centre in [-1, 1] (``patchpose.augment.pixels_to_unit``, pixel centres at
integers), width and height in the same unit (2 / frame side per px), so a box the size of the frame is 2.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from patchpose.augment import pixels_to_unit
from patchpose.updater.modalities import get_modality, select_channels

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "recolouring",
    "prepare_batch",
    "shrink_patches",
    "finish_batch",
    "normalise_boxes",
    "read_boxes",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation, per R, G, B
IMAGENET_STD = (0.229, 0.224, 0.225)
BOX_ROWS = 4096  # rows per read of a store's boxes (its small arrays are chunked by thousands of rows)


@functools.lru_cache(maxsize=16)
def _channel_affine(channels: tuple[int, ...], repeats: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(C, 1, 1) scale and offset with ``uint8 * scale + offset == (uint8 / 255 - mean) / std`` per channel;
    cached, so a step does not copy them to the device (a synchronising copy from pageable memory)."""
    mean = torch.tensor([IMAGENET_MEAN[c % 3] for c in channels] * repeats, dtype=torch.float32, device=device)
    std = torch.tensor([IMAGENET_STD[c % 3] for c in channels] * repeats, dtype=torch.float32, device=device)
    return (1 / (255 * std)).view(-1, 1, 1), (-mean / std).view(-1, 1, 1)


def recolouring(
    rng: np.random.Generator, rows, channel_shuffle: bool, gain_sigma: float, per_limb: bool = False, patches: int = 1
) -> torch.Tensor | None:
    """(B, 3, 3) float32 matrices recolouring the frames ``rows`` (store rows) of a training batch, or None when
    ``channel_shuffle`` is false and ``gain_sigma`` is 0. Frame i's matrix: diag(exp(gain_sigma x 3 standard
    normal draws)) times a random permutation matrix (identity without ``channel_shuffle``), drawn from the
    stream (one integer drawn from ``rng``, the frame's row): the same frame gets the same matrix whatever
    the other frames of its batch or its process's share (module docstring). ``per_limb``: (B, ``patches``, 3,
    3) instead, one matrix per patch of each frame, drawn one after the other from the frame's stream, so that
    the colours of one limb's clothes say nothing of another's."""
    if gain_sigma < 0:
        raise ValueError(f"gain_sigma must be >= 0, got {gain_sigma}")
    if not channel_shuffle and gain_sigma == 0:
        return None
    key = int(rng.integers(2**63 - 1))
    count = int(patches) if per_limb else 1
    matrices = np.empty((len(rows), count, 3, 3))
    for i, row in enumerate(np.asarray(rows, dtype=np.int64)):
        draws = np.random.default_rng([key, int(row)])
        for patch in range(count):
            order = draws.permutation(3) if channel_shuffle else np.arange(3)
            matrices[i, patch] = np.exp(gain_sigma * draws.standard_normal(3))[:, None] * np.eye(3)[order]
    return torch.as_tensor(matrices if per_limb else matrices[:, 0], dtype=torch.float32)


def prepare_batch(patches, modality: str, input_size: int, device: torch.device | str,
                  recolour: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """The network input of a batch of cached patches.

    patches: (B, P, 6, R, R) uint8 (torch tensor, pinned for an asynchronous copy, or numpy array) as
    ``PatchStore.read`` returns them. recolour: (B, 3, 3) from ``recolouring``, applied to the frame's R, G, B
    of every patch (clipped to 0..255), or (B, P, 3, 3), one matrix per patch, or None. Returns (B, C, S, S)
    float32 on ``device``, C = the modality's channels (limb-major, ``select_channels``), S = ``input_size`` px,
    normalised as the module docstring says; channels_last on CUDA. The same as
    ``finish_batch(shrink_patches(...), ...)``, in two steps so that the first, which depends on the frames alone,
    can be kept (``loader.ShrunkPatches``).
    """
    return finish_batch(shrink_patches(patches, modality, input_size, device), modality, input_size, device, recolour)


def shrink_patches(patches, modality: str, input_size: int, device: torch.device | str) -> torch.Tensor:
    """The first step of ``prepare_batch``: (B, P, 6, R, R) uint8 -> (B, C, S', S') float32 on ``device``, the
    modality's channels, 0..255, resized to S' = ``input_size`` when R is larger (bilinear, antialiased), else
    left at R. Each frame's result depends on that frame alone, not on the other frames of its batch."""
    patches = torch.as_tensor(patches)
    if patches.dtype != torch.uint8:
        raise ValueError(f"patches must be uint8 as cached, got {patches.dtype}")
    if int(input_size) < 1:
        raise ValueError(f"input_size must be >= 1 px, got {input_size}")
    images = select_channels(patches.to(torch.device(device), non_blocking=True), modality)
    images = images.float()  # a new tensor: the steps of finish_batch may work in place
    if images.shape[-1] > input_size:  # the cheapest order (module docstring): shrink first, enlarge last
        images = _resize(images, input_size)
    return images


def finish_batch(images: torch.Tensor, modality: str, input_size: int, device: torch.device | str,
                 recolour: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """The second step of ``prepare_batch`` on ``shrink_patches``'s (B, C, S', S') float32 ``images``, which it
    may overwrite: the recolouring, the normalisation, the enlargement to ``input_size`` where S' is smaller,
    channels_last on CUDA."""
    device = torch.device(device)
    channels = get_modality(modality).channels
    scale, offset = _channel_affine(channels, images.shape[1] // len(channels), device)
    if recolour is not None:
        images = _recolour(images, channels, recolour.to(device))
    images = images.mul_(scale).add_(offset)
    if images.shape[-1] != input_size:
        images = _resize(images, input_size)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def _resize(images: torch.Tensor, input_size: int) -> torch.Tensor:
    """(B, C, R, R) -> (B, C, S, S), S = ``input_size``: bilinear, antialiased when it shrinks."""
    size = int(input_size)
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < images.shape[-1])  # fmt: skip


def _recolour(images: torch.Tensor, channels: tuple[int, ...], recolour: torch.Tensor) -> torch.Tensor:
    """(B, P x c, R, R) float 0..255 -> the same with each frame's R, G, B (channels 0-2 of the patch store)
    mixed by its (3, 3) matrix, or each patch's by its own of (B, P, 3, 3); a modality without them (``seg``) is
    returned as it is."""
    frame = [position for position, channel in enumerate(channels) if channel < 3]
    if not frame:
        return images
    if frame != [0, 1, 2]:
        raise ValueError(f"the frame's R, G, B must be a modality's first three channels, got {channels}")
    batch, _, height, width = images.shape
    grouped = images.view(batch, -1, len(channels), height, width)
    if tuple(recolour.shape) not in ((batch, 3, 3), (batch, grouped.shape[1], 3, 3)):
        raise ValueError(f"recolour must be (B={batch}, 3, 3) or (B, P={grouped.shape[1]}, 3, 3), got "
                         f"{tuple(recolour.shape)}")  # fmt: skip
    pattern = "bij,bpjhw->bpihw" if recolour.ndim == 3 else "bpij,bpjhw->bpihw"
    mixed = torch.einsum(pattern, recolour, grouped[:, :, :3]).clamp_(0, 255)
    return torch.cat([mixed, grouped[:, :, 3:]], dim=2).view(batch, -1, height, width)


def normalise_boxes(boxes_px: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """(N, P, 4) frame px (centre x, centre y, width, height) of frames ``frame_size`` = (H, W) px ->
    (N, P, 4) float32 unitless: centres in [-1, 1] of the frame, sizes in the same unit (2 / side per px)."""
    boxes = np.asarray(boxes_px, dtype=np.float64)
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (N, P, 4) (centre x, centre y, width, height) px, got {boxes.shape}")
    height, width = (float(side) for side in frame_size)
    out = np.empty(boxes.shape, dtype=np.float32)
    out[..., 0] = pixels_to_unit(boxes[..., 0], width)
    out[..., 1] = pixels_to_unit(boxes[..., 1], height)
    out[..., 2] = boxes[..., 2] * 2 / width
    out[..., 3] = boxes[..., 3] * 2 / height
    return out


def read_boxes(store, rows) -> np.ndarray:
    """(len(rows), P, 4) float32 normalised boxes (``normalise_boxes``) of frames ``rows`` of an opened
    ``PatchStore``, read in blocks of ``BOX_ROWS`` sorted rows (256 bytes per frame are held, not patches)."""
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows), store.num_patches, 4), dtype=np.float32)
    for start in range(0, len(rows), BOX_ROWS):
        block = order[start : start + BOX_ROWS]
        out[block] = normalise_boxes(store.read_box(rows[block]), store.frame_size)
    return out
