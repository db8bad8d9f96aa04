"""The Wav2Lip generator (Prajwal et al. 2020), with the reference module names.

Input: a mel window ``[B, 1, 80, 16]`` and six face channels ``[B, 6, S, S]`` (the BGR crop with
its lower half zeroed, then the unmasked BGR reference crop, both in 0..1). Output: ``[B, 3, S, S]``
BGR in 0..1. Channel order is the caller's job: the released weights were trained on OpenCV BGR.

``S`` is 96 (exactly the published network) or a multiple of it (192, 288) for higher-resolution
models: those add one encoder stage after the first block (a ``f x f`` stride-``f`` convolution down
to 96, ``f = S / 96``) and one decoder stage before the output, as community HD variants do. The
kernel of that stage is ``f``, so a state dict tells its own size (see ``hd_factor``).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBlock, ConvTransposeBlock


def residual_stage(first: nn.Module, channels: int, n_residual: int) -> nn.Sequential:
    """One resolution stage: a (strided) first block then ``n_residual`` 3x3 identity blocks."""
    blocks = [first] + [ConvBlock(channels, channels, 3, 1, 1, residual=True) for _ in range(n_residual)]
    return nn.Sequential(*blocks)


def build_audio_encoder(residuals_at_256: int) -> nn.Sequential:
    """The mel encoder ``[B,1,80,16] -> [B,512,1,1]``; Wav2Lip has 1 block at 256 channels, SyncNet 2."""
    return nn.Sequential(
        ConvBlock(1, 32, 3, 1, 1),
        ConvBlock(32, 32, 3, 1, 1, residual=True),
        ConvBlock(32, 32, 3, 1, 1, residual=True),
        ConvBlock(32, 64, 3, (3, 1), 1),
        ConvBlock(64, 64, 3, 1, 1, residual=True),
        ConvBlock(64, 64, 3, 1, 1, residual=True),
        ConvBlock(64, 128, 3, 3, 1),
        ConvBlock(128, 128, 3, 1, 1, residual=True),
        ConvBlock(128, 128, 3, 1, 1, residual=True),
        ConvBlock(128, 256, 3, (3, 2), 1),
        *[ConvBlock(256, 256, 3, 1, 1, residual=True) for _ in range(residuals_at_256)],
        ConvBlock(256, 512, 3, 1, 0),
        ConvBlock(512, 512, 1, 1, 0),
    )


BASE_SIZE = 96
SUPPORTED_SIZES = (96, 192, 288)


def size_factor(img_size: int) -> int:
    """``img_size / 96``; raises for sizes that are not a positive multiple of 96."""
    if img_size < BASE_SIZE or img_size % BASE_SIZE:
        raise ValueError(f"The model size must be a multiple of {BASE_SIZE} (e.g. {SUPPORTED_SIZES}), got {img_size}.")
    return img_size // BASE_SIZE


def downsample_stage(channels: int, factor: int, n_residual: int = 2) -> nn.Sequential:
    """The extra HD encoder stage: a ``factor x factor`` stride-``factor`` conv (S -> 96) and residual blocks."""
    return residual_stage(ConvBlock(channels, channels, factor, factor, 0), channels, n_residual)


class Wav2Lip(nn.Module):
    """U-Net style face encoder/decoder conditioned on a 512-d audio embedding at the bottleneck."""

    img_size = BASE_SIZE  # the instance's own size is set in __init__

    def __init__(self, img_size: int = BASE_SIZE) -> None:
        super().__init__()
        factor = size_factor(img_size)
        self.img_size = img_size
        hd_encoder = [downsample_stage(16, factor)] if factor > 1 else []  # S -> 96
        self.face_encoder_blocks = nn.ModuleList(
            [
                nn.Sequential(ConvBlock(6, 16, 7, 1, 3)),  # S x S
                *hd_encoder,
                residual_stage(ConvBlock(16, 32, 3, 2, 1), 32, 2),  # 48x48
                residual_stage(ConvBlock(32, 64, 3, 2, 1), 64, 3),  # 24x24
                residual_stage(ConvBlock(64, 128, 3, 2, 1), 128, 2),  # 12x12
                residual_stage(ConvBlock(128, 256, 3, 2, 1), 256, 2),  # 6x6
                residual_stage(ConvBlock(256, 512, 3, 2, 1), 512, 1),  # 3x3
                nn.Sequential(ConvBlock(512, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0)),  # 1x1
            ]
        )
        self.audio_encoder = build_audio_encoder(residuals_at_256=1)
        self.face_decoder_blocks = nn.ModuleList(
            [
                nn.Sequential(ConvBlock(512, 512, 1, 1, 0)),
                residual_stage(ConvTransposeBlock(1024, 512, 3, 1, 0), 512, 1),  # 3x3
                residual_stage(ConvTransposeBlock(1024, 512, 3, 2, 1, 1), 512, 2),  # 6x6
                residual_stage(ConvTransposeBlock(768, 384, 3, 2, 1, 1), 384, 2),  # 12x12
                residual_stage(ConvTransposeBlock(512, 256, 3, 2, 1, 1), 256, 2),  # 24x24
                residual_stage(ConvTransposeBlock(320, 128, 3, 2, 1, 1), 128, 2),  # 48x48
                residual_stage(ConvTransposeBlock(160, 64, 3, 2, 1, 1), 64, 2),  # 96x96
            ]
        )
        if factor > 1:  # 96 -> S, then the skip of the full-size first block joins
            self.face_decoder_blocks.append(residual_stage(ConvTransposeBlock(80, 32, factor, factor, 0), 32, 2))
        self.output_block = nn.Sequential(
            ConvBlock(80 if factor == 1 else 48, 32, 3, 1, 1),
            nn.Conv2d(32, 3, kernel_size=1, stride=1, padding=0),
            nn.Sigmoid(),
        )

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        """Generate faces; 5-D inputs ``[B,T,1,80,16]`` / ``[B,6,T,S,S]`` are folded into the batch."""
        batch = audio_sequences.size(0)
        sequence_input = face_sequences.dim() > 4
        if sequence_input:
            audio_sequences = torch.cat(audio_sequences.unbind(1), dim=0)
            face_sequences = torch.cat(face_sequences.unbind(2), dim=0)

        x = self.audio_encoder(audio_sequences)
        skips = []
        feats = face_sequences
        for block in self.face_encoder_blocks:
            feats = block(feats)
            skips.append(feats)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), skips.pop()), dim=1)
        x = self.output_block(x)

        if sequence_input:
            x = torch.stack(torch.split(x, batch, dim=0), dim=2)
        return x


def hd_factor(second_conv_weight: torch.Tensor) -> int:
    """Size factor (``S / 96``) read from the weight of a model's second encoder conv.

    The published second conv widens the features; the HD stage keeps the width and has an
    ``f x f`` kernel, so for it the kernel size is the factor.
    """
    out_channels, in_channels = second_conv_weight.shape[:2]
    return int(second_conv_weight.shape[-1]) if out_channels == in_channels else 1
