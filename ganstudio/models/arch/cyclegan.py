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


def multiple_of(n_down: int) -> int:
    """The size inputs must be a multiple of, for ``n_down`` stride-2 stages down and as many 2x stages up (the
    paper's two: 4)."""
    return 2 ** n_down


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
    """RGB in [0, 1] -> RGB in [0, 1], same size; height and width must be multiples of ``multiple_of``.

    Internally the network works on [-1, 1] and ends in tanh, as the paper's does. ``ngf`` is the width of the
    first stage (the middle is 4 x ngf); ``n_blocks`` residual blocks (the paper: 9 at 256 px, 6 at 128 px).
    ``n_down`` stride-2 stages (the paper: 2); each one more doubles what a residual block sees of the image, which
    a translation that changes shape (a cat's face into a dog's) needs; the width stays at 4 x ngf past the second.
    """

    def __init__(self, ngf: int = 64, n_blocks: int = 9, n_down: int = 2) -> None:
        super().__init__()
        if ngf < 1 or n_blocks < 0 or n_down < 1:
            raise ValueError(f"ngf and n_down must be at least 1 and n_blocks at least 0, not {ngf}, {n_down} and "
                             f"{n_blocks}")
        widths = [ngf * min(2 ** i, 4) for i in range(n_down + 1)]
        self.multiple_of = multiple_of(n_down)
        self.model = nn.Sequential(
            *_conv_norm_relu(3, ngf, 7),
            *(layer for i in range(n_down) for layer in _conv_norm_relu(widths[i], widths[i + 1], 3, stride=2)),
            *(ResnetBlock(widths[-1]) for _ in range(n_blocks)),
            *(ResizeConv(widths[i + 1], widths[i]) for i in reversed(range(n_down))),
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
        if x.shape[-2] % self.multiple_of or x.shape[-1] % self.multiple_of:
            raise ValueError(f"input {x.shape[-1]}x{x.shape[-2]} is not a multiple of {self.multiple_of}")
        return (self.model(x * 2 - 1) + 1) / 2
