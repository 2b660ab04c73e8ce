"""A gated-convolution inpainting generator with a dilated body, sized for a 2-core CPU.

The layout follows DeepFill v2's coarse network (Yu et al. 2019, "Free-Form Image Inpainting with Gated
Convolution"): a strided encoder down to 1/4 resolution, residual blocks with growing dilation for a receptive
field that spans the hole, and a decoder back to full resolution. Two changes make it fast enough for an editor
on the CPU:

- Gates are single-channel (the "LWGC-sc" light-weight gated convolution of Yi et al. 2020, HiFill): each conv
  predicts one extra channel whose sigmoid scales all features of that pixel, instead of doubling its output
  channels as full gated convolution does. That keeps the cost of a plain conv while still letting every layer
  learn to ignore hole pixels, and HiFill measured no loss in quality from it.
- Encoder features are added (not concatenated) to the decoder at the same resolution, so the decoder's convs
  stay narrow; the skips carry the known pixels' detail to the hole border.

Input: ``N x 4 x H x W``: RGB in [0, 1] and the mask (1 = hole) as the fourth channel; the RGB under the hole is
zeroed here as well, so pixels the user wants gone can never leak into the result. Output: ``N x 3 x H x W`` RGB
in [0, 1] for the whole image; callers keep the known pixels and paste only the hole. ``H`` and ``W`` must be
multiples of ``2 ** levels`` (8 by default, the card's ``multiple_of``); the tool pads to that.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganstudio.models.arch import register_arch

class GatedConv(nn.Module):
    """Conv whose output features are scaled per pixel by a learned single-channel sigmoid gate.

    LeakyReLU rather than DeepFill's ELU: the activation runs on every full-resolution pixel, and ELU's exp made it
    a quarter slower there on the CPU.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, dilation: int = 1,
                 activate: bool = True) -> None:
        super().__init__()
        self.c_out = c_out
        self.conv = nn.Conv2d(c_in, c_out + 1, kernel, stride=stride, dilation=dilation,
                              padding=dilation * (kernel - 1) // 2)
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        features, gate = out[:, : self.c_out], out[:, self.c_out :]
        if self.activate:
            features = F.leaky_relu(features, 0.2)
        return features * torch.sigmoid(gate)


class DilatedBlock(nn.Module):
    """Two gated convs, the first dilated, around a residual connection."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = GatedConv(channels, channels, dilation=dilation)
        self.conv2 = GatedConv(channels, channels, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


@register_arch("inpaint_gated")
class GatedInpaintNet(nn.Module):
    """RGB + mask -> RGB, any size that is a multiple of ``2 ** levels``.

    ``channels`` is the full-resolution width, doubled at each of the ``levels`` stride-2 stages; ``dilations``
    gives one residual block per entry at the lowest resolution, where convs are cheapest per pixel of context.
    """

    def __init__(self, channels: int = 16, levels: int = 3, dilations: Sequence[int] = (2, 4, 8, 2, 4, 8),
                 prefill: bool = False) -> None:
        super().__init__()
        self.prefill = prefill
        if not 1 <= levels <= 4:
            raise ValueError(f"levels must be 1 to 4, not {levels}")
        widths = [channels * 2**i for i in range(levels + 1)]
        self.multiple_of = 2**levels
        self.stem = GatedConv(4, widths[0], kernel=5)
        self.down = nn.ModuleList(GatedConv(a, b, stride=2) for a, b in zip(widths[:-1], widths[1:]))
        self.body = nn.Sequential(*(DilatedBlock(widths[-1], d) for d in dilations))
        # 1x1 convs narrow the features before upsampling, so the higher-resolution convs see few channels.
        self.reduce = nn.ModuleList(nn.Conv2d(b, a, 1) for a, b in zip(widths[:-1], widths[1:]))
        self.up = nn.ModuleList(GatedConv(a, a) for a in widths[:-1])
        self.tail = nn.Conv2d(widths[0], 3, 3, padding=1)
        self._init_weights(max(len(dilations), 1))

    def _init_weights(self, depth: int) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        # Residual branches start small so a deep stack without normalisation starts near identity.
        for block in self.body:
            block.conv2.conv.weight.data.mul_(1.0 / depth)
        self.tail.weight.data.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x[:, 3:4]
        known = x[:, :3] * (1 - mask)
        if self.prefill:
            start = push_pull(known, 1 - mask)
            x = torch.cat([start, mask], dim=1)
        else:
            x = torch.cat([known, mask], dim=1)
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = self.body(skips.pop())
        for reduce, up in zip(reversed(self.reduce), reversed(self.up)):
            # bilinear, not nearest: inside the hole the skips carry nothing, and nearest copies of the 1/8-scale
            # body showed as 8 px blocks in the fill (seen on the first trained weights)
            y = up(F.interpolate(reduce(y), scale_factor=2, mode="bilinear", align_corners=False) + skips.pop())
        if self.prefill:
            return (start + self.tail(y)).clamp(0.0, 1.0)
        return torch.sigmoid(self.tail(y))


def push_pull(rgb: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """A smooth fill of the unknown pixels from the known ones (push-pull interpolation, Gortler et al. 1996).

    Push: halve the resolution until one pixel is left, averaging colour and the share of known pixels. Pull: back
    up, each level keeps its own average where it had known pixels and takes the coarser estimate, upsampled, where
    it had few. Known pixels come back unchanged; a hole becomes a membrane-like blend of its border's colours.
    The ``prefill`` generator learns only the correction to this, which it gets right far sooner than a whole fill
    (and before any training the tool already gives this fill, stronger than OpenCV's on large holes).
    """
    colours, weights = [rgb * known], [known]
    while max(colours[-1].shape[-2:]) > 1:
        colours.append(F.avg_pool2d(colours[-1], 2, ceil_mode=True))
        weights.append(F.avg_pool2d(weights[-1], 2, ceil_mode=True))
    estimate = colours[-1] / weights[-1].clamp_min(1e-6)
    for colour, weight in zip(reversed(colours[:-1]), reversed(weights[:-1])):
        coarse = F.interpolate(estimate, size=colour.shape[-2:], mode="bilinear", align_corners=False)
        estimate = colour + coarse * (1 - weight)  # colour is already the known pixels' mean times their share
    return estimate
