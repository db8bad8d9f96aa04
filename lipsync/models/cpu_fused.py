"""Wav2Lip on the CPU with each convolution, its residual add and its activation in one oneDNN call.

The eager forward of a BatchNorm-folded Wav2Lip runs a convolution, then ``out + x``, then the ReLU: two extra
passes over every activation, which on a CPU cost about a quarter of the forward time (measured with py-spy on a
720p run). oneDNN's fused convolution, the kernel PyTorch's own compiler emits for CPUs
(``torch.ops.mkldnn._convolution_pointwise``), applies the bias, the residual add and the ReLU (or the output
sigmoid) while each output tile is still in cache. The arithmetic stays fp32 and the order of the additions is the
eager one, so the faces agree with the eager model to float rounding (~1e-7).

Only the inference forward of a folded model (every BatchNorm an ``Identity``) with channels_last weights is
rebuilt; the module keeps its weights, and the fused layers hold references to them, not copies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import ConvBlock, ConvTransposeBlock
from .wav2lip import Wav2Lip

logger = logging.getLogger(__name__)

RELU, SIGMOID, NONE = "relu", "sigmoid", "none"


@dataclass(frozen=True)
class FusedConv:
    """One ``Conv2d``/``ConvTranspose2d`` with its bias, an optional residual add of its input, then an activation."""

    weight: torch.Tensor
    bias: torch.Tensor
    padding: list[int]
    stride: list[int]
    dilation: list[int]
    groups: int
    activation: str
    residual: bool = False
    output_padding: list[int] | None = None  # set for a transposed convolution

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        ops = torch.ops.mkldnn
        geometry = (self.padding, self.stride, self.dilation, self.groups)
        if self.output_padding is not None:
            padding, stride, dilation, groups = geometry
            return ops._convolution_transpose_pointwise(
                x, self.weight, self.bias, padding, self.output_padding, stride, dilation, groups, self.activation, [], ""
            )
        if self.residual:  # relu(conv(x) + x), the add as a post-op of the convolution
            return ops._convolution_pointwise.binary(x, x, self.weight, self.bias, *geometry, "add", 1.0, self.activation, [], "")
        return ops._convolution_pointwise(x, self.weight, self.bias, *geometry, self.activation, [], "")


class FusedWav2Lip:
    """``Wav2Lip.forward`` for 4-D inputs (``[B, 1, 80, 16]`` mels, ``[B, 6, S, S]`` channels_last faces) on fused layers."""

    def __init__(self, audio: list[FusedConv], encoder: list[list[FusedConv]], decoder: list[list[FusedConv]], output: list[FusedConv]):
        self.audio, self.encoder, self.decoder, self.output = audio, encoder, decoder, output

    def __call__(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        x = _run(self.audio, audio_sequences)
        skips = []
        feats = face_sequences
        for stage in self.encoder:
            feats = _run(stage, feats)
            skips.append(feats)
        for stage in self.decoder:
            x = torch.cat((_run(stage, x), skips.pop()), dim=1)
        return _run(self.output, x)


def _run(layers: list[FusedConv], x: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


def fused_wav2lip(model: nn.Module) -> FusedWav2Lip | None:
    """The fused CPU forward of ``model``, or None where it does not apply: not a plain Wav2Lip, BatchNorm not
    folded, weights not channels_last, or a PyTorch without oneDNN's fused convolutions."""
    if type(model).forward is not Wav2Lip.forward or not fused_convolutions_available():
        return None
    try:
        return FusedWav2Lip(
            [_block(block) for block in model.audio_encoder],
            [[_block(block) for block in stage] for stage in model.face_encoder_blocks],
            [[_block(block) for block in stage] for stage in model.face_decoder_blocks],
            _output_layers(model.output_block),
        )
    except _NotFusable as reason:
        logger.debug("Wav2Lip runs unfused: %s", reason)
        return None


def fused_convolutions_available() -> bool:
    """Whether this PyTorch has oneDNN and its fused (pointwise) convolution operators."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._convolution_pointwise.binary  # noqa: B018 - looked up to see that it exists
        torch.ops.mkldnn._convolution_transpose_pointwise.default  # noqa: B018
    except (AttributeError, RuntimeError):
        return False
    return True


class _NotFusable(Exception):
    pass


def _block(block: nn.Module) -> FusedConv:
    if not isinstance(block, ConvBlock | ConvTransposeBlock) or not isinstance(block.act, nn.ReLU):
        raise _NotFusable(f"unexpected block {type(block).__name__}")
    conv, norm = block.conv_block
    if not isinstance(norm, nn.Identity):
        raise _NotFusable("BatchNorm is not folded")
    return _layer(conv, RELU, residual=getattr(block, "residual", False))


def _output_layers(block: nn.Sequential) -> list[FusedConv]:
    if len(block) != 3 or not isinstance(block[1], nn.Conv2d) or not isinstance(block[2], nn.Sigmoid):
        raise _NotFusable("unexpected output block")
    return [_block(block[0]), _layer(block[1], SIGMOID)]


def _layer(conv: nn.Module, activation: str, residual: bool = False) -> FusedConv:
    if not isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) or conv.bias is None or conv.padding_mode != "zeros":
        raise _NotFusable(f"unexpected convolution {conv}")
    weight = conv.weight.detach()
    if weight.device.type != "cpu" or weight.dtype != torch.float32 or not weight.is_contiguous(memory_format=torch.channels_last):
        raise _NotFusable("weights are not fp32 channels_last on the CPU")
    transposed = isinstance(conv, nn.ConvTranspose2d)
    return FusedConv(
        weight, conv.bias.detach(), list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups, activation, residual,
        list(conv.output_padding) if transposed else None,
    )  # fmt: skip
