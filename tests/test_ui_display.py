"""Pixels to screen, and the document's before image."""
from __future__ import annotations

import numpy as np
import pytest

from ganstudio.ui.document import Document
from ganstudio.ui.qimage import DisplayImage


@pytest.mark.parametrize("pixels, expected", [
    (np.array([[[200]]], np.uint8), (200, 200, 200, 255)),
    (np.array([[[100, 51]]], np.uint8), (100, 100, 100, 51)),
    (np.array([[[10, 20, 30]]], np.uint8), (10, 20, 30, 255)),
    (np.array([[[10, 20, 30, 255], [90, 90, 90, 0]]], np.uint8), (10, 20, 30, 255)),
    (np.array([[[200, 100, 50, 128]]], np.uint8), (200, 100, 50, 128)),
    (np.array([[[65535, 0, 32896]]], np.uint16), (255, 0, 128, 255)),
    (np.array([[[65535, 0]]], np.uint16), (0, 0, 0, 0)),
])
def test_every_pixel_layout_displays(qapp, pixels, expected):
    image = DisplayImage(pixels).pixmap.toImage()
    assert (image.width(), image.height()) == (pixels.shape[1], pixels.shape[0])
    shown = image.pixelColor(0, 0).getRgb()
    if expected[3] == 0:
        assert shown[3] == 0
    else:
        # Semi-transparent pixels are stored premultiplied, so their colour comes back within rounding.
        assert np.abs(np.subtract(shown, expected)).max() <= (0 if expected[3] == 255 else 2)


def test_the_display_keeps_the_buffer_its_pixmap_shares(qapp):
    pixels = np.zeros((2, 3, 3), np.uint8)
    display = DisplayImage(pixels)
    pixels[:] = 255  # the document's array may change; the display has its own converted copy
    assert display.pixmap.toImage().pixelColor(0, 0).getRgb() == (0, 0, 0, 255)
    assert display.buffer.shape == (2, 3, 4)


def test_before_is_the_input_of_the_last_applied_tool_run(qapp):
    opened = np.zeros((2, 2, 3), np.uint8)
    document = Document(opened)
    first, second = opened + 1, opened + 2
    document.apply_result(first, "one")
    document.set_mask(np.full((2, 2), 255, np.uint8), "mask")  # mask edits do not move the before image
    document.apply_result(second, "two")
    assert document.before is first
    document.undo_stack.undo()
    document.undo_stack.undo()
    assert document.before is opened
    document.undo_stack.undo()
    assert document.before is opened and document.pixels is opened
