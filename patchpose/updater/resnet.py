"""The updater's ResNet trunk (paper §4.1: a ResNet-50, ImageNet weights "loaded up to the penultimate layer")
and its pretrained weights, read from a local file only.

``ResNetTrunk(depth, in_channels, width)``: torchvision's ResNet 18, 34 or 50 (``torchvision.models.resnet``:
its ``BasicBlock``/``Bottleneck``, the same layer names, strides and initialisation) without the classifier:
(B, C, S, S) -> (B, F) globally average-pooled features, F = 512 x width (x 4 for the 50). ``width`` scales
every layer's channels (torchvision's ``width_per_group`` only widens a bottleneck's inner 3 x 3 and
``BasicBlock`` refuses it, so the trunk builds its stages itself); at width 1 its state dict has exactly the
keys and shapes of ``torchvision.models.resnet<depth>()`` without ``fc``, except ``conv1``'s C input channels.

``load_pretrained(trunk, path)``: the weights of a torchvision ResNet of the trunk's depth (a state dict
saved with ``torch.save(model.state_dict(), path)``, as torchvision's own ImageNet files are), never
downloaded. Everything up to the penultimate layer is loaded (``fc`` is skipped); the first convolution,
(64, 3, 7, 7) for RGB, is spread over the trunk's C = P x c input channels: input channel ``j`` gets the RGB
filter of colour ``j mod 3`` (the segmentation's channels too: S is an RGB image, colour-coded, normalised
like the frame), scaled by 3 / C. So a frame whose P patches (and, for ``rgb_seg``, its segmentation) all
equal one image x gives exactly the pretrained first layer's response to x: activations keep their magnitude.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

__all__ = ["DEPTHS", "ResNetTrunk", "spread_first_conv", "load_pretrained"]

DEPTHS = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)), 50: (Bottleneck, (3, 4, 6, 3))}
STEM = 64  # channels of torchvision's stem and first stage


def _channels(base: int, width: float) -> int:
    return max(1, round(base * width))


class ResNetTrunk(nn.Module):
    """(B, in_channels, S, S) -> (B, num_features) pooled features; see the module docstring."""

    def __init__(self, depth: int, in_channels: int, width: float = 1.0):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"resnet depth must be one of {tuple(DEPTHS)}, got {depth!r}")
        if not width > 0:
            raise ValueError(f"resnet width must be > 0, got {width!r}")
        block, counts = DEPTHS[depth]
        self.depth, self.in_channels, self.width = depth, int(in_channels), float(width)
        inplanes = _channels(STEM, width)
        self.conv1 = nn.Conv2d(in_channels, inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for stage, count in enumerate(counts):
            planes, stride = _channels(STEM * 2**stage, width), 1 if stage == 0 else 2
            layers = []
            for index in range(count):
                downsample = None
                if index == 0 and (stride != 1 or inplanes != planes * block.expansion):
                    downsample = nn.Sequential(
                        nn.Conv2d(inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                        nn.BatchNorm2d(planes * block.expansion),
                    )
                layers.append(block(inplanes, planes, stride if index == 0 else 1, downsample))
                inplanes = planes * block.expansion
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.num_features = inplanes
        for module in self.modules():  # torchvision's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def spread_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """(O, 3, k, k) RGB filters -> (O, in_channels, k, k): channel ``j`` is filter ``j mod 3`` x 3 / in_channels."""
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"the first convolution's weight must be (O, 3, k, k) RGB filters, got {tuple(weight.shape)}")
    if in_channels < 1 or in_channels % 3:
        raise ValueError(f"input channels must be a positive multiple of 3 (RGB groups), got {in_channels}")
    return weight[:, [j % 3 for j in range(in_channels)]] * (3 / in_channels)


def _describe(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def load_pretrained(trunk: ResNetTrunk, path: str | Path) -> None:
    """Load ``path``'s torchvision ResNet weights into ``trunk`` (module docstring); ValueError naming ``path``
    if it is missing, unreadable, not a state dict, or the weights of another architecture."""
    path = Path(path)
    if trunk.width != 1:
        raise ValueError(f"{path}: pretrained weights need resnet width 1 (torchvision's layers), got {trunk.width}")
    if not path.is_file():
        raise ValueError(f"{path}: pretrained resnet{trunk.depth} weights not found (a local file is required; "
                         f"nothing is downloaded)")  # fmt: skip
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: not a readable torch state dict: {error}") from error
    if not isinstance(state, Mapping) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ValueError(f"{path}: not a state dict (name -> tensor), got {type(state).__name__}")
    state = {name: value for name, value in state.items() if not name.startswith("fc.")}
    expected = trunk.state_dict()
    rgb_conv1 = torch.Size((expected["conv1.weight"].shape[0], 3, *expected["conv1.weight"].shape[2:]))
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{name} {tuple(state[name].shape)} (expected {tuple(expected[name].shape)})"
              for name in expected if name in state and name != "conv1.weight"
              and state[name].shape != expected[name].shape]  # fmt: skip
    if "conv1.weight" in state and state["conv1.weight"].shape != rgb_conv1:
        shapes.insert(0, f"conv1.weight {tuple(state['conv1.weight'].shape)} (expected {tuple(rgb_conv1)})")
    if missing or unexpected or shapes:
        problems = [f"{label} {_describe(names)}" for label, names in
                    (("missing", missing), ("unexpected", unexpected), ("wrong shapes:", shapes)) if names]  # fmt: skip
        raise ValueError(f"{path}: not the weights of a torchvision resnet{trunk.depth}: {'; '.join(problems)}")
    state["conv1.weight"] = spread_first_conv(state["conv1.weight"].float(), trunk.in_channels)
    trunk.load_state_dict(state, strict=True)
