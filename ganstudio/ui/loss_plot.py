"""A small live line plot of training losses against the step, drawn with QPainter (no plotting dependency)."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

_COLOURS = ("#4fa3e0", "#e0894f", "#7bc96f", "#c96fb5", "#d6c65a", "#6fc9c4")


class LossPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, list[tuple[int, float]]] = {}
        self.setMinimumSize(320, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def add(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            if isinstance(value, (int, float)):  # a diverged run reports "nan" as text: nothing to draw
                self.series.setdefault(name, []).append((step, float(value)))
        self.update()

    def clear(self) -> None:
        self.series.clear()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.base())
        metrics = self.fontMetrics()
        margin_left = metrics.horizontalAdvance("0.00000") + 8
        area = QRectF(margin_left, 8, self.width() - margin_left - 8, self.height() - metrics.height() - 16)
        painter.setPen(QPen(palette.mid().color()))
        painter.drawRect(area)
        points = [p for values in self.series.values() for p in values]
        if not points:
            painter.setPen(palette.placeholderText().color())
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "The loss curve appears here once training runs")
            return
        first, last = min(s for s, _ in points), max(s for s, _ in points)
        low, high = min(v for _, v in points), max(v for _, v in points)
        if high - low < 1e-12:
            low, high = low - 0.5 * abs(low or 1), high + 0.5 * abs(high or 1)
        span = max(last - first, 1)

        def to_screen(step: int, value: float) -> QPointF:
            return QPointF(area.left() + (step - first) / span * area.width(),
                           area.bottom() - (value - low) / (high - low) * area.height())

        painter.setPen(palette.text().color())
        for value, y in ((high, area.top()), (low, area.bottom() - metrics.height())):
            painter.drawText(QRectF(0, y, margin_left - 4, metrics.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{value:.4g}")
        painter.drawText(QRectF(area.left(), area.bottom() + 4, area.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignLeft, f"step {first}")
        painter.drawText(QRectF(area.left(), area.bottom() + 4, area.width(), metrics.height()),
                         Qt.AlignmentFlag.AlignRight, f"step {last}")
        legend_x = area.left() + 8
        for index, (name, values) in enumerate(self.series.items()):
            colour = QColor(_COLOURS[index % len(_COLOURS)])
            painter.setPen(QPen(colour, 1.6))
            if len(values) == 1:
                painter.drawEllipse(to_screen(*values[0]), 2.5, 2.5)
            else:
                painter.drawPolyline(QPolygonF([to_screen(s, v) for s, v in values]))
            painter.drawText(QPointF(legend_x, area.top() + metrics.height() + 2), name)
            legend_x += metrics.horizontalAdvance(name) + 16
