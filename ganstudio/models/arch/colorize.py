"""pix2pix's U-Net (Isola et al. 2017, sized for a CPU) as two generators: colourisation (the lightness of a photo in,
its two colour channels out) and before/after pairs (RGB in, RGB out).

Colourisation: input ``N x 1 x H x W``, CIE L* scaled to [0, 1]; output ``N x 2 x H x W``: a* and b* divided by
:data:`AB_SCALE` (tanh, so in [-1, 1]). The photo's own lightness is never predicted, only put back beside the
colour, so a result keeps every detail the grey photo had; the colour may come from a smaller working size and be
enlarged, as colour carries far less detail than lightness. Pairs: see :class:`Pix2PixUNet`. ``H`` and ``W`` must be
multiples of ``2 ** levels``.

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


class UNet(nn.Module):
    """pix2pix's U-Net trunk: ``in_channels`` in [-1, 1], ``out_channels`` of raw head output, the head zeroed so an
    untrained model changes nothing (its subclasses read zero as "no colour" or "no change").

    With ``context``, the bottleneck also gets the mean of its own features over the whole picture, through two
    linear layers, added at every place (the global features of Iizuka et al. 2016, "Let there be Color!"): a
    blue-grey patch at the top of a beach photo is sky, the same grey under a street lamp is a wall, which the
    convolutions' reach alone cannot tell. Its last layer starts at zero, so a trunk trained without it loads
    unchanged."""

    def __init__(self, in_channels: int, out_channels: int, channels: int = 32, levels: int = 4,
                 context: bool = False) -> None:
        super().__init__()
        widths = [channels * min(2**i, 8) for i in range(levels + 1)]
        self.levels = levels
        self.multiple_of = 2**levels
        self.stem = _block(in_channels, widths[0])
        self.down = nn.ModuleList(_block(widths[i], widths[i + 1]) for i in range(levels))
        self.context = None
        if context:
            self.context = nn.Sequential(nn.Linear(widths[-1], widths[-1]), nn.LeakyReLU(0.2, inplace=True),
                                         nn.Linear(widths[-1], widths[-1]))
            nn.init.zeros_(self.context[2].weight)
            nn.init.zeros_(self.context[2].bias)
        self.up = nn.ModuleList(_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels)))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def trunk(self, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
        """The head's output, at every ``stride``-th pixel of each axis."""
        x = self.stem(x)
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(F.avg_pool2d(x, 2))
        if self.context is not None:
            x = x + self.context(x.mean(dim=(2, 3)))[..., None, None]
        for up in self.up:
            skip = skips.pop()
            x = up(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1))
        return self.head(x[..., ::stride, ::stride] if stride > 1 else x)


class ColorizeUNet(UNet):
    """L* -> a*b* / :data:`AB_SCALE`. With ``bins`` (per axis), the head gives a distribution over a ``bins`` x
    ``bins`` grid of a*b* cells (Zhang et al. 2016, "Colorful Image Colorization") and the colour is its annealed
    mean: a mode rather than the average of every plausible colour, which a regression to L1 falls back to (sepia).
    ``temperature`` sets how boldly (the paper's 0.38 on its rebalanced scores; 1 is the plain mean)."""

    def __init__(self, channels: int = 32, levels: int = 4, bins: int = 0, context: bool = False,
                 temperature: float = 0.38) -> None:
        super().__init__(1, bins * bins if bins else 2, channels, levels, context)
        self.bins = bins
        self.temperature = temperature
        if bins:
            self.register_buffer("centres", ab_bin_centres(bins), persistent=False)
            #: Added to the cell scores before the annealed mean (not to the training scores): a training run
            #: shows its samples with the vividness its export will have, which folds this into the head's bias.
            self.register_buffer("score_offset", torch.zeros(bins * bins), persistent=False)

    def forward(self, lightness: torch.Tensor, scores_only: int = 0) -> torch.Tensor:
        """a*b*; with ``scores_only`` (binned models, for training through DDP's forward) the N x bins² raw scores
        of the cells instead, at every ``scores_only``-th pixel of each axis."""
        if scores_only:
            return self.trunk(lightness * 2 - 1, stride=scores_only)
        scores = self.trunk(lightness * 2 - 1)
        if not self.bins:
            return torch.tanh(scores)
        # softmax(log p / T) is softmax(logits / T): no need to normalise first
        scores = scores.float() + self.score_offset[:, None, None]
        weights = torch.softmax(scores / self.temperature, dim=1)
        return torch.einsum("nqhw,qc->nchw", weights, self.centres).to(scores.dtype)


def ab_bin_centres(bins: int) -> torch.Tensor:
    """bins² x 2: the centres of a bins x bins grid over a*b* in [-1, 1] (units of AB_SCALE), a* major."""
    axis = (torch.arange(bins, dtype=torch.float32) + 0.5) * (2 / bins) - 1
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)


def ab_bin_index(ab: torch.Tensor, bins: int) -> torch.Tensor:
    """N x 2 x H x W a*b* / AB_SCALE -> N x H x W indices of the grid cell each colour falls in."""
    cells = ((ab.clamp(-1, 1) + 1) * (bins / 2)).long().clamp_(0, bins - 1)
    return cells[:, 0] * bins + cells[:, 1]


class Pix2PixUNet(UNet):
    """Before/after pairs (RGB in [0, 1] both): the change is learnt, added to the picture, so a new model starts
    as the identity and small edits (a retouch, a grade) are easy to learn. Clamped to [0, 1] only in eval mode:
    a clamp in training would stop the gradient of every pixel that overshoots."""

    def __init__(self, channels: int = 32, levels: int = 4) -> None:
        super().__init__(3, 3, channels, levels)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        out = rgb + self.trunk(rgb * 2 - 1)
        return out if self.training else out.clamp(0, 1)


@register_arch("colorize_unet")
def build(channels: int = 32, levels: int = 4, bins: int = 0, context: bool = False,
          temperature: float = 0.38) -> ColorizeUNet:
    return ColorizeUNet(channels, levels, bins, context, temperature)


@register_arch("pix2pix_unet")
def build_pix2pix(channels: int = 32, levels: int = 4) -> Pix2PixUNet:
    return Pix2PixUNet(channels, levels)
