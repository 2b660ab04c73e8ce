"""Mask painting on the canvas: the shared tool settings, the red overlay, the brush, and their options panel.

The mask is H x W uint8 with 255 = "fill here". Tools paint straight into ``Document.mask`` while the mouse moves
(for instant feedback) and push one :class:`EditMask` covering the stroke's bounding box when it ends, so a stroke
is one undo step and costs only the pixels it touched.
"""
from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGraphicsItem, QSlider, QSpinBox, QStyleOptionGraphicsItem,
                               QWidget)

from ganstudio.ui.document import Document, EditMask

MIN_BRUSH, MAX_BRUSH = 1, 1000
#: ``[`` and ``]`` scale the brush by this factor, as in Photoshop and Krita: fine steps when small, big when large.
BRUSH_STEP = 1.2
OVERLAY_RGB = (255, 40, 40)


class MaskSettings(QObject):
    """Tool options shared by every open image, like a paint program's tool options bar."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._brush_size = 40
        self._opacity = 0.5
        self._visible = True

    @property
    def brush_size(self) -> int:
        return self._brush_size

    @brush_size.setter
    def brush_size(self, value: int) -> None:
        value = int(min(max(value, MIN_BRUSH), MAX_BRUSH))
        if value != self._brush_size:
            self._brush_size = value
            self.changed.emit()

    def grow_brush(self) -> None:
        self.brush_size = max(self._brush_size + 1, round(self._brush_size * BRUSH_STEP))

    def shrink_brush(self) -> None:
        self.brush_size = min(self._brush_size - 1, round(self._brush_size / BRUSH_STEP))

    @property
    def opacity(self) -> float:
        return self._opacity

    @opacity.setter
    def opacity(self, value: float) -> None:
        value = float(min(max(value, 0.0), 1.0))
        if value != self._opacity:
            self._opacity = value
            self.changed.emit()

    @property
    def visible(self) -> bool:
        return self._visible

    @visible.setter
    def visible(self, value: bool) -> None:
        if value != self._visible:
            self._visible = bool(value)
            self.changed.emit()


class MaskOverlay(QGraphicsItem):
    """The mask drawn as translucent red over the image.

    Keeps a premultiplied ARGB copy of the mask so painting is a plain blit, and updates only the changed region
    during a stroke. No buffer is held while the mask is empty. The overlay's strength is the item's opacity, so
    changing it costs nothing.
    """

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)
        self._size = (0, 0)
        self._argb: np.ndarray | None = None
        self._image: QImage | None = None
        # Mask value v (255 = fill) -> red with alpha v, premultiplied.
        alpha = np.arange(256, dtype=np.uint32)
        r, g, b = (np.round(alpha * c / 255).astype(np.uint32) for c in OVERLAY_RGB)
        self._lut = (alpha << 24) | (r << 16) | (g << 8) | b

    def set_mask(self, mask: np.ndarray) -> None:
        height, width = mask.shape
        if (width, height) != self._size:
            self.prepareGeometryChange()
            self._size = (width, height)
        if mask.any():
            self._argb = self._lut[mask]
            self._wrap()
        else:
            self._argb = self._image = None
        self.update()

    def update_region(self, mask: np.ndarray, region: tuple[int, int, int, int]) -> None:
        x0, y0, x1, y1 = region
        if self._argb is None:
            self._argb = np.zeros(mask.shape, np.uint32)
            self._wrap()
        self._argb[y0:y1, x0:x1] = self._lut[mask[y0:y1, x0:x1]]
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def _wrap(self) -> None:
        # The QImage shares the numpy buffer, so region updates show without another copy.
        height, width = self._argb.shape
        self._image = QImage(self._argb.data, width, height, self._argb.strides[0],
                             QImage.Format.Format_ARGB32_Premultiplied)

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, *self._size)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._image is not None:
            exposed = option.exposedRect.intersected(self.boundingRect())
            painter.drawImage(exposed, self._image, exposed)


class MaskBrush:
    """A round hard brush; ``erase`` clears instead of filling. One press-to-release stroke is one undo step."""

    def __init__(self, settings: MaskSettings) -> None:
        self._settings = settings
        self._document: Document | None = None
        self._before: np.ndarray | None = None
        self._value = 255
        self._last: tuple[int, int] = (0, 0)
        self._bounds: list[int] | None = None

    @property
    def active(self) -> bool:
        return self._document is not None

    def begin(self, document: Document, point: QPointF, erase: bool) -> None:
        self._document = document
        self._before = document.mask.copy()
        self._value = 0 if erase else 255
        self._bounds = None
        self._last = (round(point.x()), round(point.y()))
        self._paint(self._last, self._last)

    def extend(self, point: QPointF) -> None:
        if self._document is None:
            return
        current = (round(point.x()), round(point.y()))
        if current != self._last:
            self._paint(self._last, current)
            self._last = current

    def finish(self) -> None:
        document, before, bounds = self._document, self._before, self._bounds
        self._document = self._before = self._bounds = None
        # A tool result that resized the image mid-stroke replaced the mask; the stroke is then moot.
        if document is None or bounds is None or before.shape != document.mask.shape:
            return
        x0, y0, x1, y1 = bounds
        old, new = before[y0:y1, x0:x1].copy(), document.mask[y0:y1, x0:x1].copy()
        if np.array_equal(old, new):
            return
        text = "Erase mask" if self._value == 0 else "Paint mask"
        document.undo_stack.push(EditMask(document, (x0, y0, x1, y1), old, new, text))

    def _paint(self, start: tuple[int, int], end: tuple[int, int]) -> None:
        mask = self._document.mask
        size = self._settings.brush_size
        # Thick cv2 lines have round caps (a zero-length one is a disc), so segments join without gaps.
        cv2.line(mask, start, end, self._value, size, cv2.LINE_8)
        height, width = mask.shape
        reach = size // 2 + 2
        x0 = max(min(start[0], end[0]) - reach, 0)
        y0 = max(min(start[1], end[1]) - reach, 0)
        x1 = min(max(start[0], end[0]) + reach + 1, width)
        y1 = min(max(start[1], end[1]) + reach + 1, height)
        if x0 >= x1 or y0 >= y1:
            return
        if self._bounds is None:
            self._bounds = [x0, y0, x1, y1]
        else:
            b = self._bounds
            self._bounds = [min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)]
        self._document.mask_changed.emit((x0, y0, x1, y1))


class MaskOptions(QWidget):
    """Brush size, overlay opacity and visibility, bound to a :class:`MaskSettings`."""

    def __init__(self, settings: MaskSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._size = QSpinBox()
        self._size.setRange(MIN_BRUSH, MAX_BRUSH)
        self._size.setSuffix(" px")
        self._size.setToolTip("Brush diameter in image pixels ( [ and ] )")
        self._opacity = QSlider(Qt.Orientation.Horizontal)
        self._opacity.setRange(0, 100)
        self._opacity.setToolTip("How strongly the mask overlay tints the image")
        self._visible = QCheckBox("Show mask overlay")
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addRow("Brush size", self._size)
        layout.addRow("Overlay", self._opacity)
        layout.addRow(self._visible)
        self._sync()
        self._size.valueChanged.connect(lambda v: setattr(settings, "brush_size", v))
        self._opacity.valueChanged.connect(lambda v: setattr(settings, "opacity", v / 100))
        self._visible.toggled.connect(lambda v: setattr(settings, "visible", v))
        settings.changed.connect(self._sync)

    def _sync(self) -> None:
        for widget, value in ((self._size, self._settings.brush_size),
                              (self._opacity, round(self._settings.opacity * 100)),
                              (self._visible, self._settings.visible)):
            widget.blockSignals(True)
            if isinstance(widget, QCheckBox):
                widget.setChecked(value)
            else:
                widget.setValue(value)
            widget.blockSignals(False)
