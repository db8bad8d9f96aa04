"""Inference-only rewrites that keep the numerics: fold BatchNorm into the preceding conv."""

from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def fold_batchnorm(model: nn.Module, inplace: bool = False, memory_format: torch.memory_format | None = None) -> nn.Module:
    """Return an eval-mode model (a copy unless ``inplace``) where every ``Sequential(Conv, BatchNorm2d)``
    has the BN folded in.

    y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta becomes one conv with scaled weights and a
    shifted bias; equal to float rounding, and one fewer pass over each activation.

    With ``memory_format`` (e.g. ``torch.channels_last``) the folded weights are written once, straight into new
    tensors in that layout, and every other tensor of the model is copied into fresh memory too: a model loaded
    from a memory-mapped checkpoint then no longer holds the file's pages (about the model's size of resident
    memory), and the weights are not copied a second time to change their layout. The values are the same bits
    as folding in place.
    """
    folded = (model if inplace else copy.deepcopy(model)).eval()
    fresh: set[int] = set()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for index in range(len(module) - 1):
            conv, norm = module[index], module[index + 1]
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(norm, nn.BatchNorm2d):
                _fold_into(conv, norm, memory_format)
                module[index + 1] = nn.Identity()
                fresh.update((id(conv.weight), id(conv.bias)))
    if memory_format is not None:
        for module in folded.modules():
            for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
                if id(tensor) not in fresh:
                    _replace(module, name, tensor, _in_format(tensor, memory_format))
    return folded


def _fold_into(conv: nn.Conv2d | nn.ConvTranspose2d, norm: nn.BatchNorm2d, memory_format: torch.memory_format | None) -> None:
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(norm.running_mean)
    if isinstance(conv, nn.ConvTranspose2d):
        if conv.groups != 1:
            raise ValueError("grouped transposed convolutions are not folded")
        shaped_scale = scale.view(1, -1, 1, 1)
    else:
        shaped_scale = scale.view(-1, 1, 1, 1)
    if memory_format is None:
        conv.weight.mul_(shaped_scale)
    else:
        weight = torch.empty_like(conv.weight, memory_format=memory_format)
        torch.mul(conv.weight, shaped_scale, out=weight)
        conv.weight = nn.Parameter(weight, requires_grad=conv.weight.requires_grad)
    new_bias = (bias - norm.running_mean) * scale + norm.bias
    conv.bias = nn.Parameter(new_bias)


def _in_format(tensor: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    return tensor.clone(memory_format=memory_format if tensor.dim() == 4 else torch.contiguous_format)


def _replace(module: nn.Module, name: str, old: torch.Tensor, new: torch.Tensor) -> None:
    if isinstance(old, nn.Parameter):
        setattr(module, name, nn.Parameter(new, requires_grad=old.requires_grad))
    else:
        module.register_buffer(name, new, persistent=name not in module._non_persistent_buffers_set)
