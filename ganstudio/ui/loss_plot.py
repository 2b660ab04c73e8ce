"""A small live line plot of training losses against the step, drawn with QPainter (no plotting dependency).

Per-step losses of small batches are mostly noise: once a series has enough points it is drawn faintly, with its
moving average on top, and the value axis spans the average and the bulk of the points rather than every spike."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

_COLOURS = ("#4fa3e0", "#e0894f", "#7bc96f", "#c96fb5", "#d6c65a", "#6fc9c4")
#: Series shorter than this are drawn as they are.
SMOOTH_FROM = 20


def smoothed(values: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """An exponential moving average over about a sixth of the series (at most 100 points), bias-corrected so it
    starts at the first values rather than at zero."""
    span = min(100, max(2, len(values) // 6))
    decay = 1 - 2 / (span + 1)
    average, weight, out = 0.0, 0.0, []
    for step, value in values:
        average = decay * average + (1 - decay) * value
        weight = decay * weight + (1 - decay)
        out.append((step, average / weight))
    return out


def _quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))]


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
        averages = {name: smoothed(values) for name, values in self.series.items() if len(values) >= SMOOTH_FROM}
        low, high = min(v for _, v in points), max(v for _, v in points)
        if averages:
            # the averages whole, and the points but their rarest spikes (those run off the edge)
            ordered = sorted(v for _, v in points)
            shown = [v for series in averages.values() for _, v in series]
            low = min(min(shown), _quantile(ordered, 0.02))
            high = max(max(shown), _quantile(ordered, 0.98))
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
            average = averages.get(name)
            if len(values) == 1:
                painter.setPen(QPen(colour, 1.6))
                painter.drawEllipse(to_screen(*values[0]), 2.5, 2.5)
            elif average is None:
                painter.setPen(QPen(colour, 1.6))
                painter.drawPolyline(QPolygonF([to_screen(s, v) for s, v in values]))
            else:
                faint = QColor(colour)
                faint.setAlpha(70)
                painter.save()
                painter.setClipRect(area)
                painter.setPen(QPen(faint, 1.0))
                painter.drawPolyline(QPolygonF([to_screen(s, v) for s, v in values]))
                painter.setPen(QPen(colour, 2.2))
                painter.drawPolyline(QPolygonF([to_screen(s, v) for s, v in average]))
                painter.restore()
                painter.setPen(QPen(colour, 1.6))
            painter.drawText(QPointF(legend_x, area.top() + metrics.height() + 2), name)
            legend_x += metrics.horizontalAdvance(name) + 16
