"""A small unconditional generator after DCGAN (Radford et al. 2016): a latent vector in, a new picture out.

Changed from the paper: each 2x stage resizes (nearest) and then convolves instead of using a transposed
convolution, whose uneven overlaps leave checkerboard artifacts (Odena et al. 2016), as the CycleGAN generator here
does. Batch norm stays, as in the paper; the shipped weights are used in eval mode, so a picture depends only on
its own latent vector, never on what else is generated with it.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ganstudio.models.arch import register_arch

#: The first feature map is this many pixels square; each stage doubles it.
BASE_SIZE = 4


def stage_count(size: int) -> int:
    """How many 2x stages lead from :data:`BASE_SIZE` to ``size``; ValueError unless ``size`` is 4 x a power of 2."""
    stages = (size // BASE_SIZE).bit_length() - 1
    if size < 2 * BASE_SIZE or BASE_SIZE * 2**stages != size:
        raise ValueError(f"size must be {2 * BASE_SIZE}, {4 * BASE_SIZE}, {8 * BASE_SIZE}, ... (4 times a power of "
                         f"2), not {size}")
    return stages


def _width(ngf: int, stage: int) -> int:
    # 8 x ngf channels at 4 px, halved at each stage (the paper's 1024-512-256-128 at ngf 128), at least 8
    return max(8, (ngf * 8) >> stage)


@register_arch("dcgan")
class DCGANGenerator(nn.Module):
    """``N x latent_dim`` standard-normal vectors -> ``N x 3 x size x size`` RGB in [0, 1].

    About 2.6 M parameters at the defaults (``latent_dim`` 128, ``ngf`` 64, 64 px).
    """

    def __init__(self, latent_dim: int = 128, ngf: int = 64, size: int = 64) -> None:
        super().__init__()
        if latent_dim < 1 or ngf < 1:
            raise ValueError(f"latent_dim and ngf must be at least 1, not {latent_dim} and {ngf}")
        stages = stage_count(size)
        self.latent_dim, self.size = latent_dim, size
        first = _width(ngf, 0)
        self.project = nn.Linear(latent_dim, first * BASE_SIZE * BASE_SIZE)
        self.project_norm = nn.Sequential(nn.BatchNorm2d(first), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for stage in range(1, stages + 1):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(_width(ngf, stage - 1), _width(ngf, stage), 3, padding=1, bias=False),
                       nn.BatchNorm2d(_width(ngf, stage)), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.to_rgb = nn.Conv2d(_width(ngf, stages), 3, 3, padding=1)
        for module in self.modules():
            # the paper's init: N(0, 0.02) weights, batch-norm scales N(1, 0.02)
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected N x {self.latent_dim} latent vectors, got {tuple(z.shape)}")
        x = self.project(z).view(z.shape[0], -1, BASE_SIZE, BASE_SIZE)
        x = self.body(self.project_norm(x))
        return (torch.tanh(self.to_rgb(x)) + 1) / 2
