"""The residual MLP of Martinez et al. (2017), "A simple yet effective baseline for 3d human pose estimation".

Input (B, inputs) standardised 2D joints; a linear layer to ``width`` features, then ``blocks`` residual
blocks of two (linear, batch norm, ReLU, dropout) layers each, then a linear layer to (B, outputs)
standardised 3D coordinates. Martinez et al.: width 1024, 2 blocks, dropout 0.5.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LiftingMLP"]


def _layer(width: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout))


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(_layer(width, dropout), _layer(width, dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class LiftingMLP(nn.Module):
    """(B, inputs) -> (B, outputs); see the module docstring."""

    def __init__(self, inputs: int, outputs: int, width: int, blocks: int, dropout: float):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Linear(inputs, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.blocks = nn.Sequential(*(_ResidualBlock(width, dropout) for _ in range(blocks)))
        self.head = nn.Linear(width, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))
