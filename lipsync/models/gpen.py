"""GPEN, the GAN Prior Embedded Network for blind face restoration (Yang et al., CVPR 2021), in plain PyTorch.

A StyleGAN2 generator whose noise inputs are replaced by the feature maps of a convolutional encoder of the
degraded face: the encoder's last 4x4 map, through a linear layer and the mapping network, gives the style
``w``; each of its maps is concatenated ("noise injection" by concatenation) to the generator's features at
the same resolution. The released GPEN-BFR-256/512/1024 checkpoints are bare state dicts of this network
(yangxy/GPEN ``face_model/gpen_model.py``, class ``FullGenerator``); the module and buffer names here are
theirs, so those files load with ``strict=True``.

Input ``[N, 3, S, S]`` RGB in -1..1, output the same (GPEN's ``face_gan.py`` flips OpenCV's BGR to RGB and
maps 0..1 to -1..1 before the network). ``forward`` returns ``(image, w)`` like the other face restorers'
``(image, extra)`` tuples.

Written from the published layout, not copied: the fused leaky-ReLU and ``upfirdn2d`` CUDA extensions are
plain PyTorch, and the modulated convolution scales the input and the output (one shared convolution for the
whole batch) instead of building per-sample weights for a grouped convolution; the two are the same linear
map (``tests/test_gpen.py`` checks this against the grouped form).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .checkpoint import StateDict

BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)  # StyleGAN2's resampling filter
LEAK = 0.2
ACTIVATION_GAIN = math.sqrt(2.0)
MAPPING_LR_MUL = 0.01  # the mapping network's equalised learning-rate multiplier (changes the forward scale)


@dataclass(frozen=True)
class GPENConfig:
    """GPEN's hyperparameters; the released files are (256, 512, 8, 1, 0.5), (512, 512, 8, 2, 1.0) and (1024, 512, 8, 2, 1.0)."""

    size: int = 512
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    narrow: float = 1.0

    def channels(self, resolution: int) -> int:
        """Feature channels at ``resolution`` (the published table: 512 up to 32, then halving from 64)."""
        if resolution <= 32:
            return int(512 * self.narrow)
        return int(2 ** (14 - round(math.log2(resolution))) * self.channel_multiplier * self.narrow)

    @property
    def log_size(self) -> int:
        return round(math.log2(self.size))


def fir_kernel(gain: float = 1.0) -> torch.Tensor:
    """The separable [1, 3, 3, 1] filter as a normalised 4x4 kernel times ``gain``."""
    taps = torch.tensor(BLUR_TAPS)
    kernel = taps[:, None] * taps[None, :]
    return kernel / kernel.sum() * gain


def upfirdn(x: torch.Tensor, kernel: torch.Tensor, pad: tuple[int, int], up: int = 1) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative crops) and filter each channel with ``kernel`` (``upfirdn2d``, down = 1)."""
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = kernel.flip(0, 1).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=c)


def leaky_bias_act(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """StyleGAN2's fused bias + leaky ReLU(0.2) + gain sqrt(2), on ``[N, C, ...]`` (one new tensor, then in place)."""
    return F.leaky_relu(x + bias.view(1, -1, *([1] * (x.ndim - 2))), LEAK, inplace=True).mul_(ACTIVATION_GAIN)


class BiasAct(nn.Module):
    """Per-channel bias then the scaled leaky ReLU (the ``FusedLeakyReLU`` of the release; key ``bias``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return leaky_bias_act(x, self.bias)


class Blur(nn.Module):
    """A fixed FIR filter (key ``kernel``, stored in the checkpoints) with the given padding."""

    def __init__(self, pad: tuple[int, int], gain: float = 1.0, up: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", fir_kernel(gain))
        self.pad, self.up = pad, up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn(x, self.kernel, self.pad, self.up)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: the weight is scaled by ``lr_mul / sqrt(in)`` at run time."""

    def __init__(self, in_dim: int, out_dim: int, activate: bool = False, lr_mul: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale, self.lr_mul, self.activate = lr_mul / math.sqrt(in_dim), lr_mul, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activate:
            return leaky_bias_act(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    """Bias-free convolution with equalised learning rate (the encoder's; its bias lives in the activation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, stride=self.stride, padding=self.padding)


class EncoderLayer(nn.Sequential):
    """Encoder stage: (blur +) equalised conv (stride 2 when downsampling) + bias/activation; keys ``[0.kernel,] N.weight, N+1.bias``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool) -> None:
        layers: list[nn.Module] = []
        if downsample:
            spare = len(BLUR_TAPS) - 2 + kernel_size - 1
            layers.append(Blur(((spare + 1) // 2, spare // 2)))
            layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride=2, padding=0))
        else:
            layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride=1, padding=kernel_size // 2))
        layers.append(BiasAct(out_channels))
        super().__init__(*layers)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's style-modulated convolution (optionally demodulated, optionally a 2x transposed conv + blur).

    ``conv(x, w * s) * d`` equals ``conv(x * s, w) * d`` per sample, so for a batch the style scales the input channels
    and the demodulation the output channels around one convolution shared by the whole batch; a single face has both
    folded into its weight instead (the weight is far smaller than the features it would otherwise scale).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.demodulate, self.upsample, self.padding = demodulate, upsample, kernel_size // 2
        if upsample:
            spare = len(BLUR_TAPS) - 2 - (kernel_size - 1)
            self.blur = Blur(((spare + 1) // 2 + 1, spare // 2 + 1), gain=4.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.modulation(w)  # [N, in]
        weight = self.weight[0] * self.scale  # [out, in, k, k]
        if x.shape[0] == 1:  # one face: fold style and demodulation into the (small) weight, no pass over the features
            weight = weight * style.view(1, -1, 1, 1)
            if self.demodulate:
                weight = weight * torch.rsqrt(weight.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
            return self._conv(x, weight)
        out = self._conv(x * style[:, :, None, None], weight)
        if self.demodulate:
            # sum over in, k, k of (weight * style)^2, per sample and output channel
            energy = style.square() @ weight.square().sum(dim=(2, 3)).transpose(0, 1)  # [N, out]
            out = out * torch.rsqrt(energy + 1e-8)[:, :, None, None]
        return out

    def _conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            return self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        return F.conv2d(x, weight, padding=self.padding)


class FeatureInjection(nn.Module):
    """Concatenates the encoder's feature map, scaled by one learnt weight, to the generator's (key ``weight``)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.weight * feature), dim=1)


class StyledConv(nn.Module):
    """Modulated conv, then the encoder features concatenated, then bias + activation over both halves."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, upsample=upsample)
        self.noise = FeatureInjection()
        self.activate = BiasAct(2 * out_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), feature))


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB plus bias, added to the upsampled RGB of the previous resolution."""

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True) -> None:
        super().__init__()
        if upsample:
            self.upsample = Blur((2, 1), gain=4.0, up=2)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        return out if skip is None else out + self.upsample(skip)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class ConstantInput(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, 4, 4))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyleGenerator(nn.Module):
    """The StyleGAN2 synthesis network with GPEN's concatenated features (the release's ``generator.*``)."""

    def __init__(self, config: GPENConfig) -> None:
        super().__init__()
        dim, ch = config.style_dim, config.channels
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(dim, dim, activate=True, lr_mul=MAPPING_LR_MUL) for _ in range(config.n_mlp)])
        self.input = ConstantInput(ch(4))
        self.conv1 = StyledConv(ch(4), ch(4), dim)
        self.to_rgb1 = ToRGB(2 * ch(4), dim, upsample=False)
        self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        previous = ch(4)
        for level in range(3, config.log_size + 1):
            channels = ch(2**level)
            self.convs.append(StyledConv(2 * previous, channels, dim, upsample=True))
            self.convs.append(StyledConv(2 * channels, channels, dim))
            self.to_rgbs.append(ToRGB(2 * channels, dim))
            previous = channels

    def forward(self, w: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        """``w``: ``[N, style_dim]`` (one style for every layer); ``features``: encoder maps from 4x4 up to full size."""
        x = self.conv1(self.input(w.shape[0]), w, features[0])
        rgb = self.to_rgb1(x, w)
        for index, to_rgb in enumerate(self.to_rgbs):
            feature = features[index + 1]
            x = self.convs[2 * index](x, w, feature)
            x = self.convs[2 * index + 1](x, w, feature)
            rgb = to_rgb(x, w, rgb)
        return rgb


class GPEN(nn.Module):
    """GPEN's ``FullGenerator``: encoder ``ecd0..ecdK`` + ``final_linear`` + the StyleGAN2 ``generator``."""

    def __init__(self, config: GPENConfig | None = None) -> None:
        super().__init__()
        config = config or GPENConfig()
        if config.size < 8 or 2**config.log_size != config.size:
            raise ValueError(f"GPEN's size must be a power of two of at least 8, got {config.size}")
        self.config = config
        self.img_size = config.size  # read by lipsync.models.registry as the model's input size
        ch = config.channels
        self.generator = StyleGenerator(config)
        self.ecd0 = nn.Sequential(EncoderLayer(3, ch(config.size), 1, downsample=False))
        for index, level in enumerate(range(config.log_size, 2, -1), start=1):
            setattr(self, f"ecd{index}", nn.Sequential(EncoderLayer(ch(2**level), ch(2 ** (level - 1)), 3, downsample=True)))
        self.final_linear = nn.Sequential(EqualLinear(ch(4) * 16, config.style_dim, activate=True))

    @property
    def encoders(self) -> list[nn.Module]:
        return [getattr(self, f"ecd{index}") for index in range(self.config.log_size - 1)]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[N, 3, S, S]`` RGB in -1..1 -> (restored ``[N, 3, S, S]`` RGB, about -1..1; the style ``w``)."""
        features = []
        for encoder in self.encoders:
            x = encoder(x)
            features.append(x)
        w = self.generator.style(self.final_linear(x.flatten(1)))
        return self.generator(w, features[::-1]), w


# --- detection and hyperparameters from a state dict (spandrel's detect/load pattern) ---

REQUIRED_KEYS = ("generator.input.input", "generator.conv1.conv.weight", "generator.to_rgb1.conv.weight", "ecd0.0.0.weight",
                 "final_linear.0.weight", "generator.conv1.activate.bias")  # fmt: skip
DISCRIMINATOR_KEYS = ("convs.0.0.weight", "final_conv.0.weight", "final_linear.1.weight")


def _count(state: StateDict, pattern: str) -> int:
    regex = re.compile(pattern)
    return sum(1 for key in state if regex.fullmatch(key))


def detect(state: StateDict) -> bool:
    """True for a GPEN ``FullGenerator`` state dict (face restoration): encoder + concatenating StyleGAN2 generator.

    The super-resolution variant (``FullGenerator_SR``, fewer encoder stages than generator levels) does not match.
    """
    if not all(key in state for key in REQUIRED_KEYS):
        return False
    base = state["generator.input.input"]
    levels = _count(state, r"generator\.to_rgbs\.\d+\.conv\.weight") + 2
    return (
        base.ndim == 4
        and tuple(base.shape[2:]) == (4, 4)
        and state["generator.conv1.activate.bias"].shape[0] == 2 * base.shape[1]  # features are concatenated
        and _count(state, r"ecd\d+\.0\.\d+\.weight") == levels - 1
    )


def is_discriminator(state: StateDict) -> bool:
    """True for GPEN's discriminator (the ``GPEN-BFR-*-D.pth`` files, for training)."""
    return all(key in state for key in DISCRIMINATOR_KEYS) and "generator.input.input" not in state


def config_from_state_dict(state: StateDict) -> GPENConfig:
    """Size, style width, mapping depth, channel multiplier and narrow, all read from tensor shapes."""
    log_size = _count(state, r"generator\.to_rgbs\.\d+\.conv\.weight") + 2
    style_dim = int(state["final_linear.0.weight"].shape[0])
    n_mlp = _count(state, r"generator\.style\.\d+\.weight")
    narrow = int(state["generator.input.input"].shape[1]) / 512
    # the first level above 32 has 256 * multiplier * narrow channels; below 64 the multiplier plays no part
    multiplier = 2
    if log_size >= 6:
        multiplier = max(1, round(int(state[f"generator.convs.{2 * (6 - 3)}.conv.weight"].shape[1]) / (256 * narrow)))
    return GPENConfig(size=2**log_size, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=multiplier, narrow=narrow)


def build(state: StateDict) -> GPEN:
    """An (uninitialised-use) GPEN shaped for ``state``; the registry loads the weights strictly."""
    return GPEN(config_from_state_dict(state))
