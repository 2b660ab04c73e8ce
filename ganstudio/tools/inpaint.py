"""Inpainting: fill the masked area of an image so that it blends with its surroundings."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..engine import CancelToken, ProgressCallback, Runtime
from ..engine.cancel import check, report
from .base import ToolSpec, boolean_mask, check_image, find_model

_OPENCV_FLAGS = {"opencv-telea": cv2.INPAINT_TELEA, "opencv-ns": cv2.INPAINT_NS}


@dataclass
class InpaintParams:
    model: str = "opencv-telea"
    #: Neighbourhood radius in pixels for the classic methods.
    radius: int = 5


def mask_bounds(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The mask's bounding box grown by ``margin`` and clipped to the image, or None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    height, width = mask.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, height)),
            slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, width)))


def _opencv_inpaint(image: np.ndarray, mask: np.ndarray, radius: int, flags: int) -> np.ndarray:
    mask8 = mask.astype(np.uint8) * 255
    if image.dtype == np.uint8 and image.shape[2] == 3:
        return cv2.inpaint(image, mask8, radius, flags)
    # OpenCV fills 3 channels only at 8 bits; 16-bit, grey and alpha channels go one at a time
    channels = [cv2.inpaint(np.ascontiguousarray(image[..., c]), mask8, radius, flags) for c in range(image.shape[2])]
    return np.stack(channels, axis=2)


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
    model = find_model(params.model, "inpaint")
    bounds = mask_bounds(fill, margin=4 * params.radius + 8)
    if bounds is None:
        raise ValueError("the mask is empty: paint over the area to fill first")
    if not model.is_classic:
        raise ValueError(f"{model.title} is not supported by this version of the inpainting tool")
    check(cancel)
    report(progress, 0.0, model.title)
    # Only the region around the mask is worked on, so a small fix on a large photo stays fast.
    crop, crop_mask = image[bounds], fill[bounds]
    filled = _opencv_inpaint(crop, crop_mask, params.radius, _OPENCV_FLAGS[model.name])
    check(cancel)
    result = image.copy()
    result[bounds] = np.where(crop_mask[..., None], filled, crop)
    report(progress, 1.0, "done")
    return result


TOOL = ToolSpec("inpaint", "Inpainting", "inpaint", InpaintParams, run, needs_mask=True)
