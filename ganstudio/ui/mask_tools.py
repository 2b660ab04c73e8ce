"""Mask painting on the canvas: the shared tool settings, the red overlay, the mask tools (brush, rectangle,
lasso), and the options panel.

The mask is H x W uint8 with 255 = "fill here". The brush paints straight into ``Document.mask`` while the mouse
moves (for instant feedback); the rectangle and lasso show an outline while dragging and fill what it encloses on
release. Either way one press-to-release operation pushes one :class:`EditMask` covering its bounding box, so it is
one undo step and costs only the pixels it touched.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGraphicsItem, QGraphicsPathItem, QSlider, QSpinBox,
                               QStyleOptionGraphicsItem, QWidget)

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


class _MaskTool:
    """What every mask tool shares: the document it works on, whether it fills (255) or clears (0), and pushing
    the operation as one :class:`EditMask`."""

    def __init__(self) -> None:
        self._document: Document | None = None
        self._value = 255
        self._mask_shape: tuple[int, ...] = (0, 0)

    @property
    def active(self) -> bool:
        return self._document is not None

    def _start(self, document: Document, erase: bool) -> None:
        self._document = document
        self._value = 0 if erase else 255
        self._mask_shape = document.mask.shape

    def _stop(self) -> Document | None:
        """End the operation; the document to commit to, or None when there is nothing to commit."""
        document, self._document = self._document, None
        # A tool result that resized the image meanwhile replaced the mask; the operation is then moot.
        if document is None or document.mask.shape != self._mask_shape:
            return None
        return document

    @staticmethod
    def _push(document: Document, region: tuple[int, int, int, int], old: np.ndarray, new: np.ndarray,
              text: str) -> None:
        if not np.array_equal(old, new):
            document.undo_stack.push(EditMask(document, region, old, new, text))


class MaskBrush(_MaskTool):
    """A round hard brush; ``erase`` clears instead of filling. One press-to-release stroke is one undo step."""

    def __init__(self, settings: MaskSettings) -> None:
        super().__init__()
        self._settings = settings
        self._before: np.ndarray | None = None
        self._last: tuple[int, int] = (0, 0)
        self._bounds: list[int] | None = None

    def begin(self, document: Document, point: QPointF, erase: bool) -> None:
        self._start(document, erase)
        self._before = document.mask.copy()
        self._bounds = None
        self._last = (round(point.x()), round(point.y()))
        self._paint(self._last, self._last)

    def extend(self, point: QPointF, constrained: bool = False) -> None:
        """Paint on to ``point``; ``constrained`` (Shift) means nothing to the brush."""
        if self._document is None:
            return
        current = (round(point.x()), round(point.y()))
        if current != self._last:
            self._paint(self._last, current)
            self._last = current

    def finish(self) -> None:
        before, bounds = self._before, self._bounds
        self._before = self._bounds = None
        document = self._stop()
        if document is None or bounds is None:
            return
        x0, y0, x1, y1 = bounds
        old, new = before[y0:y1, x0:x1].copy(), document.mask[y0:y1, x0:x1].copy()
        self._push(document, (x0, y0, x1, y1), old, new, "Erase mask" if self._value == 0 else "Paint mask")

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


class MaskOutline(QGraphicsPathItem):
    """The outline of a shape being dragged: white dashes over a black line, one screen pixel wide at any zoom, so
    it shows on every image."""

    def __init__(self, parent: QGraphicsItem | None = None) -> None:
        super().__init__(parent)
        self._under = QPen(QColor(0, 0, 0, 200), 1)
        self._under.setCosmetic(True)
        self._dashes = QPen(QColor(255, 255, 255, 230), 1, Qt.PenStyle.DashLine)
        self._dashes.setCosmetic(True)
        self.setPen(self._under)
        self.setVisible(False)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        for pen in (self._under, self._dashes):
            painter.setPen(pen)
            painter.drawPath(self.path())


class MaskShape(_MaskTool):
    """A tool that drags an outline and, on release, fills (or with ``erase`` clears) the pixels it encloses, as
    one undo step. The canvas puts :attr:`outline` in its scene. Subclasses say what the drag draws."""

    fill_text = clear_text = ""

    def __init__(self) -> None:
        super().__init__()
        self.outline = MaskOutline()
        self._constrained = False

    def begin(self, document: Document, point: QPointF, erase: bool) -> None:
        self._start(document, erase)
        self._constrained = False
        self._begin(point)
        self._show()

    def extend(self, point: QPointF, constrained: bool = False) -> None:
        if self._document is not None:
            self._constrained = constrained
            self._extend(point)
            self._show()

    def constrain(self, constrained: bool) -> None:
        """Shift pressed or released while dragging, without the mouse moving."""
        if self._document is not None and constrained != self._constrained:
            self._constrained = constrained
            self._show()

    def cancel(self) -> None:
        self._document = None
        self.outline.setVisible(False)

    def finish(self) -> None:
        self.outline.setVisible(False)
        document = self._stop()
        if document is None:
            return
        selection = self._selection(*document.mask.shape)
        if selection is None:
            return
        region, inside = selection
        x0, y0, x1, y1 = region
        old = document.mask[y0:y1, x0:x1].copy()
        new = old.copy()
        new[inside] = self._value
        self._push(document, region, old, new, self.clear_text if self._value == 0 else self.fill_text)

    def _show(self) -> None:
        self.outline.setPath(self._path())
        self.outline.setVisible(True)

    def _begin(self, point: QPointF) -> None:
        raise NotImplementedError

    def _extend(self, point: QPointF) -> None:
        raise NotImplementedError

    def _path(self) -> QPainterPath:
        raise NotImplementedError

    def _selection(self, height: int, width: int) -> tuple[tuple[int, int, int, int], np.ndarray | slice] | None:
        """The region (x0, y0, x1, y1) clipped to the image and which of its pixels the shape covers, or None
        when it covers none."""
        raise NotImplementedError


def _snap(value: float) -> int:
    """The nearest pixel edge (halves go up, as Qt rounds, not to even)."""
    return math.floor(value + 0.5)


class MaskRectangle(MaskShape):
    """A rectangle from the press to the release point, its edges snapped to pixel edges; constrained (Shift) it
    is a square on the longer side."""

    fill_text, clear_text = "Mask rectangle", "Clear rectangle"

    def __init__(self) -> None:
        super().__init__()
        self._anchor = self._corner = QPointF()

    def _begin(self, point: QPointF) -> None:
        self._anchor = self._corner = QPointF(point)

    def _extend(self, point: QPointF) -> None:
        self._corner = QPointF(point)

    def edges(self) -> tuple[int, int, int, int]:
        """Left, top, right, bottom in image pixels (right and bottom exclusive), before clipping to the image."""
        ax, ay = _snap(self._anchor.x()), _snap(self._anchor.y())
        dx, dy = _snap(self._corner.x()) - ax, _snap(self._corner.y()) - ay
        if self._constrained:
            side = max(abs(dx), abs(dy))
            dx, dy = (side if dx >= 0 else -side), (side if dy >= 0 else -side)
        return min(ax, ax + dx), min(ay, ay + dy), max(ax, ax + dx), max(ay, ay + dy)

    def _path(self) -> QPainterPath:
        x0, y0, x1, y1 = self.edges()
        path = QPainterPath()
        path.addRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        return path

    def _selection(self, height: int, width: int) -> tuple[tuple[int, int, int, int], slice] | None:
        x0, y0, x1, y1 = self.edges()
        x0, x1 = max(x0, 0), min(x1, width)
        y0, y1 = max(y0, 0), min(y1, height)
        if x0 >= x1 or y0 >= y1:
            return None
        return (x0, y0, x1, y1), slice(None)


class MaskLasso(MaskShape):
    """A freehand outline, closed from the release point back to the press point; the pixels whose centres it
    encloses are filled (no anti-aliasing, as a hard mask wants)."""

    fill_text, clear_text = "Mask lasso", "Clear lasso"

    def __init__(self) -> None:
        super().__init__()
        self._points: list[tuple[float, float]] = []
        self._drawn = QPainterPath()

    def _begin(self, point: QPointF) -> None:
        self._points = [(point.x(), point.y())]
        self._drawn = QPainterPath(point)

    def _extend(self, point: QPointF) -> None:
        if (point.x(), point.y()) != self._points[-1]:
            self._points.append((point.x(), point.y()))
            self._drawn.lineTo(point)

    def _path(self) -> QPainterPath:
        return self._drawn

    def _selection(self, height: int, width: int) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        points = np.array(self._points, np.float64)
        # Fewer than three distinct points, or all on one line, enclose nothing.
        if len(points) < 3 or np.linalg.matrix_rank(points - points[0]) < 2:
            return None
        x0, y0 = (max(math.floor(v), 0) for v in points.min(axis=0))
        x1, y1 = min(math.ceil(points[:, 0].max()), width), min(math.ceil(points[:, 1].max()), height)
        if x0 >= x1 or y0 >= y1:
            return None
        # Pixel (i, j) has its centre at (i + 0.5, j + 0.5); cv2 takes the vertices with 8 fractional bits.
        vertices = np.round((points - (x0 + 0.5, y0 + 0.5)) * 256).astype(np.int32)
        inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(inside, [vertices], 255, cv2.LINE_8, 8)
        if not inside.any():
            return None
        return (x0, y0, x1, y1), inside > 0


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
