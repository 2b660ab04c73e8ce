"""PoseNet: one small encoder-decoder that gives a person's 17 joint heatmaps and their mask in one pass.

Joints and mask share the encoder because both answer "where is the person's body", and one pass keeps a pose
edit inside its time budget on a CPU. The output is at half the input resolution: 17 heatmap channels (a Gaussian
peak at each joint) and one mask logit channel.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_arch


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True), _Residual(cout))


class PoseNet(nn.Module):
    def __init__(self, joints: int = 17, widths: tuple[int, ...] = (32, 48, 96, 128, 192), decoder: int = 48) -> None:
        super().__init__()
        self.joints = joints
        widths = tuple(widths)
        # Stem to 1/2 resolution, then each stage halves again: 1/2, 1/4, 1/8, 1/16, 1/32.
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True), _Residual(widths[0]))
        self.down = nn.ModuleList(_down(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.lateral = nn.ModuleList(nn.Conv2d(w, decoder, 1) for w in widths)
        self.smooth = nn.ModuleList(
            nn.Sequential(nn.Conv2d(decoder, decoder, 3, padding=1, bias=False),
                          nn.BatchNorm2d(decoder), nn.ReLU(inplace=True)) for _ in widths[:-1])
        self.head = nn.Conv2d(decoder, joints + 1, 1)

    @property
    def multiple_of(self) -> int:
        return 2 ** (len(self.down) + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: N x 3 x H x W RGB in [0, 1], H and W multiples of :attr:`multiple_of`. Returns N x (J+1) x H/2 x W/2:
        the joints' heatmaps, then the person-mask logit."""
        features = [self.stem(x - 0.5)]
        for stage in self.down:
            features.append(stage(features[-1]))
        # Feature-pyramid decoder: coarse context added into each finer level on the way back up.
        y = self.lateral[-1](features[-1])
        for level in range(len(features) - 2, -1, -1):
            y = F.interpolate(y, size=features[level].shape[-2:], mode="bilinear", align_corners=False)
            y = self.smooth[level](y + self.lateral[level](features[level]))
        return self.head(y)


@register_arch("posenet")
def build_posenet(joints: int = 17, widths: list[int] | tuple[int, ...] = (32, 48, 96, 128, 192),
                  decoder: int = 48) -> PoseNet:
    return PoseNet(joints=joints, widths=tuple(widths), decoder=decoder)
