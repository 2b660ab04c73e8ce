"""Running an RGB image model on app pixels: alpha, grey and bit depth are handled here, once, for every tool."""
from __future__ import annotations

import cv2
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
    model_size: tuple[int, int] | None = None,
    keep_detail: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """Apply an RGB-in, RGB-out model to app pixels (H x W x C, C in 1-4, uint8/uint16), keeping layout and depth.

    The alpha channel never goes through the model: it is resized with bicubic interpolation and re-attached.
    Grey images run as RGB and come back as luma. With ``model_size`` (width, height) the model runs on the colour
    resized to that size and its output is resized back to the input's size times ``scale``, in float, so the
    result is rounded to the image's bit depth only once. With ``keep_detail`` as well (``scale`` 1), only the
    model's change is enlarged and added to the full-size input: a model that grades or retouches at a small
    working size then keeps every detail of a large photo instead of returning it soft.
    """
    if keep_detail and scale != 1:
        raise ValueError("keep_detail adds the model's change to the input: it needs a model of scale 1")
    colour, alpha = split_alpha(pixels)
    full = rgb = to_rgb(to_float(colour))
    height, width = rgb.shape[:2]
    if model_size is not None:
        rgb = _resize_float(rgb, model_size)
    out = to_array(run_tiled(model, to_tensor(rgb), scale=scale, tile=tile, multiple_of=multiple_of, device=device,
                             dtype=dtype, progress=progress, cancel=cancel))
    if model_size is not None and keep_detail:
        out = np.clip(full + _resize_change(out - rgb, (width, height)), 0, 1)
    elif model_size is not None:
        out = _resize_float(out, (width * scale, height * scale))
    result = from_float(from_rgb(out, colour.shape[2]), pixels.dtype)
    if alpha is not None:
        height, width = result.shape[:2]
        if alpha.shape[:2] != (height, width):
            alpha = resize(alpha, (width, height), "bicubic")
        result = merge_alpha(result, alpha)
    return result


def _resize_change(change: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A signed float change (darkening is negative) resized as :func:`_resize_float` would, without clipping it to
    [0, 1] as pixels are."""
    shrinking = size[0] * size[1] < change.shape[0] * change.shape[1]
    out = cv2.resize(np.ascontiguousarray(change, np.float32), size,
                     interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return out.reshape(size[1], size[0], *change.shape[2:])


def _resize_float(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area averaging to shrink (no aliasing), bicubic to enlarge."""
    shrinking = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
    return resize(rgb, size, "area" if shrinking else "bicubic")
