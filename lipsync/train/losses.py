"""Training losses: the expert SyncNet's BCE on cosine similarity, in float32 whatever the autocast."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .dataset import SYNC_FRAMES


def sync_bce(audio_embedding: torch.Tensor, face_embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE of the cosine similarity (in 0..1 for the ReLU'd embeddings) against 1 = in sync, 0 = not."""
    with torch.autocast(audio_embedding.device.type, enabled=False):
        similarity = F.cosine_similarity(audio_embedding.float(), face_embedding.float()).clamp(0.0, 1.0)
        return F.binary_cross_entropy(similarity.unsqueeze(1), target.float())


def lower_half_stack(faces: torch.Tensor) -> torch.Tensor:
    """``[B, 3, 5, S, S]`` -> the SyncNet input ``[B, 15, S/2, S]`` (lower halves, frames on channels)."""
    half = faces[:, :, :, faces.size(3) // 2 :]
    return torch.cat([half[:, :, index] for index in range(SYNC_FRAMES)], dim=1)


def expert_sync_loss(syncnet: nn.Module, window_mel: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
    """How far generated 5-frame windows are from in sync with their mel, as the frozen expert sees it."""
    audio_embedding, face_embedding = syncnet(window_mel, lower_half_stack(generated))
    return sync_bce(audio_embedding, face_embedding, torch.ones(len(generated), 1, device=generated.device))
