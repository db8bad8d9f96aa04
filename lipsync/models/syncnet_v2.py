"""The SyncNet of syncnet_python (``syncnet_v2.model``), used for the published LSE-D / LSE-C metrics.

Written from the architecture of Chung & Zisserman, "Out of time" (ACCV 2016 workshops) with the module
names of ``SyncNetModel.S``, so the published state dict loads as it is. Inputs: a colour clip of five
224x224 BGR face crops in 0..255, ``[B, 3, 5, 224, 224]``, and 13 MFCC coefficients over 20 steps of
10 ms, ``[B, 1, 13, 20]``. Outputs are unnormalised embeddings (1024-d); their Euclidean distance is
the sync distance.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv2d(in_channels: int, out_channels: int, kernel: tuple[int, int], padding: tuple[int, int]) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel, padding=padding), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


def _conv3d(in_channels: int, out_channels: int, kernel: tuple[int, int, int], stride: tuple[int, int, int], padding) -> list[nn.Module]:
    return [nn.Conv3d(in_channels, out_channels, kernel, stride, padding), nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True)]


def _head(embedding_size: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding_size))


class SyncNetV2(nn.Module):
    """Audio tower ``netcnnaud``/``netfcaud`` and lip tower ``netcnnlip``/``netfclip`` (indices as in ``S``)."""

    img_size = 224
    num_frames = 5
    mfcc_steps = 20

    def __init__(self, embedding_size: int = 1024) -> None:
        super().__init__()
        self.netcnnaud = nn.Sequential(
            *_conv2d(1, 64, (3, 3), (1, 1)),
            nn.MaxPool2d(kernel_size=(1, 1), stride=(1, 1)),
            *_conv2d(64, 192, (3, 3), (1, 1)),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(1, 2)),
            *_conv2d(192, 384, (3, 3), (1, 1)),
            *_conv2d(384, 256, (3, 3), (1, 1)),
            *_conv2d(256, 256, (3, 3), (1, 1)),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(2, 2)),
            *_conv2d(256, 512, (5, 4), (0, 0)),
        )
        self.netfcaud = _head(embedding_size)
        self.netfclip = _head(embedding_size)
        self.netcnnlip = nn.Sequential(
            *_conv3d(3, 96, (5, 7, 7), (1, 2, 2), 0),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            *_conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), (1, 1, 1), (0, 1, 1)),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            *_conv3d(256, 512, (1, 6, 6), (1, 1, 1), 0),
        )

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 13, 20]`` MFCC windows -> ``[B, embedding_size]``."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, clips: torch.Tensor) -> torch.Tensor:
        """``[B, 3, 5, 224, 224]`` BGR clips in 0..255 -> ``[B, embedding_size]``."""
        return self.netfclip(self.netcnnlip(clips).flatten(1))

    def forward(self, mfcc: torch.Tensor, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(audio_embedding, lip_embedding)``, unnormalised, as the reference compares them."""
        return self.forward_aud(mfcc), self.forward_lip(clips)
