"""numpy pixels (H x W x C, C in 1..4, uint8 or uint16) to a QPixmap for display."""
from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtGui import QImage, QPixmap


def display_pixels(pixels: np.ndarray) -> np.ndarray:
    """An 8-bit, C-contiguous H x W x {1, 3, 4} array for the screen; 16-bit keeps its top byte."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"cannot display an image of shape {pixels.shape}")
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise ValueError(f"cannot display {pixels.dtype} pixels; expected uint8 or uint16")
    if pixels.shape[2] == 2:
        grey, alpha = pixels[:, :, :1], pixels[:, :, 1:]
        pixels = np.concatenate([grey, grey, grey, alpha], axis=2)
    return np.ascontiguousarray(pixels)


class DisplayImage:
    """A QPixmap of an image, and the buffer it is drawn from.

    The pixels are converted once, with OpenCV (fast, and outside the GIL), to the 32-bit layout raster pixmaps
    use natively, so ``QPixmap.fromImage`` has nothing left to convert. The pixmap then shares that buffer instead
    of copying it, which is why this object keeps the buffer: hold it as long as the pixmap is in use.
    """

    def __init__(self, pixels: np.ndarray) -> None:
        shown = display_pixels(pixels)
        channels = shown.shape[2]
        # Qt's 32-bit formats are 0xAARRGGBB words, i.e. bytes B, G, R, A on the little-endian CPUs we run on.
        if channels == 1:
            self.buffer = cv2.cvtColor(shown, cv2.COLOR_GRAY2BGRA)
            fmt = QImage.Format.Format_RGB32
        elif channels == 3:
            self.buffer = cv2.cvtColor(shown, cv2.COLOR_RGB2BGRA)
            fmt = QImage.Format.Format_RGB32
        else:
            self.buffer = cv2.cvtColor(cv2.cvtColor(shown, cv2.COLOR_RGBA2mRGBA), cv2.COLOR_RGBA2BGRA)
            fmt = QImage.Format.Format_ARGB32_Premultiplied
        height, width = self.buffer.shape[:2]
        image = QImage(self.buffer.data, width, height, self.buffer.strides[0], fmt)
        self.pixmap = QPixmap.fromImage(image)


def has_alpha(pixels: np.ndarray) -> bool:
    return pixels.ndim == 3 and pixels.shape[2] in (2, 4)
