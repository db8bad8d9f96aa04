"""Wav2Lip on the CPU with each convolution, its residual add and its activation in one oneDNN call.

The eager forward of a BatchNorm-folded Wav2Lip runs a convolution, then ``out + x``, then the ReLU: two extra
passes over every activation, which on a CPU cost about a quarter of the forward time (measured with py-spy on a
720p run). oneDNN's fused convolution, the kernel PyTorch's own compiler emits for CPUs
(``torch.ops.mkldnn._convolution_pointwise``), applies the bias, the residual add and the ReLU (or the output
sigmoid) while each output tile is still in cache. The arithmetic stays fp32 and the order of the additions is the
eager one, so the faces agree with the eager model to float rounding (~1e-7).

The weights are reordered once into oneDNN's blocked layout (otherwise every call reorders them: ~8% of the
forward). That copy (the model's size) sits beside the model's own weights, which stay as they are.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import ConvBlock, ConvTransposeBlock
from .wav2lip import Wav2Lip

logger = logging.getLogger(__name__)

RELU, SIGMOID, NONE = "relu", "sigmoid", "none"
SLICE_BYTES = 12 * 2**20  # the largest activation of one slice of a batch (see FusedWav2Lip)
MEL_SHAPE = (1, 80, 16)
Shape = tuple[int, int, int, int]


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
    out_channels: int = 0

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

    def output_shape(self, shape: Shape) -> Shape:
        kernel = self.weight.shape[-2:]
        sizes = []
        for axis in range(2):
            size, pad, stride, dilation = shape[2 + axis], self.padding[axis], self.stride[axis], self.dilation[axis]
            if self.output_padding is None:
                sizes.append((size + 2 * pad - dilation * (kernel[axis] - 1) - 1) // stride + 1)
            else:
                sizes.append((size - 1) * stride - 2 * pad + dilation * (kernel[axis] - 1) + self.output_padding[axis] + 1)
        return (shape[0], self.out_channels, sizes[0], sizes[1])

    def prepacked(self, shape: Shape) -> FusedConv:
        """This layer with its weight reordered once for inputs of ``shape`` (oneDNN's blocked layout)."""
        ops = torch.ops.mkldnn
        if self.output_padding is not None:
            weight = ops._reorder_convolution_transpose_weight(
                self.weight, self.padding, self.output_padding, self.stride, self.dilation, self.groups, list(shape)
            )
        else:
            weight = ops._reorder_convolution_weight(self.weight, self.padding, self.stride, self.dilation, self.groups, list(shape))
        return dataclasses.replace(self, weight=weight)


class FusedWav2Lip:
    """``Wav2Lip.forward`` for 4-D inputs (``[B, 1, 80, 16]`` mels, ``[B, 6, S, S]`` channels_last faces) on fused layers.

    A batch runs in slices of ``slice_size`` faces (4 at 96 px: ``SLICE_BYTES`` for the largest activation). With
    a ``pool`` (``device.single_threaded_cpu_pool``) the slices are shared among its single-threaded workers;
    without, they run in turn on the caller's thread and torch's own thread team. Small slices keep each
    activation well under glibc's largest mmap threshold (32 MiB), so freed memory is reused rather than mapped
    afresh, page by zeroed page, for every layer (as system time that cost ~10% of the forward).
    """

    def __init__(
        self, audio: list[FusedConv], encoder: list[list[FusedConv]], decoder: list[list[FusedConv]], output: list[FusedConv],
        slice_size: int, pool: ThreadPoolExecutor | None = None,
    ) -> None:  # fmt: skip
        self.audio, self.encoder, self.decoder, self.output = audio, encoder, decoder, output
        self.slice_size, self.pool = slice_size, pool

    def __call__(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        slices = list(zip(audio_sequences.split(self.slice_size), face_sequences.split(self.slice_size), strict=True))
        if self.pool is None or len(slices) < 2:
            outputs = [self.forward(audio, faces) for audio, faces in slices]
        else:
            futures = [self.pool.submit(self._forward_without_grad, audio, faces) for audio, faces in slices]
            outputs = [future.result() for future in futures]
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def _forward_without_grad(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():  # a worker thread does not inherit the caller's mode
            return self.forward(audio_sequences, face_sequences)

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        """The whole batch at once, on the calling thread."""
        x = _run(self.audio, audio_sequences)
        skips = []
        feats = face_sequences
        for stage in self.encoder:
            feats = _run(stage, feats)
            skips.append(feats)
        for stage in self.decoder:
            x = torch.cat((_run(stage, x), skips.pop()), dim=1)
        return _run(self.output, x)

    def prepacked(self, size: int) -> FusedWav2Lip:
        """A copy with every weight reordered once for slices of ``slice_size`` faces of ``size`` px."""
        audio, shape = _prepacked(self.audio, (self.slice_size, *MEL_SHAPE))
        encoder, skip_shapes = [], []
        faces: Shape = (self.slice_size, 6, size, size)
        for stage in self.encoder:
            packed, faces = _prepacked(stage, faces)
            encoder.append(packed)
            skip_shapes.append(faces)
        decoder = []
        for stage in self.decoder:
            packed, shape = _prepacked(stage, shape)
            skip = skip_shapes.pop()
            shape = (shape[0], shape[1] + skip[1], shape[2], shape[3])
            decoder.append(packed)
        output, _ = _prepacked(self.output, shape)
        return FusedWav2Lip(audio, encoder, decoder, output, self.slice_size, self.pool)


def _run(layers: list[FusedConv], x: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


def _prepacked(layers: list[FusedConv], shape: Shape) -> tuple[list[FusedConv], Shape]:
    packed = []
    for layer in layers:
        packed.append(layer.prepacked(shape))
        shape = layer.output_shape(shape)
    return packed, shape


def fused_wav2lip(model: nn.Module) -> FusedWav2Lip | None:
    """The fused CPU forward of ``model``, or None where it does not apply: not a plain Wav2Lip, BatchNorm not
    folded, weights not channels_last, or a PyTorch without oneDNN's fused convolutions."""
    if type(model).forward is not Wav2Lip.forward or not fused_convolutions_available():
        return None
    size = int(model.img_size)
    slice_size = max(1, SLICE_BYTES // (80 * size * size * 4))  # per face, the output block's input: 80 x S x S floats
    try:
        fused = FusedWav2Lip(
            [_block(block) for block in model.audio_encoder],
            [[_block(block) for block in stage] for stage in model.face_encoder_blocks],
            [[_block(block) for block in stage] for stage in model.face_decoder_blocks],
            _output_layers(model.output_block),
            slice_size,
        )
    except _NotFusable as reason:
        logger.debug("Wav2Lip runs unfused: %s", reason)
        return None
    try:
        return fused.prepacked(size)
    except RuntimeError as error:
        logger.debug("Wav2Lip's weights are not prepacked (%s)", error)
        return fused


def fused_convolutions_available() -> bool:
    """Whether this PyTorch has oneDNN and its fused (pointwise) convolution operators."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        torch.ops.mkldnn._convolution_pointwise.binary  # noqa: B018 - looked up to see that it exists
        torch.ops.mkldnn._convolution_transpose_pointwise.default  # noqa: B018
        torch.ops.mkldnn._reorder_convolution_weight.default  # noqa: B018
        torch.ops.mkldnn._reorder_convolution_transpose_weight.default  # noqa: B018
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
        list(conv.output_padding) if transposed else None, conv.out_channels,
    )  # fmt: skip
