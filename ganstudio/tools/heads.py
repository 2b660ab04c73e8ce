"""Finding an animal's head in a photo: the head locator's output decoded into boxes, and the locator run on a photo.

The locator (``head-locator``, task ``head_locator``) is a small PoseNet with one heatmap (the head's centre) and
one mask channel (the head's disc), run on the photo letterboxed into its square input. The Translate tool uses it
to turn the head alone at the scale its model learnt heads at, so a whole photo of a cat becomes a dog's head on
the same body and background.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..engine import CancelToken, Runtime
from ..engine.cancel import check
from ..pose.decode import decode_heatmaps, fit_matrix, to_opencv
from .base import as_rgb8, check_image, find_model, load_module

TASK = "head_locator"
DEFAULT_MODEL = "head-locator"
#: Below this peak of the centre heatmap no head is reported: the photo shows none the locator knows.
MIN_CONFIDENCE = 0.3


@dataclass(frozen=True)
class HeadBox:
    """A head's centre and the side of the square around it, in pixels, and how sure the locator is (0-1)."""

    cx: float
    cy: float
    side: float
    confidence: float

    def square(self, scale: float = 1.0) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` of the square ``scale`` times the head's side, about its centre."""
        half = self.side * scale / 2
        return self.cx - half, self.cy - half, self.cx + half, self.cy + half


def decode_head(heatmap: np.ndarray, mask: np.ndarray, stride: int) -> HeadBox:
    """The head in the locator's input pixels, from its centre heatmap (h x w) and head-mask probabilities (h x w).

    The centre is the heatmap's peak; the side is the diameter of the disc of the mask's area in the connected part
    (above half its peak) that holds the peak, or the nearest part when the
    mask missed it."""
    (point,), (confidence,) = decode_heatmaps(heatmap[None], stride)
    # above half the mask's own peak: where it is unsure everywhere (a head unlike the training views) its shape
    # is still the head's, only fainter, and a fixed 0.5 would keep a few cells of it
    cells = (mask > 0.5 * float(mask.max())).astype(np.uint8)
    col = int(np.clip(point[0] / stride, 0, mask.shape[1] - 1))
    row = int(np.clip(point[1] / stride, 0, mask.shape[0] - 1))
    count, labels = cv2.connectedComponents(cells)
    label = labels[row, col]
    if label == 0 and count > 1:
        # the nearest part of the mask: a peak on the disc's edge falls just outside it
        ys, xs = np.nonzero(labels)
        nearest = np.argmin((ys - row) ** 2 + (xs - col) ** 2)
        label = labels[ys[nearest], xs[nearest]]
    area = float((labels == label).sum()) if label else 1.0
    side = 2.0 * np.sqrt(area / np.pi) * stride
    return HeadBox(float(point[0]), float(point[1]), float(side), float(confidence))


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo scaled to fit a ``size`` square, centred on mid grey, and the 2 x 3 transform into it."""
    height, width = rgb.shape[:2]
    matrix = fit_matrix(width, height, size, size)
    view = cv2.warpAffine(rgb, to_opencv(matrix), (size, size), flags=cv2.INTER_AREA if max(height, width) > size
                          else cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    return view, matrix


def locate_head(image: np.ndarray, model: str = DEFAULT_MODEL, runtime: Runtime | None = None,
                cancel: CancelToken | None = None) -> HeadBox | None:
    """The largest-scoring animal head in ``image`` (pixels of ``image``), or None when the locator finds none."""
    check_image(image)
    runtime = runtime or Runtime()
    descriptor = find_model(model, TASK)
    module, device, dtype = load_module(descriptor, runtime)
    module.eval()
    size = int(descriptor.card.get("input", {}).get("size", 128))
    stride = int(descriptor.card.get("input", {}).get("stride", 2))
    view, matrix = letterbox(as_rgb8(image), size)
    check(cancel)
    with torch.no_grad():
        x = torch.from_numpy(view).permute(2, 0, 1)[None].float().div_(255).to(device, dtype)
        out = module(x.contiguous(memory_format=torch.channels_last)).float().cpu()[0]
    head = decode_head(out[0].numpy(), torch.sigmoid(out[1]).numpy(), stride)
    if head.confidence < MIN_CONFIDENCE:
        return None
    scale = matrix[0, 0]
    # back through the letterbox: a pure scale and shift
    return HeadBox((head.cx - matrix[0, 2]) / scale, (head.cy - matrix[1, 2]) / scale, head.side / scale,
                   head.confidence)
