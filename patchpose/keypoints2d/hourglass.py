"""A small stacked hourglass (Newell et al. 2016) producing one heatmap per joint per stack, and optionally
a part segmentation from the same trunk.

Input (B, 3, S, S) RGB in [0, 1], S = ``input_size``; a stem of stride-2 residual stages brings it
to the heatmap size h = ``heatmap_size`` (S / h must be a power of 2); each hourglass recurses
``depth`` times (h must be divisible by 2^depth). Output (``forward``): a list (one per stack) of
(B, J, h, h) heatmap logits, and the part logits (B, part_classes, S, S) or None.

Part head (``part_classes`` > 0): one 3x3 conv (``part_head_channels``, batch norm, ReLU) and a 1x1 conv to
the part classes on the last stack's features at h x h, upsampled bilinearly to the input size. With
``part_head_skip_channels`` > 0 the head also sees the input at its own resolution, as a U-Net's decoder sees its
encoder's first level: two 3x3 convs of that many channels on the input, concatenated with the 3x3 conv's
features upsampled to the input size, then a 3x3 and a 1x1 conv to the part classes there; the trunk's h x h
features say which part is near, the skip where its edges are (a forearm is 2-3 pixels wide at 64 px; measured,
it segments no better: README "What holds the paper's effect back"). One trunk
then serves the 2D keypoints and the segmentation the paper's patches are cut from (multi-task, as Xia et
al. 2017's joint pose and part parsing): the dense part labels help the keypoints, and one network costs
half of two (README "2D keypoints and segmentation").
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Residual", "Hourglass", "StackedHourglass"]


class Residual(nn.Module):
    """Pre-activation-free residual block: two 3x3 conv+BN(+ReLU), 1x1 projection when shapes change."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = (
            nn.Identity()
            if cin == cout and stride == 1
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.skip(x))


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels at ``features`` channels (resolution divisible by 2^depth)."""

    def __init__(self, depth: int, features: int):
        super().__init__()
        self.skip = Residual(features, features)
        self.down = nn.Sequential(nn.MaxPool2d(2), Residual(features, features))
        self.inner = Hourglass(depth - 1, features) if depth > 1 else Residual(features, features)
        self.up = Residual(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(x)))
        return self.skip(x) + nn.functional.interpolate(low, scale_factor=2, mode="nearest")


class StackedHourglass(nn.Module):
    def __init__(
        self,
        num_joints: int,
        input_size: int,
        heatmap_size: int,
        stacks: int,
        features: int,
        depth: int,
        part_classes: int = 0,
        part_head_channels: int = 32,
        part_head_skip_channels: int = 0,
    ):
        super().__init__()
        ratio = input_size // heatmap_size
        if input_size % heatmap_size or ratio & (ratio - 1):
            raise ValueError(f"input_size {input_size} / heatmap_size {heatmap_size} must be a power of 2")
        if heatmap_size % 2**depth:
            raise ValueError(f"heatmap_size {heatmap_size} must be divisible by 2^depth = {2**depth}")
        first = 2 if ratio > 1 else 1  # the first conv already halves the resolution when it can
        stem: list[nn.Module] = [
            nn.Conv2d(3, features, 5, first, 2, bias=False),
            nn.BatchNorm2d(features),
            nn.ReLU(True),
        ]
        ratio //= first
        while ratio > 1:
            stem.append(Residual(features, features, stride=2))
            ratio //= 2
        stem.append(Residual(features, features))
        self.stem = nn.Sequential(*stem)
        self.hourglasses = nn.ModuleList(Hourglass(depth, features) for _ in range(stacks))
        self.features = nn.ModuleList(
            nn.Sequential(nn.Conv2d(features, features, 1, bias=False), nn.BatchNorm2d(features), nn.ReLU(True))
            for _ in range(stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(features, num_joints, 1) for _ in range(stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(features, features, 1) for _ in range(stacks - 1))
        self.merge_heatmaps = nn.ModuleList(nn.Conv2d(num_joints, features, 1) for _ in range(stacks - 1))
        self.parts = self.part_skip = self.part_fuse = None
        if part_classes:
            head = [
                nn.Conv2d(features, part_head_channels, 3, 1, 1, bias=False),
                nn.BatchNorm2d(part_head_channels),
                nn.ReLU(True),
            ]
            if part_head_skip_channels:
                skip = part_head_skip_channels
                self.part_skip = nn.Sequential(
                    nn.Conv2d(3, skip, 3, 1, 1, bias=False),
                    nn.BatchNorm2d(skip),
                    nn.ReLU(True),
                    nn.Conv2d(skip, skip, 3, 1, 1, bias=False),
                    nn.BatchNorm2d(skip),
                    nn.ReLU(True),
                )
                self.part_fuse = nn.Sequential(
                    nn.Conv2d(part_head_channels + skip, skip, 3, 1, 1, bias=False),
                    nn.BatchNorm2d(skip),
                    nn.ReLU(True),
                    nn.Conv2d(skip, part_classes, 1),
                )
            else:
                head.append(nn.Conv2d(part_head_channels, part_classes, 1))
            self.parts = nn.Sequential(*head)

    def heatmaps_and_features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The heatmap logits of every stack and the last stack's features (B, features, h, h)."""
        x = self.stem(x)
        outputs = []
        for i, hourglass in enumerate(self.hourglasses):
            feature = self.features[i](hourglass(x))
            heatmap = self.heads[i](feature)
            outputs.append(heatmap)
            if i < len(self.hourglasses) - 1:
                x = x + self.merge_features[i](feature) + self.merge_heatmaps[i](heatmap)
        return outputs, feature

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        heatmaps, feature = self.heatmaps_and_features(x)
        if self.parts is None:
            return heatmaps, None
        parts = nn.functional.interpolate(self.parts(feature), size=x.shape[-2:], mode="bilinear", align_corners=False)
        if self.part_skip is not None:
            parts = self.part_fuse(torch.cat([parts, self.part_skip(x)], dim=1))
        return heatmaps, parts
