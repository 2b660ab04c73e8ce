"""Image-quality metrics as the super-resolution literature reports them (Y channel, border cropped)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr`` luma of RGB in [0, 1] (…×3×H×W), returned in [0, 1] (16/255 to 235/255)."""
    r, g, b = rgb.unbind(dim=-3)
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def quantize(rgb: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels, as the saved PNG a benchmark measures would be."""
    return rgb.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def _crop(y: torch.Tensor, border: int) -> torch.Tensor:
    return y[..., border:-border, border:-border] if border > 0 else y


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, border: int) -> float:
    """PSNR in dB on the Y channel of one image pair (3×H×W in [0, 1]), ``border`` pixels cropped on each side."""
    diff = _crop(rgb_to_y(quantize(sr)) - rgb_to_y(quantize(hr)), border).double()
    mse = diff.pow(2).mean().item()
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, border: int) -> float:
    """SSIM (Wang et al. 2004: 11×11 Gaussian window, sigma 1.5) on the Y channel scaled to [0, 255]."""
    x = _crop(rgb_to_y(quantize(sr)), border).double().mul(255.0)[None, None]
    y = _crop(rgb_to_y(quantize(hr)), border).double().mul(255.0)[None, None]
    coords = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :])[None, None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    var_x = F.conv2d(x * x, window) - mu_x**2
    var_y = F.conv2d(y * y, window) - mu_y**2
    cov = F.conv2d(x * y, window) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean().item()
