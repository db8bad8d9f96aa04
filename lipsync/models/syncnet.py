"""The expert colour SyncNet of Wav2Lip (``lipsync_expert.pth``), with the reference module names.

Input: a mel window ``[B, 1, 80, 16]`` and five lower-half BGR crops stacked on channels
``[B, 15, S/2, S]`` in 0..1. Output: L2-normalised 512-d audio and face embeddings; their cosine
similarity is the sync score. ``S`` is 96 (the published network) or 192/288: larger sizes add one
stride-``S/96`` stage after the first block, as the Wav2Lip generator does (see ``wav2lip.py``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import ConvBlock
from .wav2lip import BASE_SIZE, build_audio_encoder, downsample_stage, residual_stage, size_factor


class SyncNetColor(nn.Module):
    """Two-tower SyncNet: a face encoder over 5 stacked frames and the Wav2Lip-style mel encoder."""

    img_size = BASE_SIZE  # the instance's own size is set in __init__
    num_frames = 5

    def __init__(self, img_size: int = BASE_SIZE) -> None:
        super().__init__()
        factor = size_factor(img_size)
        self.img_size = img_size
        self.face_encoder = nn.Sequential(
            ConvBlock(15, 32, (7, 7), 1, 3),
            *(downsample_stage(32, factor) if factor > 1 else []),  # [S/2, S] -> [48, 96]
            *residual_stage(ConvBlock(32, 64, 5, (1, 2), 1), 64, 2),
            *residual_stage(ConvBlock(64, 128, 3, 2, 1), 128, 3),
            *residual_stage(ConvBlock(128, 256, 3, 2, 1), 256, 2),
            *residual_stage(ConvBlock(256, 512, 3, 2, 1), 512, 2),
            ConvBlock(512, 512, 3, 2, 1),
            ConvBlock(512, 512, 3, 1, 0),
            ConvBlock(512, 512, 1, 1, 0),
        )
        self.audio_encoder = build_audio_encoder(residuals_at_256=2)

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(audio_embedding, face_embedding)``, each ``[B, 512]`` with unit L2 norm."""
        face_embedding = self.face_encoder(face_sequences).flatten(1)
        audio_embedding = self.audio_encoder(audio_sequences).flatten(1)
        return F.normalize(audio_embedding, p=2, dim=1), F.normalize(face_embedding, p=2, dim=1)
