"""The skeleton drawn over the image for the Pose tool, and the hit test for grabbing its joints.

Everything is drawn in view pixels (the item maps the joints through the painter's transform and then draws
untransformed), so joints and lines keep the same size on screen at every zoom, as handles do in other editors.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from ganstudio.pose import BONES, JOINT_INDEX, JOINTS, Pose
from ganstudio.pose.skeleton import FOUND

#: The person's left and right sides, as in most pose tools; the head's middle and torso cross-bars in a third.
LEFT_COLOUR = QColor(255, 150, 30)
RIGHT_COLOUR = QColor(40, 170, 255)
MIDDLE_COLOUR = QColor(120, 230, 120)
OUTLINE = QColor(0, 0, 0, 190)
#: Radii in view pixels: a joint, a selected joint, and how far from its centre a click still grabs it.
JOINT_RADIUS = 5.0
SELECTED_RADIUS = 7.0
HIT_RADIUS = 11.0


def side_colour(joint: str) -> QColor:
    if joint.startswith("left_"):
        return LEFT_COLOUR
    if joint.startswith("right_"):
        return RIGHT_COLOUR
    return MIDDLE_COLOUR


def joint_label(joint: str) -> str:
    """``left_wrist`` -> ``left wrist``: how the History and the dock name a joint."""
    return joint.replace("_", " ")


def nearest_joint(pose: Pose, x: float, y: float, radius: float) -> str | None:
    """The joint nearest to ``(x, y)`` within ``radius`` (all in image pixels), or ``None``."""
    distances = np.hypot(pose.points[:, 0] - x, pose.points[:, 1] - y)
    index = int(distances.argmin())
    return JOINTS[index] if distances[index] <= radius else None


def _bone_colour(a: str, b: str) -> QColor:
    colour_a, colour_b = side_colour(a), side_colour(b)
    return colour_a if colour_a == colour_b else MIDDLE_COLOUR


def _faded(colour: QColor, alpha: int) -> QColor:
    faded = QColor(colour)
    faded.setAlpha(alpha)
    return faded


class PoseOverlay(QGraphicsItem):
    """The edited pose (bones and joints) over the faint, dashed pose the person is in now."""

    def __init__(self) -> None:
        super().__init__()
        self._source: Pose | None = None
        self._target: Pose | None = None
        self._selected: str | None = None
        self._hovered: str | None = None
        self._rect = QRectF()
        self._view_scale = 1.0
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    @property
    def target(self) -> Pose | None:
        return self._target

    @property
    def source(self) -> Pose | None:
        return self._source

    def set_poses(self, source: Pose | None, target: Pose | None) -> None:
        self.prepareGeometryChange()
        self._source, self._target = source, target
        self.update()

    def set_selected(self, joint: str | None) -> None:
        self._selected = joint
        self.update()

    def set_hovered(self, joint: str | None) -> None:
        if joint != self._hovered:
            self._hovered = joint
            self.update()

    def set_view_scale(self, scale: float) -> None:
        """The zoom, only to know how far past the joints the on-screen handles reach."""
        self.prepareGeometryChange()
        self._view_scale = max(scale, 1e-6)

    def boundingRect(self) -> QRectF:
        rect = QRectF(self._rect)
        for pose in (self._source, self._target):
            if pose is not None:
                low, high = pose.points.min(axis=0), pose.points.max(axis=0)
                rect = rect.united(QRectF(low[0], low[1], high[0] - low[0], high[1] - low[1]))
        margin = (SELECTED_RADIUS + 6) / self._view_scale
        return rect.adjusted(-margin, -margin, margin, margin)

    def set_image_size(self, width: int, height: int) -> None:
        self.prepareGeometryChange()
        self._rect = QRectF(0, 0, width, height)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self._target is None:
            return
        transform = painter.worldTransform()
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self._source is not None and np.abs(self._source.points - self._target.points).max() > 1e-6:
            self._paint_source(painter, [transform.map(QPointF(x, y)) for x, y in self._source.points])
        self._paint_target(painter, [transform.map(QPointF(x, y)) for x, y in self._target.points])
        painter.restore()

    def _paint_source(self, painter: QPainter, points: list[QPointF]) -> None:
        # Where the person is now, for reference: thin and dashed, so it never competes with the edit; light dashes
        # on a faint dark band, so it reads on white clothes and dark ones alike.
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for pen in (QPen(QColor(0, 0, 0, 110), 3.5), QPen(QColor(255, 255, 255, 220), 1.5, Qt.PenStyle.DashLine)):
            painter.setPen(pen)
            for a, b in BONES:
                painter.drawLine(points[JOINT_INDEX[a]], points[JOINT_INDEX[b]])
            for point in points:
                painter.drawEllipse(point, 3.0, 3.0)

    def _paint_target(self, painter: QPainter, points: list[QPointF]) -> None:
        pose = self._target
        sure = pose.confidence >= FOUND  # the others are drawn faint: not found, and Apply will not move them
        for a, b in BONES:
            ia, ib = JOINT_INDEX[a], JOINT_INDEX[b]
            alpha = 255 if sure[ia] and sure[ib] else 110
            # A dark band under the colour keeps the bone readable on light and dark photos alike.
            painter.setPen(QPen(_faded(OUTLINE, alpha * 3 // 4), 5.0, Qt.PenStyle.SolidLine,
                                Qt.PenCapStyle.RoundCap))
            painter.drawLine(points[ia], points[ib])
            painter.setPen(QPen(_faded(_bone_colour(a, b), alpha), 2.5, Qt.PenStyle.SolidLine,
                                Qt.PenCapStyle.RoundCap))
            painter.drawLine(points[ia], points[ib])
        # The selected and hovered joints last, so a crowd of joints never hides the one being moved.
        order = sorted(range(len(JOINTS)), key=lambda i: (JOINTS[i] == self._selected, JOINTS[i] == self._hovered))
        for index in order:
            self._paint_joint(painter, points[index], JOINTS[index], bool(sure[index]), bool(pose.locked[index]))

    def _paint_joint(self, painter: QPainter, point: QPointF, joint: str, sure: bool, locked: bool) -> None:
        selected = joint == self._selected
        radius = SELECTED_RADIUS if selected else JOINT_RADIUS
        alpha = 255 if sure else 110
        if selected or joint == self._hovered:
            painter.setPen(QPen(QColor(255, 255, 255, 230), 2.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(point, radius + 3.0, radius + 3.0)
        painter.setPen(QPen(_faded(OUTLINE, alpha), 1.5))
        painter.setBrush(_faded(side_colour(joint), alpha))
        if locked:
            # A pinned joint is a square with a pin head in it: it stays where it is while others move. A little
            # larger than the discs, which look bigger than a square of the same width.
            half = radius + 1.0
            painter.drawRect(QRectF(point.x() - half, point.y() - half, 2 * half, 2 * half))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(_faded(OUTLINE, alpha))
            painter.drawEllipse(point, radius * 0.4, radius * 0.4)
        else:
            painter.drawEllipse(point, radius, radius)
