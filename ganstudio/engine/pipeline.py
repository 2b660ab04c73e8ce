"""Running an RGB image model on app pixels: alpha, grey and bit depth are handled here, once, for every tool."""
from __future__ import annotations

import numpy as np
import torch

from ..imaging.color import from_float, from_rgb, merge_alpha, resize, split_alpha, to_float, to_rgb
from .cancel import CancelToken, ProgressCallback
from .tiling import ModelFn, run_tiled


def to_tensor(rgb_float: np.ndarray) -> torch.Tensor:
    """H x W x C float32 -> 1 x C x H x W."""
    return torch.from_numpy(np.ascontiguousarray(rgb_float.transpose(2, 0, 1)))[None]


def to_array(tensor: torch.Tensor) -> np.ndarray:
    """1 x C x H x W -> H x W x C float32, clipped to [0, 1]."""
    return tensor[0].clamp(0, 1).permute(1, 2, 0).contiguous().numpy()


def run_rgb_model(
    pixels: np.ndarray,
    model: ModelFn,
    *,
    scale: int = 1,
    multiple_of: int = 1,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    tile: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Apply an RGB-in, RGB-out model to app pixels (H x W x C, C in 1-4, uint8/uint16), keeping layout and depth.

    The alpha channel never goes through the model: it is resized with bicubic interpolation and re-attached.
    Grey images run as RGB and come back as luma.
    """
    colour, alpha = split_alpha(pixels)
    rgb = to_rgb(to_float(colour))
    out = run_tiled(model, to_tensor(rgb), scale=scale, tile=tile, multiple_of=multiple_of, device=device,
                    dtype=dtype, progress=progress, cancel=cancel)
    result = from_float(from_rgb(to_array(out), colour.shape[2]), pixels.dtype)
    if alpha is not None:
        height, width = result.shape[:2]
        if alpha.shape[:2] != (height, width):
            alpha = resize(alpha, (width, height), "bicubic")
        result = merge_alpha(result, alpha)
    return result
