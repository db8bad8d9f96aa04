"""The visual-quality discriminator of the HQ ("GAN") Wav2Lip, scaled to the model size like the generator.

Module names follow the reference ``Wav2Lip_disc_qual``, so its checkpoints load at 96. It judges the
lower half of each frame. The reference's final Sigmoid is left to the loss
(``binary_cross_entropy_with_logits``, the same maths, stable and safe under mixed precision).

One deliberate change: the convolutions start from He initialisation for LeakyReLU(0.01). With
PyTorch's default initialisation each of the 13 unnormalised layers shrinks the signal about
six-fold, so the logit barely depends on the input and the reference's real/fake losses sit at
ln 2 for thousands of steps (Rudrabha/Wav2Lip issues 258, 314, 403), then jump. The layout and
checkpoints are unchanged; this only matters when a discriminator is trained from scratch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..models.wav2lip import BASE_SIZE, size_factor

LEAK = 0.01  # the negative slope of the reference's LeakyReLU


class NoNormConv(nn.Module):
    """Conv2d + LeakyReLU(0.01), the reference ``nonorm_Conv2d``."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int | tuple[int, int], padding: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))
        self.act = nn.LeakyReLU(LEAK)
        nn.init.kaiming_normal_(self.conv_block[0].weight, a=LEAK, nonlinearity="leaky_relu")
        nn.init.zeros_(self.conv_block[0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


class QualityDiscriminator(nn.Module):
    """Scores lower face halves ``[B, 3, T, S, S]`` -> real/fake logits ``[B * T, 1]``."""

    def __init__(self, img_size: int = BASE_SIZE) -> None:
        super().__init__()
        factor = size_factor(img_size)
        self.img_size = img_size
        hd = [nn.Sequential(NoNormConv(32, 32, factor, factor, 0), NoNormConv(32, 32, 3, 1, 1))] if factor > 1 else []
        self.face_encoder_blocks = nn.ModuleList(
            [
                nn.Sequential(NoNormConv(3, 32, 7, 1, 3)),  # S/2 x S
                *hd,  # 48 x 96
                nn.Sequential(NoNormConv(32, 64, 5, (1, 2), 2), NoNormConv(64, 64, 5, 1, 2)),  # 48 x 48
                nn.Sequential(NoNormConv(64, 128, 5, 2, 2), NoNormConv(128, 128, 5, 1, 2)),  # 24
                nn.Sequential(NoNormConv(128, 256, 5, 2, 2), NoNormConv(256, 256, 5, 1, 2)),  # 12
                nn.Sequential(NoNormConv(256, 512, 3, 2, 1), NoNormConv(512, 512, 3, 1, 1)),  # 6
                nn.Sequential(NoNormConv(512, 512, 3, 2, 1), NoNormConv(512, 512, 3, 1, 1)),  # 3
                nn.Sequential(NoNormConv(512, 512, 3, 1, 0), NoNormConv(512, 512, 1, 1, 0)),  # 1
            ]
        )
        self.binary_pred = nn.Sequential(nn.Conv2d(512, 1, kernel_size=1, stride=1, padding=0))

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """Logits, one per frame, frames of a sequence folded into the batch in time order."""
        frames = torch.cat(faces.unbind(2), dim=0)
        x = frames[:, :, frames.size(2) // 2 :]
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).view(len(x), -1)

    def realism_loss(self, fake_faces: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial ("perceptual") loss: BCE of the fakes against the label real."""
        logits = self(fake_faces).float()
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
