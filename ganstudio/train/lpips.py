"""LPIPS (Zhang et al. 2018, AlexNet variant) in plain torch, from the weights in ``shared/weights/lpips_alexnet.npz``.

Used as a metric by the benchmarks (lower is closer) and, through :class:`AlexNetFeatures`, as a frozen feature
extractor for perceptual losses and projected discriminators in training. Never shipped with the app: the app
does not need it, and the weights live outside the repository.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

#: Where the weights are found unless a path is given: ``$GANSTUDIO_LPIPS_WEIGHTS``, else ``../shared/weights``.
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "weights" / "lpips_alexnet.npz"

# conv index -> (stride, padding), as in torchvision's AlexNet that LPIPS was trained on
_CONVS = ((4, 2), (1, 2), (1, 1), (1, 1), (1, 1))
# LPIPS's ScalingLayer: inputs in [-1, 1] are shifted and scaled to ImageNet statistics
_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def weights_path(path: str | Path | None = None) -> Path:
    if path is not None:
        return Path(path)
    override = os.environ.get("GANSTUDIO_LPIPS_WEIGHTS")
    return Path(override) if override else DEFAULT_WEIGHTS


class AlexNetFeatures(nn.Module):
    """ImageNet AlexNet's five conv stages, frozen; returns the ReLU output of each for RGB input in [0, 1]."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        for index, (stride, padding) in enumerate(_CONVS):
            kernel = arrays[f"AlexNet_0/Conv_{index}/kernel"]  # HWIO
            conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[0], stride=stride, padding=padding)
            conv.weight.data.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            conv.bias.data.copy_(torch.from_numpy(arrays[f"AlexNet_0/Conv_{index}/bias"]))
            self.convs.append(conv)
        self.register_buffer("shift", _SHIFT.clone())
        self.register_buffer("scale", _SCALE.clone())
        self.requires_grad_(False).eval()

    @classmethod
    def load(cls, path: str | Path | None = None) -> "AlexNetFeatures":
        with np.load(weights_path(path)) as data:
            return cls({k: data[k] for k in data.files})

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x = (rgb * 2 - 1 - self.shift) / self.scale
        features = []
        for index, conv in enumerate(self.convs):
            if index in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            features.append(x)
        return features


class LPIPS(nn.Module):
    """Learned perceptual distance between two RGB batches in [0, 1]: one value per image, 0 for identical."""

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        with np.load(weights_path(path)) as data:
            arrays = {k: data[k] for k in data.files}
        self.features = AlexNetFeatures(arrays)
        heads = [torch.from_numpy(arrays[f"NetLinLayer_{i}/Conv_0/kernel"].reshape(1, -1, 1, 1).copy())
                 for i in range(5)]
        for index, head in enumerate(heads):
            self.register_buffer(f"head{index}", head)
        self.requires_grad_(False).eval()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(a.shape[0], device=a.device)
        for index, (fa, fb) in enumerate(zip(self.features(a), self.features(b))):
            fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            weighted = ((fa - fb) ** 2 * getattr(self, f"head{index}")).sum(1)
            total = total + weighted.mean(dim=(1, 2))
        return total


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian low-pass of an N x C x H x W batch, edges reflected."""
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype) / sigma) ** 2)
    taps = taps / taps.sum()
    channels = images.shape[1]
    out = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1).contiguous(), groups=channels)
    return F.conv2d(out, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1).contiguous(), groups=channels)


def perceptual_views(sr: torch.Tensor, hr: torch.Tensor, blur: float) -> tuple[torch.Tensor, torch.Tensor]:
    """What the AlexNet-based losses compare: both batches with the same random 0-3 pixel offset cut off their top
    and left edges and, with ``blur`` > 0, low-passed by a Gaussian of that sigma.

    AlexNet's first conv has stride 4: it sees the image on a 4-pixel grid, and patterns near that period alias into
    its features as if they were texture. Without either measure the generator learns such a mesh: it lowers the
    training loss and shows on skin and sky (the sample grids of the first runs). A new phase each step stops it
    from fitting one grid; the blur removes the frequencies that alias, leaving them to the L1 loss.
    """
    dy, dx = (int(v) for v in torch.randint(0, 4, (2,)))
    sr, hr = sr[..., dy:, dx:], hr[..., dy:, dx:]
    if blur > 0:
        sr, hr = gaussian_blur(sr, blur), gaussian_blur(hr, blur)
    return sr, hr
