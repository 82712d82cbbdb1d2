"""A volumetric heatmap network (Sun et al. 2018 integral regression on Pavlakos et al. 2017's volumes) on the
keypoints2d hourglass, for the global view of the crop at low resolution.

Input (B, 3, S, S) RGB in [0, 1], S = the hourglass's ``input_size``. The trunk is a
``patchpose.keypoints2d.hourglass.StackedHourglass`` (``hourglass`` settings, no part head), whose weights the
stage initialises from the keypoints2d fold model of the same fold (pretrained on 2D, as Sun et al. and
Pavlakos et al. start from 2D-pretrained networks). Its last heatmap logits H (B, J, h, h) and features
F (B, C, h, h) give the volume

    logits[b, j, z, y, x] = H[b, j, y, x] + G[b, j, z, y, x],   G = a 1x1 conv of F to J x D channels,

a general volume (G alone could express any) whose image-plane marginal starts as the 2D network's heatmap:
G is initialised to zero, so training starts from the 2D network's (u, v) and a flat depth. Output:
(B, J, D, h, h) logits, axes (depth, y, x); x and y span the crop (image-aligned), depth a range about the
root (``patchpose.baselines.integral3d.stage``).
"""

from __future__ import annotations

import torch
from torch import nn

from patchpose.keypoints2d.hourglass import StackedHourglass

__all__ = ["VolumetricHourglass"]


class VolumetricHourglass(nn.Module):
    def __init__(self, joints: int, hourglass: dict, depth_bins: int):
        super().__init__()
        self.joints, self.depth_bins = joints, depth_bins
        self.hourglass = StackedHourglass(joints, **hourglass)
        self.depth = nn.Conv2d(hourglass["features"], joints * depth_bins, 1)
        nn.init.zeros_(self.depth.weight)
        nn.init.zeros_(self.depth.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        heatmaps, features = self.hourglass.heatmaps_and_features(x)
        heatmap = heatmaps[-1]
        b, j, h, w = heatmap.shape
        return heatmap[:, :, None] + self.depth(features).reshape(b, j, self.depth_bins, h, w)
