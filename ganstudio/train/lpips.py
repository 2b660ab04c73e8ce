"""LPIPS (Zhang et al. 2018, AlexNet variant) in plain torch, from the weights in ``shared/weights/lpips_alexnet.npz``.

Used as a metric by the benchmarks (lower is closer) and, through :class:`AlexNetFeatures`, as a frozen feature
extractor for perceptual losses and projected discriminators in training. Never shipped with the app: the app
does not need it, and the weights live outside the repository.
"""
from __future__ import annotations

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
