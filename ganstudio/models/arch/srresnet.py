"""SRResNet generator (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a GAN").

Changed from the paper the way EDSR (Lim et al. 2017) did: no batch norm. BN makes the output of a tile depend
on batch statistics, which breaks tiled inference, and EDSR measured it lowers PSNR. Without BN the residual
branches are scaled down at initialisation so that the sum of many blocks starts near identity.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganstudio.models.arch import register_arch


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class Upsample2x(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


@register_arch("srresnet")
class SRResNet(nn.Module):
    """RGB in [0, 1] -> RGB in [0, 1] (unclamped while training), ``scale`` times larger; any input size.

    ``bicubic_residual`` adds a bicubic upscale of the input to the output, so the network only learns the missing
    detail (as VDSR does): it starts at bicubic quality and converges in far fewer steps, which is what a CPU
    budget of a few thousand steps needs.
    """

    def __init__(self, num_blocks: int = 16, channels: int = 64, scale: int = 4, bicubic_residual: bool = False) -> None:
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, not {scale}")
        self.scale = scale
        self.bicubic_residual = bicubic_residual
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU(channels))
        self.body = nn.Sequential(*(ResidualBlock(channels) for _ in range(num_blocks)))
        self.body_tail = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsample = nn.Sequential(*(Upsample2x(channels) for _ in range(scale.bit_length() - 1)))
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.25, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        # Without BN, a stack of un-normalised residual branches would blow up the activations at the start.
        for block in self.body:
            block.conv2.weight.data.mul_(0.1)
        # Start near the baseline (mid-grey, or the bicubic upscale) instead of noise, so early losses are small.
        self.tail.weight.data.mul_(0.01 if self.bicubic_residual else 0.1)
        nn.init.constant_(self.tail.bias, 0.0 if self.bicubic_residual else 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        features = features + self.body_tail(self.body(features))
        out = self.tail(self.upsample(features))
        if self.bicubic_residual:
            out = out + F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out
