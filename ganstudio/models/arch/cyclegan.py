"""CycleGAN's ResNet generator (Zhu et al. 2017, after Johnson et al. 2016), for unpaired domain translation.

Changed from the paper: the two upsampling stages resize (nearest) then convolve instead of using transposed
convolutions, which leave checkerboard artifacts (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts").
Instance norm makes the output of a tile depend on the whole tile's statistics, so these models run untiled, on
the whole image (or region) at a working resolution; their cards say ``"tiling": false``.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ganstudio.models.arch import register_arch

#: Two stride-2 stages down and two 2x stages up: inputs must be a multiple of this.
MULTIPLE_OF = 4


def _conv_norm_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    # Reflection padding keeps the image border from reading as a dark frame, which zero padding teaches the net.
    return [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride=stride),
            nn.InstanceNorm2d(c_out), nn.ReLU(inplace=True)]


class ResnetBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_norm_relu(channels, channels, 3), nn.ReflectionPad2d(1),
                                  nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResizeConv(nn.Module):
    """2x nearest-neighbour upsampling, then a 3x3 convolution, instance norm and ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Sequential(*_conv_norm_relu(c_in, c_out, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


@register_arch("cyclegan-resnet")
class CycleGANGenerator(nn.Module):
    """RGB in [0, 1] -> RGB in [0, 1], same size; height and width must be multiples of :data:`MULTIPLE_OF`.

    Internally the network works on [-1, 1] and ends in tanh, as the paper's does. ``ngf`` is the width of the
    first stage (the middle is 4 x ngf); ``n_blocks`` residual blocks (the paper: 9 at 256 px, 6 at 128 px).
    """

    def __init__(self, ngf: int = 64, n_blocks: int = 9) -> None:
        super().__init__()
        if ngf < 1 or n_blocks < 0:
            raise ValueError(f"ngf must be at least 1 and n_blocks at least 0, not {ngf} and {n_blocks}")
        self.model = nn.Sequential(
            *_conv_norm_relu(3, ngf, 7),
            *_conv_norm_relu(ngf, ngf * 2, 3, stride=2),
            *_conv_norm_relu(ngf * 2, ngf * 4, 3, stride=2),
            *(ResnetBlock(ngf * 4) for _ in range(n_blocks)),
            ResizeConv(ngf * 4, ngf * 2),
            ResizeConv(ngf * 2, ngf),
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, 3, 7),
            nn.Tanh(),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # the paper's init: N(0, 0.02)
                nn.init.normal_(module.weight, 0.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % MULTIPLE_OF or x.shape[-1] % MULTIPLE_OF:
            raise ValueError(f"input {x.shape[-1]}x{x.shape[-2]} is not a multiple of {MULTIPLE_OF}")
        return (self.model(x * 2 - 1) + 1) / 2
