"""Convolution blocks shared by Wav2Lip and the expert SyncNet.

Module names (``conv_block.0`` conv, ``conv_block.1`` batch norm) match the reference
``models/conv.py`` so the published checkpoints load without renaming.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Module):
    """Conv2d + BatchNorm2d + ReLU, with an optional identity shortcut before the ReLU."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        padding: int | tuple[int, int],
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size, stride, padding),
            nn.BatchNorm2d(cout),
        )
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class ConvTransposeBlock(nn.Module):
    """ConvTranspose2d + BatchNorm2d + ReLU (the decoder's upsampling step)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int,
        stride: int,
        padding: int,
        output_padding: int = 0,
    ) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
            nn.BatchNorm2d(cout),
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))
