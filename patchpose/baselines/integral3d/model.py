"""A small ResNet with a volumetric heatmap head (Sun et al. 2018 integral regression on Pavlakos et al.
2017's volumetric representation), for the global view of the crop at low resolution.

Input (B, 3, S, S) RGB in [0, 1], S = ``input_size``. Trunk: a 5x5 stride-2 stem of ``width`` channels,
then ``levels`` residual stages (``patchpose.keypoints2d.hourglass.Residual``), each halving the resolution
and doubling the channels, down to S / 2^(levels + 1). Head: stride-2 transposed convolutions
(``head_channels``, batch norm, ReLU) up to ``volume_size``, each followed by the sum with a 1x1 projection of
the trunk's features at that resolution (skip connections, as in FPN / RefineNet: the global context of the
coarsest level plus the spatial detail of the finer ones), then a 1x1 convolution to J x D channels.
Output: (B, J, D, V, V) logits with V = D = ``volume_size``: one volumetric heatmap per joint, axes
(depth, y, x); x and y span the crop (image-aligned), depth a range about the root
(``patchpose.baselines.integral3d.stage``).
"""

from __future__ import annotations

import torch
from torch import nn

from patchpose.keypoints2d.hourglass import Residual

__all__ = ["VolumetricResNet"]


class VolumetricResNet(nn.Module):
    def __init__(
        self,
        joints: int,
        input_size: int,
        width: int,
        levels: int,
        head_channels: int,
        volume_size: int,
    ):
        super().__init__()
        trunk_size = input_size // 2 ** (levels + 1)
        ratio = volume_size // max(trunk_size, 1)
        if input_size % 2 ** (levels + 1) or volume_size % trunk_size or ratio & (ratio - 1):
            raise ValueError(
                f"input_size {input_size} must be divisible by 2^(levels + 1) = {2 ** (levels + 1)} and "
                f"volume_size {volume_size} a power-of-2 multiple of input_size / 2^(levels + 1) = {trunk_size}"
            )
        self.joints, self.volume_size = joints, volume_size
        channels = [width * 2**i for i in range(levels + 1)]
        self.stem = nn.Sequential(nn.Conv2d(3, width, 5, 2, 2, bias=False), nn.BatchNorm2d(width), nn.ReLU(True))
        self.stages = nn.ModuleList(Residual(channels[i], channels[i + 1], stride=2) for i in range(levels))
        steps = ratio.bit_length() - 1  # stride-2 upsamplings from the trunk's output to the volume
        self.up = nn.ModuleList()
        self.lateral = nn.ModuleList()
        cin = channels[-1]
        for step in range(steps):
            self.up.append(nn.Sequential(
                nn.ConvTranspose2d(cin, head_channels, 4, 2, 1, bias=False), nn.BatchNorm2d(head_channels),
                nn.ReLU(inplace=True),
            ))  # fmt: skip
            level = levels - 2 - step  # the trunk level at the upsampled resolution (-1: the stem)
            source = channels[level + 1] if level >= -1 else None
            self.lateral.append(nn.Conv2d(source, head_channels, 1) if source is not None else None)
            cin = head_channels
        self.head = nn.Conv2d(cin, joints * volume_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.stem(x)]
        for stage in self.stages:
            features.append(stage(features[-1]))
        path = features[-1]
        for step, (up, lateral) in enumerate(zip(self.up, self.lateral, strict=True)):
            path = up(path)
            if lateral is not None:  # skip connection from the trunk at this resolution (FPN-like)
                path = path + lateral(features[-2 - step])
        logits = self.head(path)
        b, _, v, _ = logits.shape
        return logits.reshape(b, self.joints, self.volume_size, v, v)
