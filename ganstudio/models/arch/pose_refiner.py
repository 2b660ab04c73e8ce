"""The pose-edit refiner: a small residual U-Net that cleans up what the re-posing warp leaves behind.

Input: ``N x 4 x H x W``, the re-posed RGB in [0, 1] and a soft weight map (0-1) of the region the warp and the
fill changed. Output: ``N x 3 x H x W``, the input RGB plus a learned correction multiplied by that map, so a pixel
outside the edited region comes back exactly as it went in, and an untrained (zero-initialised) tail is the
identity. ``H`` and ``W`` must be multiples of ``2 ** levels`` (the card's ``multiple_of``); the tool pads to that.

Bilinear upsampling followed by a conv rather than transposed convs (no checkerboard in a correction that is added
to a photo), and no normalisation: statistics of a crop that is mostly untouched photo would say little about the
seam the network is asked to fix.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_arch


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.LeakyReLU(0.2, inplace=True))


class PoseRefiner(nn.Module):
    """``channels`` at full resolution, doubled at each of the ``levels`` stride-2 stages up to four times as many;
    ``bottleneck`` residual blocks at the lowest resolution."""

    def __init__(self, channels: int = 24, levels: int = 3, bottleneck: int = 2) -> None:
        super().__init__()
        if not 1 <= levels <= 4:
            raise ValueError(f"levels must be 1 to 4, not {levels}")
        widths = [channels * min(2**i, 4) for i in range(levels + 1)]
        self.multiple_of = 2**levels
        self.stem = _conv(4, widths[0])
        self.encode = nn.ModuleList(_Residual(w) for w in widths[:-1])
        self.down = nn.ModuleList(_conv(a, b, stride=2) for a, b in zip(widths[:-1], widths[1:]))
        self.body = nn.Sequential(*(_Residual(widths[-1]) for _ in range(bottleneck)))
        self.up = nn.ModuleList(_conv(b, a) for a, b in zip(widths[:-1], widths[1:]))
        self.decode = nn.ModuleList(_Residual(w) for w in widths[:-1])
        self.tail = nn.Conv2d(widths[0], 3, 3, padding=1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        # Residual branches start small (a deep stack without normalisation starts near identity) and the tail at
        # zero, so training starts from "change nothing": the round trip's input is already close to the target.
        for module in self.modules():
            if isinstance(module, _Residual):
                module.conv2.weight.data.mul_(0.1)
        nn.init.zeros_(self.tail.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb, region = x[:, :3], x[:, 3:4]
        y = self.stem(torch.cat([rgb - 0.5, region], dim=1))
        skips = []
        for encode, down in zip(self.encode, self.down):
            y = encode(y)
            skips.append(y)
            y = down(y)
        y = self.body(y)
        for up, decode in zip(reversed(self.up), reversed(self.decode)):
            skip = skips.pop()
            y = decode(up(F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)) + skip)
        return rgb + region * self.tail(y)


@register_arch("pose_refiner")
def build_pose_refiner(channels: int = 24, levels: int = 3, bottleneck: int = 2) -> PoseRefiner:
    return PoseRefiner(channels=channels, levels=levels, bottleneck=bottleneck)
