"""Tiled inference: any image size on any device, with overlapping tiles blended so no seam shows.

Each tile's outer ``overlap // 4`` pixels on an interior edge get zero weight and the next ``overlap // 2`` a
linear ramp, so a model whose receptive-field radius is at most ``overlap // 4`` input pixels gives the same
output tiled as untiled away from the image border.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable

import torch
import torch.nn.functional as F

from .cancel import CancelToken, ProgressCallback, check, report

ModelFn = Callable[[torch.Tensor], torch.Tensor]

DEFAULT_OVERLAP = 32
MIN_TILE = 32
_OOM_ERRORS: tuple[type[BaseException], ...] = tuple(
    {getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), torch.cuda.OutOfMemoryError}
)


class TilingError(RuntimeError):
    """The model could not run even on the smallest tile."""


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, _OOM_ERRORS):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def auto_tile_size(device: torch.device) -> int:
    """A tile edge (input pixels) that fits comfortably: large on a GPU with memory to spare, moderate on the CPU."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return 1024 if free > 8 * 2**30 else 512
    return 512


def tile_layout(length: int, tile: int, overlap: int, multiple_of: int = 1) -> tuple[list[int], int]:
    """Start offsets and the one tile size that cover ``[0, length)`` with tiles of at most ``tile`` overlapping
    by at least ``overlap``.

    The count comes first (the fewest tiles of ``tile`` that cover the length), then the tiles are shrunk to the
    smallest equal size that still covers it and spread evenly. Laying full tiles from the top/left edge and pushing
    the last one back instead computes up to twice the pixels needed (a 1000 px side as 512 + 512 + 512).
    """
    if length <= tile:
        return [0], length
    count = math.ceil((length - overlap) / max(tile - overlap, 1))
    size = math.ceil((length + (count - 1) * overlap) / count)
    size = min(tile, -(-size // multiple_of) * multiple_of)
    # Integer starts make the gaps differ by a pixel; grow until even the widest gap keeps the overlap.
    while size < tile and size - math.ceil((length - size) / (count - 1)) < overlap:
        size += 1
    starts = [(i * (length - size)) // (count - 1) for i in range(count)]
    return starts, size


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of :func:`tile_layout`'s tiles."""
    return tile_layout(length, tile, overlap)[0]


def computed_ratio(height: int, width: int, tile: int, overlap: int = DEFAULT_OVERLAP, multiple_of: int = 1) -> float:
    """Input pixels the tiles compute over the pixels of the image: the cost of tiling (1.0 for one tile)."""
    ys, th = tile_layout(height, tile, overlap, multiple_of)
    xs, tw = tile_layout(width, tile, overlap, multiple_of)
    return len(ys) * th * len(xs) * tw / (height * width)


def _edge_weights(size: int, ramp_start: int, ramp_len: int, at_start: bool, at_end: bool) -> torch.Tensor:
    weights = torch.ones(size)
    if ramp_len <= 0:
        return weights
    ramp = (torch.arange(ramp_len, dtype=torch.float32) + 0.5) / ramp_len
    if not at_start:
        weights[:ramp_start] = 0
        weights[ramp_start : ramp_start + ramp_len] = ramp
    if not at_end:
        weights[size - ramp_start :] = 0
        weights[size - ramp_start - ramp_len : size - ramp_start] = torch.minimum(
            weights[size - ramp_start - ramp_len : size - ramp_start], ramp.flip(0)
        )
    return weights


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    pad_h = (-h) % multiple
    pad_w = (-w) % multiple
    if pad_h or pad_w:
        # reflect needs the pad to be smaller than the side; tiny inputs fall back to edge replication
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, h, w


def _run_tile(model: ModelFn, x: torch.Tensor, scale: int, multiple_of: int, device: torch.device,
              dtype: torch.dtype, channels_last: bool) -> torch.Tensor:
    padded, h, w = _pad_to_multiple(x, multiple_of)
    batch = padded.to(device=device, dtype=dtype)
    if channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = model(batch)
    expected = (padded.shape[-2] * scale, padded.shape[-1] * scale)
    if tuple(out.shape[-2:]) != expected:
        raise TilingError(f"the model returned {tuple(out.shape[-2:])} pixels for a tile that should give {expected}")
    return out[..., : h * scale, : w * scale].to(device="cpu", dtype=torch.float32)


@contextmanager
def _progress_inside(model: ModelFn, progress: ProgressCallback | None, start: float, share: float, message: str):
    """Progress from ``start`` towards ``start + share`` as ``model``'s layers run: one tile of a ×4 GAN takes ten
    seconds or more on a CPU, and a bar that stands still that long looks like a hang."""
    if progress is None or not isinstance(model, torch.nn.Module):
        yield
        return
    leaves = [module for module in model.modules() if next(module.children(), None) is None]
    ran = 0
    shown = -1

    def after_layer(*_: object) -> None:
        nonlocal ran, shown
        ran += 1
        percent = min(99, 100 * ran // len(leaves))
        if percent != shown:
            shown = percent
            report(progress, start + share * percent / 100, message)

    handles = [leaf.register_forward_hook(after_layer) for leaf in leaves]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def run_tiled(
    model: ModelFn,
    image: torch.Tensor,
    *,
    scale: int = 1,
    tile: int = 0,
    overlap: int = DEFAULT_OVERLAP,
    multiple_of: int = 1,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> torch.Tensor:
    """Run ``model`` over ``image`` (1 x C x H x W, float32, CPU) in overlapping tiles and return the blended result.

    ``tile`` 0 chooses a size for the device. After an out-of-memory error the whole pass restarts with tiles half as
    large, down to :data:`MIN_TILE`. ``cancel`` is checked before every tile; progress is reported after each.
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError("run_tiled expects a 1 x C x H x W tensor")
    device = device or torch.device("cpu")
    if channels_last is None:
        channels_last = device.type == "cpu"
    tile = tile or auto_tile_size(device)
    while True:
        try:
            return _run_pass(model, image, scale, tile, overlap, multiple_of, device, dtype, channels_last,
                             progress, cancel)
        except Exception as error:  # noqa: BLE001 - only out-of-memory is retried; everything else re-raises
            if not is_out_of_memory(error):
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            smaller = tile // 2
            if smaller < MIN_TILE:
                raise TilingError(f"out of memory even with {tile}-pixel tiles: try the CPU or a smaller image") from error
            report(progress, 0.0, f"out of memory: retrying with {smaller}-pixel tiles")
            tile = smaller


def _run_pass(model: ModelFn, image: torch.Tensor, scale: int, tile: int, overlap: int, multiple_of: int,
              device: torch.device, dtype: torch.dtype, channels_last: bool,
              progress: ProgressCallback | None, cancel: CancelToken | None) -> torch.Tensor:
    _, _, height, width = image.shape
    tile = max(multiple_of, tile - tile % multiple_of)
    overlap = min(overlap, tile // 2)
    ys, tile_h = tile_layout(height, tile, overlap, multiple_of)
    xs, tile_w = tile_layout(width, tile, overlap, multiple_of)
    total = len(ys) * len(xs)
    if total == 1:
        check(cancel)
        with _progress_inside(model, progress, 0.0, 1.0, "1/1 tile"):
            out = _run_tile(model, image, scale, multiple_of, device, dtype, channels_last)
        report(progress, 1.0, "1/1 tile")
        return out

    margin, ramp = overlap // 4, overlap - 2 * (overlap // 4)
    output: torch.Tensor | None = None
    weight_sum = torch.zeros(1, 1, height * scale, width * scale)
    done = 0
    for y in ys:
        for x in xs:
            check(cancel)
            th, tw = min(tile_h, height - y), min(tile_w, width - x)
            with _progress_inside(model, progress, done / total, 1 / total, f"{done + 1}/{total} tiles"):
                out = _run_tile(model, image[..., y : y + th, x : x + tw], scale, multiple_of, device, dtype,
                                channels_last)
            if output is None:
                output = torch.zeros(1, out.shape[1], height * scale, width * scale)
            wy = _edge_weights(th * scale, margin * scale, ramp * scale, y == 0, y + th == height)
            wx = _edge_weights(tw * scale, margin * scale, ramp * scale, x == 0, x + tw == width)
            weights = (wy[:, None] * wx[None, :])[None, None]
            ys_out, xs_out = slice(y * scale, (y + th) * scale), slice(x * scale, (x + tw) * scale)
            output[..., ys_out, xs_out] += out * weights
            weight_sum[..., ys_out, xs_out] += weights
            done += 1
            report(progress, done / total, f"{done}/{total} tiles")
    assert output is not None
    return output / weight_sum.clamp_min(1e-8)
