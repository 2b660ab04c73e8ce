"""Sharpening a coarse person mask along the photo's own edges (the guided filter of He et al., 2010).

The pose network gives the mask at half its input size, and the input is a crop scaled to 192 px high, so on a
large photo the mask arrives several times enlarged, with soft, wandering edges. The guided filter makes the mask
locally a linear function of the photo's brightness, which snaps its edge onto the nearest real edge (a sleeve
against a wall) at the cost of a few box filters.
"""
from __future__ import annotations

import cv2
import numpy as np


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """``source`` filtered with the grey ``guide`` (both H x W float32 in [0, 1])."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(source)
    cov_ip = box(guide * source) - mean_i * mean_p
    var_i = box(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def refine_mask(rgb: np.ndarray, mask: np.ndarray, radius: int, eps: float = 1e-3) -> np.ndarray:
    """The mask (H x W float in [0, 1]) with its edges moved onto the photo's (``rgb``: H x W x 3 uint8)."""
    if radius < 1:
        return mask.astype(np.float32)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    refined = guided_filter(grey, mask.astype(np.float32), radius, eps)
    return np.clip(refined, 0.0, 1.0)
