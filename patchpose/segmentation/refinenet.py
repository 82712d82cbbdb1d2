"""A small ResNet trunk with a RefineNet-like decoder (Lin et al. 2017), as NBF's part segmenter.

Input (B, 3, S, S) RGB in [0, 1], S = ``input_size``. Trunk: a stem of ``width`` channels and stride
``output_stride`` (the decoder's finest resolution is S / output_stride),
then ``levels`` residual stages, each halving the resolution and doubling the channels. Decoder, from
the coarsest level up: adapt (1x1 conv to ``decoder_channels``), add the upsampled coarser path, a
residual conv unit and chained residual pooling (at the finest level: one 3x3 conv, for speed).
Output: (B, classes, S, S) logits (bilinearly upsampled from S / output_stride).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from patchpose.keypoints2d.hourglass import Residual

__all__ = ["RefineNetLite"]


class ResidualConvUnit(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ChainedResidualPooling(nn.Module):
    """x + sum of a chain of (5x5 max-pool stride 1 -> 3x3 conv) blocks."""

    def __init__(self, channels: int, blocks: int = 2):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(5, 1, 2), nn.Conv2d(channels, channels, 3, 1, 1, bias=False))
            for _ in range(blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        out, path = x, x
        for block in self.blocks:
            path = block(path)
            out = out + path
        return out


class RefineNetLite(nn.Module):
    def __init__(
        self, classes: int, input_size: int, output_stride: int, width: int, levels: int, decoder_channels: int
    ):
        super().__init__()
        if input_size % (output_stride * 2**levels):
            raise ValueError(
                f"input_size {input_size} must be divisible by output_stride x 2^levels = {output_stride * 2**levels}"
            )
        stem = nn.Conv2d(3, width, 2 * output_stride + 1, output_stride, output_stride, bias=False)
        self.stem = nn.Sequential(stem, nn.BatchNorm2d(width), nn.ReLU(True))
        channels = [width * 2**i for i in range(levels + 1)]
        self.stages = nn.ModuleList(Residual(channels[i], channels[i + 1], stride=2) for i in range(levels))
        self.adapt = nn.ModuleList(nn.Conv2d(c, decoder_channels, 1, bias=False) for c in channels)

        def block(level: int) -> nn.Module:
            if level == 0:  # full resolution: one conv only (refine blocks there cost most of the time)
                conv = nn.Conv2d(decoder_channels, decoder_channels, 3, 1, 1, bias=False)
                return nn.Sequential(conv, nn.BatchNorm2d(decoder_channels))
            return nn.Sequential(ResidualConvUnit(decoder_channels), ChainedResidualPooling(decoder_channels))

        self.refine = nn.ModuleList(block(level) for level in range(levels + 1))
        self.head = nn.Conv2d(decoder_channels, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.stem(x)]
        for stage in self.stages:
            features.append(stage(features[-1]))
        path = None
        for level in reversed(range(len(features))):
            lateral = self.adapt[level](features[level])
            if path is not None:
                lateral = lateral + F.interpolate(path, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            path = self.refine[level](lateral)
        logits = self.head(F.relu(path))
        if logits.shape[-1] != x.shape[-1]:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits
