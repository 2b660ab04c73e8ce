"""Inpainting: fill the masked area of an image so that it blends with its surroundings.

Classic methods (OpenCV) fill the mask directly. A learned model sees a crop around the mask with context on every
side, shrunk to the model's working size when larger; its fill is pasted back only inside the mask, shifted to the
colours of the original just outside the mask and faded in over a few pixels inside the mask's edge.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..engine import CancelToken, ProgressCallback, Runtime, run_tiled
from ..engine.cancel import check, report
from ..engine.ensemble import self_ensemble
from ..engine.pipeline import to_array, to_tensor
from ..imaging.color import from_float, from_rgb, merge_alpha, split_alpha, to_float, to_rgb
from ..models import ModelDescriptor
from .base import ToolSpec, best_model, boolean_mask, check_image, find_model, load_module, mask_bounds

_OPENCV_FLAGS = {"opencv-telea": cv2.INPAINT_TELEA, "opencv-ns": cv2.INPAINT_NS}

#: Long side a learned model works at unless its card says otherwise (``working_size``): the size it was trained
#: near and that fits the CPU budget; larger crops are shrunk to it and the fill is enlarged back.
DEFAULT_WORKING_SIZE = 512
#: Context around the mask's bounding box: half its long side, and never less than this many pixels.
MIN_CONTEXT = 48
#: Width (working-size pixels) of the ring just outside the mask where the model's colours are compared with the
#: original's, and the scale over which that difference is averaged along the border.
RING_WIDTH = 3
RING_SIGMA = 16.0


#: The models the tool starts on, best first; OpenCV's instant fills only when no learned model is installed.
PREFERRED_MODELS = ("inpaint-gan", "opencv-telea")


def default_model() -> str:
    """The best installed inpainting model (:data:`PREFERRED_MODELS`, then other learned ones, ours first)."""
    return best_model("inpaint", PREFERRED_MODELS, "opencv-telea")


@dataclass
class InpaintParams:
    model: str = field(default_factory=default_model)
    #: Neighbourhood radius in pixels for the classic methods.
    radius: int = 5
    #: Learned models: the fill fades in over this many pixels inside the mask's edge (0: a hard edge). Pixels
    #: outside the mask are never changed.
    feather: int = 4


def _opencv_inpaint(image: np.ndarray, mask: np.ndarray, radius: int, flags: int) -> np.ndarray:
    mask8 = mask.astype(np.uint8) * 255
    if image.dtype == np.uint8 and image.shape[2] == 3:
        return cv2.inpaint(image, mask8, radius, flags)
    # OpenCV fills 3 channels only at 8 bits; 16-bit, grey and alpha channels go one at a time
    channels = [cv2.inpaint(np.ascontiguousarray(image[..., c]), mask8, radius, flags) for c in range(image.shape[2])]
    return np.stack(channels, axis=2)


def feather_weights(hole: np.ndarray, feather: int) -> np.ndarray:
    """H x W float32: 0 outside the hole, rising linearly over ``feather`` pixels inside its edge to 1."""
    if feather <= 0:
        return hole.astype(np.float32)
    # distance to the nearest pixel outside the hole: 1 on the hole's edge
    inside = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip(inside / (feather + 1), 0.0, 1.0).astype(np.float32)


def border_offset(fill: np.ndarray, original: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """H x W x 3: how much brighter, per channel, the model's output is than the original just outside the hole.

    The difference is measured in a thin ring around the hole and averaged along the border with a Gaussian, so a
    hole between, say, sky and grass is corrected differently at each side; far from the ring the average over the
    whole ring takes over. Subtracting it from the fill leaves no colour step at the mask's edge.
    """
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * RING_WIDTH + 1, 2 * RING_WIDTH + 1))
    ring = (cv2.dilate(hole.astype(np.uint8), kernel) > 0) & ~hole
    if not ring.any():
        return np.zeros_like(fill)
    ring_f = ring.astype(np.float32)
    difference = (fill - original) * ring_f[..., None]
    overall = difference.sum(axis=(0, 1)) / ring_f.sum()
    local_sum = cv2.GaussianBlur(difference, (0, 0), RING_SIGMA, borderType=cv2.BORDER_CONSTANT)
    local_weight = cv2.GaussianBlur(ring_f, (0, 0), RING_SIGMA, borderType=cv2.BORDER_CONSTANT)[..., None]
    # A small prior weight on the overall mean: it decides only where the ring is far away (local_weight ~ 0).
    prior = 1e-3
    return ((local_sum + prior * overall) / (local_weight + prior)).astype(np.float32)


def _context_bounds(hole: np.ndarray) -> tuple[slice, slice]:
    tight = mask_bounds(hole, margin=0)
    assert tight is not None
    long_side = max(tight[0].stop - tight[0].start, tight[1].stop - tight[1].start)
    bounds = mask_bounds(hole, margin=max(MIN_CONTEXT, long_side // 2))
    assert bounds is not None
    return bounds


def _learned_inpaint(image: np.ndarray, hole: np.ndarray, model: ModelDescriptor, feather: int,
                     runtime: Runtime, progress: ProgressCallback | None, cancel: CancelToken | None) -> np.ndarray:
    report(progress, 0.0, f"loading {model.title}")
    module, device, dtype = load_module(model, runtime)
    check(cancel)
    bounds = _context_bounds(hole)
    crop, crop_hole = image[bounds], hole[bounds]
    colour, alpha = split_alpha(crop)
    rgb = to_rgb(to_float(colour))
    height, width = crop_hole.shape
    working = int(model.card.get("working_size", DEFAULT_WORKING_SIZE))
    factor = min(1.0, working / max(height, width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    if factor < 1.0:
        small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        # any overlap with the hole counts, so no trace of what is being removed survives the shrink
        small_hole = cv2.resize(crop_hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    else:
        small_rgb, small_hole = rgb, crop_hole
    inputs = np.concatenate([small_rgb * ~small_hole[..., None], small_hole[..., None]], axis=2, dtype=np.float32)
    # One tile: the model needs the whole crop as context (tiles appear only after an out-of-memory retry).
    tile = math.ceil(max(size) / model.multiple_of) * model.multiple_of
    # A card may ask for a self-ensemble: the average over flipped copies hides grid-tied patterns in large fills.
    network = self_ensemble(module, int(model.card.get("self_ensemble", 1)))
    out = run_tiled(network, to_tensor(inputs), tile=tile, multiple_of=model.multiple_of, device=device, dtype=dtype,
                    progress=lambda fraction, message: report(progress, 0.1 + 0.8 * fraction, message), cancel=cancel)
    small_fill = to_array(out)
    small_fill = small_fill - border_offset(small_fill, small_rgb, small_hole)
    check(cancel)
    if factor < 1.0:
        fill = cv2.resize(small_fill, (width, height), interpolation=cv2.INTER_CUBIC)
    else:
        fill = small_fill
    weight = feather_weights(crop_hole, feather)[..., None]
    blended = from_float(from_rgb(rgb + weight * (fill - rgb), colour.shape[2]), image.dtype)
    # The alpha channel is the user's and stays as it was; only colour is filled.
    blended = merge_alpha(blended, alpha)
    result = image.copy()
    result[bounds] = np.where(crop_hole[..., None], blended, crop)
    report(progress, 1.0, "done")
    return result


def run(
    image: np.ndarray,
    params: InpaintParams,
    mask: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    runtime: Runtime | None = None,
) -> np.ndarray:
    """Fill the pixels where ``mask`` is non-zero; every pixel outside the mask is returned unchanged."""
    check_image(image)
    fill = boolean_mask(mask, image)
    if params.radius < 1:
        raise ValueError("the radius must be at least 1 pixel")
    if params.feather < 0:
        raise ValueError("the feather must be 0 pixels or more")
    model = find_model(params.model, "inpaint")
    bounds = mask_bounds(fill, margin=4 * params.radius + 8)
    if bounds is None:
        raise ValueError("the mask is empty: paint over the area to fill first")
    check(cancel)
    if not model.is_classic:
        return _learned_inpaint(image, fill, model, params.feather, runtime or Runtime(), progress, cancel)
    report(progress, 0.0, model.title)
    # Only the region around the mask is worked on, so a small fix on a large photo stays fast.
    crop, crop_mask = image[bounds], fill[bounds]
    filled = _opencv_inpaint(crop, crop_mask, params.radius, _OPENCV_FLAGS[model.name])
    check(cancel)
    result = image.copy()
    result[bounds] = np.where(crop_mask[..., None], filled, crop)
    report(progress, 1.0, "done")
    return result


TOOL = ToolSpec("inpaint", "Inpainting", "inpaint", InpaintParams, run, needs_mask=True,
                preferred_models=PREFERRED_MODELS)
