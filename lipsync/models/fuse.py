"""Inference-only rewrites that keep the numerics: fold BatchNorm into the preceding conv."""

from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def fold_batchnorm(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Return an eval-mode model (a copy unless ``inplace``) where every ``Sequential(Conv, BatchNorm2d)``
    has the BN folded in.

    y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta becomes one conv with scaled weights and a
    shifted bias; equal to float rounding, and one fewer pass over each activation.
    """
    folded = (model if inplace else copy.deepcopy(model)).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for index in range(len(module) - 1):
            conv, norm = module[index], module[index + 1]
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(norm, nn.BatchNorm2d):
                _fold_into(conv, norm)
                module[index + 1] = nn.Identity()
    return folded


def _fold_into(conv: nn.Conv2d | nn.ConvTranspose2d, norm: nn.BatchNorm2d) -> None:
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
    if isinstance(conv, nn.ConvTranspose2d):
        if conv.groups != 1:
            raise ValueError("grouped transposed convolutions are not folded")
        conv.weight.mul_(scale.view(1, -1, 1, 1))
    else:
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
    new_bias = (bias - norm.running_mean) * scale + norm.bias
    conv.bias = nn.Parameter(new_bias)
