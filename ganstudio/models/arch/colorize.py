"""The colourisation generator (pix2pix's U-Net, Isola et al. 2017, sized for a CPU): the lightness of a photo in,
its two colour channels out.

Input ``N x 1 x H x W``: CIE L* scaled to [0, 1]. Output ``N x 2 x H x W``: a* and b* divided by
:data:`AB_SCALE` (tanh, so in [-1, 1]). The photo's own lightness is never predicted, only put back beside the
colour, so a result keeps every detail the grey photo had; the colour may come from a smaller working size and be
enlarged, as colour carries far less detail than lightness. ``H`` and ``W`` must be multiples of ``2 ** levels``.

Changed from the paper: bilinear upsampling then a conv instead of transposed convs (no checkerboard in the
colour), and group norm instead of batch norm (batches of a few crops on a CPU; inference on one photo).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_arch

#: a* and b* of sRGB colours lie within about +-110 (OpenCV's float Lab); the network's +-1 spans that.
AB_SCALE = 110.0


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(min(8, c_out // 4), c_out),
                         nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(c_out, c_out, 3, padding=1),
                         nn.GroupNorm(min(8, c_out // 4), c_out), nn.LeakyReLU(0.2, inplace=True))


class ColorizeUNet(nn.Module):
    def __init__(self, channels: int = 32, levels: int = 4) -> None:
        super().__init__()
        widths = [channels * min(2**i, 8) for i in range(levels + 1)]
        self.levels = levels
        self.multiple_of = 2**levels
        self.stem = _block(1, widths[0])
        self.down = nn.ModuleList(_block(widths[i], widths[i + 1]) for i in range(levels))
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels)))
        self.head = nn.Conv2d(widths[0], 2, 1)
        nn.init.zeros_(self.head.weight)  # an untrained model colours nothing: grey in, grey out
        nn.init.zeros_(self.head.bias)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        x = self.stem(lightness * 2 - 1)
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(F.avg_pool2d(x, 2))
        for up in self.up:
            skip = skips.pop()
            x = up(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1))
        return torch.tanh(self.head(x))


@register_arch("colorize_unet")
def build(channels: int = 32, levels: int = 4) -> ColorizeUNet:
    return ColorizeUNet(channels, levels)
