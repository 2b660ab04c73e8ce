"""The image view of one document: zoom (and the zoom tool), pan, before/after compare, mask overlay, the mask tools
(brush, eraser, rectangle, lasso) and the pose skeleton's draggable joints."""
from __future__ import annotations

import bisect
import functools
from enum import Enum

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (QBrush, QColor, QCursor, QEnterEvent, QFocusEvent, QKeyEvent, QMouseEvent,
                           QPainter, QPen, QPixmap, QResizeEvent, QShowEvent, QTransform, QWheelEvent)
from PySide6.QtWidgets import (QFrame, QGraphicsEllipseItem, QGraphicsItem, QGraphicsPixmapItem, QGraphicsRectItem,
                               QGraphicsScene, QGraphicsView, QWidget)

from ganstudio.pose import JOINT_INDEX, Pose
from ganstudio.pose.skeleton import FOUND
from ganstudio.ui.document import Document, Region
from ganstudio.ui.mask_tools import MaskBrush, MaskLasso, MaskOverlay, MaskRectangle, MaskSettings, MaskShape
from ganstudio.ui.pose_overlay import HIT_RADIUS, PoseOverlay, joint_label, nearest_joint
from ganstudio.ui.qimage import DisplayImage, has_alpha
from ganstudio.ui.resources import CANVAS_BACKGROUND, icon

#: The zoom levels Ctrl +/- step through, as in Photoshop; the wheel zooms continuously between them.
ZOOM_LEVELS = (0.01, 0.02, 0.03, 0.04, 0.05, 1 / 16, 1 / 12, 1 / 8, 1 / 6, 0.25, 1 / 3, 0.5, 2 / 3, 1.0, 1.5, 2.0,
               3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0, 64.0)
MIN_ZOOM, MAX_ZOOM = ZOOM_LEVELS[0], ZOOM_LEVELS[-1]
WHEEL_STEP = 1.25
#: Past this zoom, pixels are shown as crisp squares (what retouchers want to see); below it, smoothly filtered.
NEAREST_ABOVE = 2.0
DIVIDER_GRAB_PX = 8


class CanvasTool(Enum):
    HAND = "hand"
    ZOOM = "zoom"
    BRUSH = "brush"
    ERASER = "eraser"
    RECTANGLE = "rectangle"
    LASSO = "lasso"

    @property
    def edits_mask(self) -> bool:
        return self not in (CanvasTool.HAND, CanvasTool.ZOOM)

    @property
    def shows_brush(self) -> bool:
        return self in (CanvasTool.BRUSH, CanvasTool.ERASER)


@functools.cache
def _zoom_cursor() -> QCursor:
    """A magnifier drawn from the zoom icon, its hot spot at the glass's centre; a cross where icons are missing."""
    magnifier = icon("zoom")
    if magnifier.isNull():
        return QCursor(Qt.CursorShape.CrossCursor)
    return QCursor(magnifier.pixmap(24, 24), 10, 10)


def _checkerboard() -> QBrush:
    tile = QPixmap(16, 16)
    tile.fill(QColor(0x99, 0x99, 0x99))
    painter = QPainter(tile)
    painter.fillRect(0, 0, 8, 8, QColor(0x66, 0x66, 0x66))
    painter.fillRect(8, 8, 8, 8, QColor(0x66, 0x66, 0x66))
    painter.end()
    return QBrush(tile)


class Canvas(QGraphicsView):
    zoom_changed = Signal(float)
    #: A click, in pose mode, on another person than the posed one (image x, y): detect that person instead.
    person_clicked = Signal(float, float)

    def __init__(self, document: Document, mask_settings: MaskSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._document = document
        self._mask_settings = mask_settings
        self._brush = MaskBrush(mask_settings)
        self._shapes: dict[CanvasTool, MaskShape] = {CanvasTool.RECTANGLE: MaskRectangle(),
                                                     CanvasTool.LASSO: MaskLasso()}
        #: The mask tool between press and release, and the button that began it.
        self._mask_stroke: tuple[MaskBrush | MaskShape, Qt.MouseButton] | None = None
        self._tool = CanvasTool.HAND
        self._checker = _checkerboard()

        scene = QGraphicsScene(self)
        self.setScene(scene)
        self._image_item = QGraphicsPixmapItem()
        self._image_display: DisplayImage | None = None
        # The before image sits on top of the after image inside a clipping rectangle: the split divider just
        # resizes that rectangle.
        self._before_clip = QGraphicsRectItem()
        self._before_clip.setPen(Qt.PenStyle.NoPen)
        self._before_clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)
        self._before_clip.setZValue(1)
        self._before_item = QGraphicsPixmapItem(self._before_clip)
        self._before_source: object = None
        self._before_display: DisplayImage | None = None
        self._overlay = MaskOverlay()
        self._overlay.setZValue(2)
        self._cursor_outer = QGraphicsEllipseItem()
        self._cursor_inner = QGraphicsEllipseItem()
        for item, colour, width in ((self._cursor_outer, QColor(0, 0, 0, 160), 3),
                                    (self._cursor_inner, QColor(255, 255, 255, 220), 1)):
            pen = QPen(colour, width)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setZValue(3)
            item.setVisible(False)
        self._pose_overlay = PoseOverlay()
        self._pose_overlay.setZValue(2.5)
        self._pose_overlay.setVisible(False)
        for item in (self._image_item, self._before_clip, self._overlay, self._pose_overlay, self._cursor_outer,
                     self._cursor_inner):
            scene.addItem(item)
        for shape in self._shapes.values():
            shape.outline.setZValue(3)
            scene.addItem(shape.outline)
        self._pose_mode = False
        #: While a joint is dragged: its name, the pose when the drag began, and the grab point's offset from
        #: the joint (so the joint does not jump to the cursor); the pose shown so far.
        self._joint_drag: tuple[str, Pose, QPointF] | None = None
        self._drag_pose: Pose | None = None

        self._split = False
        self._split_position = 0.5
        self._compare_held = False
        self._space_held = False
        self._pan_from: QPoint | None = None
        self._dragging_divider = False
        self._fit_pending = True

        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundBrush(CANVAS_BACKGROUND)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        # Labels and the divider are drawn in view coordinates, which partial updates would smear when scrolling.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        # File drops belong to the main window, which opens them.
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)

        document.image_changed.connect(self._on_image_changed)
        document.mask_changed.connect(self._on_mask_changed)
        document.pose_changed.connect(self._update_pose_overlay)
        document.joint_selected.connect(self._pose_overlay.set_selected)
        mask_settings.changed.connect(self._on_mask_settings)
        self._show_image()
        self._overlay.set_mask(document.mask)
        self._on_mask_settings()
        self._pose_overlay.set_selected(document.selected_joint)
        self._update_pose_overlay()

    # -- public state ----------------------------------------------------------------------------------------
    @property
    def document(self) -> Document:
        return self._document

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def visible_rect(self) -> tuple[float, float, float, float]:
        """The part of the scene in view as (x, y, width, height), in image pixels (the scene's unit)."""
        rect = self.mapToScene(self.viewport().rect()).boundingRect()
        return rect.x(), rect.y(), rect.width(), rect.height()

    @property
    def tool(self) -> CanvasTool:
        return self._tool

    def set_tool(self, tool: CanvasTool) -> None:
        self._tool = tool
        self._update_cursor()

    @property
    def pose_mode(self) -> bool:
        """Whether the Pose tool is the current tool: the skeleton shows and its joints can be dragged."""
        return self._pose_mode

    def set_pose_mode(self, enabled: bool) -> None:
        self._pose_mode = enabled
        if not enabled:
            self._end_joint_drag(commit=False)
        self._update_pose_overlay()

    @property
    def pose_overlay(self) -> PoseOverlay:
        return self._pose_overlay

    @property
    def split(self) -> bool:
        return self._split

    def set_split(self, enabled: bool) -> None:
        self._split = enabled
        self._update_compare()

    @property
    def split_position(self) -> float:
        """Where the divider is, as a fraction of the image width: before on the left, after on the right."""
        return self._split_position

    def set_split_position(self, fraction: float) -> None:
        self._split_position = min(max(fraction, 0.0), 1.0)
        self._update_compare()

    @property
    def compare_held(self) -> bool:
        return self._compare_held

    def set_compare_held(self, held: bool) -> None:
        self._compare_held = held
        self._update_compare()

    # -- zoom ------------------------------------------------------------------------------------------------
    def set_zoom(self, zoom: float, anchor: QPoint | None = None) -> None:
        """Zoom keeping the scene point under ``anchor`` (view coordinates; default the centre) in place."""
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        anchor = anchor if anchor is not None else self.viewport().rect().center()
        scene_point = self.mapToScene(anchor)
        self.setTransform(QTransform.fromScale(zoom, zoom))
        drift = self.mapFromScene(scene_point) - anchor
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + drift.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + drift.y())
        self._after_zoom()

    def zoom_in(self, anchor: QPoint | None = None) -> None:
        index = bisect.bisect_right(ZOOM_LEVELS, self.zoom * 1.001)
        self.set_zoom(ZOOM_LEVELS[min(index, len(ZOOM_LEVELS) - 1)], anchor)

    def zoom_out(self, anchor: QPoint | None = None) -> None:
        index = bisect.bisect_left(ZOOM_LEVELS, self.zoom / 1.001) - 1
        self.set_zoom(ZOOM_LEVELS[max(index, 0)], anchor)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def fit_zoom(self) -> float:
        view = self.viewport().rect()
        width, height = self._document.width, self._document.height
        return min((view.width() - 8) / width, (view.height() - 8) / height)

    def fit(self, at_most_actual_size: bool = False) -> None:
        """Show the whole image; on opening, small images are not blown up past 100 %."""
        zoom = self.fit_zoom()
        self.set_zoom(min(zoom, 1.0) if at_most_actual_size else zoom)
        self.centerOn(self._image_item.boundingRect().center())

    def _after_zoom(self) -> None:
        mode = (Qt.TransformationMode.FastTransformation if self.zoom > NEAREST_ABOVE
                else Qt.TransformationMode.SmoothTransformation)
        self._image_item.setTransformationMode(mode)
        self._before_item.setTransformationMode(mode)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom <= NEAREST_ABOVE)
        self._update_brush_cursor()
        self._pose_overlay.set_view_scale(self.zoom)
        self.viewport().update()
        self.zoom_changed.emit(self.zoom)

    # -- document changes ------------------------------------------------------------------------------------
    def _show_image(self) -> None:
        display = DisplayImage(self._document.pixels)
        self._image_item.setPixmap(display.pixmap)
        self._image_display = display  # only now may the previous pixmap's buffer go
        self.scene().setSceneRect(QRectF(0, 0, self._document.width, self._document.height))
        self._pose_overlay.set_image_size(self._document.width, self._document.height)
        self._update_compare()

    def _on_image_changed(self) -> None:
        old_rect = self.sceneRect()
        whole_image_visible = self.mapToScene(self.viewport().rect()).boundingRect().contains(old_rect)
        self._show_image()
        # A tool that changed the size (an upscale) keeps the picture framed the way the user had it.
        if whole_image_visible and old_rect.size() != self.sceneRect().size():
            self.fit(at_most_actual_size=True)

    def _on_mask_changed(self, region: Region) -> None:
        if region is None or self._overlay.boundingRect().size() != self.sceneRect().size():
            self._overlay.set_mask(self._document.mask)
        else:
            self._overlay.update_region(self._document.mask, region)

    def _on_mask_settings(self) -> None:
        self._overlay.setOpacity(self._mask_settings.opacity)
        self._overlay.setVisible(self._mask_settings.visible and not self._compare_held)
        self._update_brush_cursor()

    def _update_compare(self) -> None:
        showing = self._compare_held or self._split
        if showing and self._before_source is not self._document.before:
            before = self._document.before
            self._before_source = before
            display = DisplayImage(before)
            self._before_item.setPixmap(display.pixmap)
            self._before_display = display
            # An upscale makes the before image smaller; stretch it over the after image so they line up.
            self._before_item.setTransform(QTransform.fromScale(self._document.width / before.shape[1],
                                                                self._document.height / before.shape[0]))
        width = self._document.width if self._compare_held else self._document.width * self._split_position
        self._before_clip.setRect(QRectF(0, 0, width, self._document.height))
        self._before_clip.setVisible(showing)
        self._overlay.setVisible(self._mask_settings.visible and not self._compare_held)
        self._update_pose_overlay()
        self.viewport().update()

    # -- pose ------------------------------------------------------------------------------------------------
    def _update_pose_overlay(self) -> None:
        if self._drag_pose is not None and self._document.pose is not self._joint_drag[1]:
            # the pose changed under a drag (undo, a detection): the drag's start no longer exists
            self._end_joint_drag(commit=False)
        target = self._drag_pose if self._drag_pose is not None else self._document.pose
        self._pose_overlay.set_poses(self._document.pose_source, target)
        # Hidden while comparing: the before image has the person in the old pose.
        self._pose_overlay.setVisible(self._pose_mode and target is not None and not self._compare_held)

    def _joint_at(self, pos: QPoint) -> str | None:
        """The joint under the view point ``pos``: within a radius that is the same on screen at every zoom."""
        pose = self._document.pose
        if pose is None or not self._pose_overlay.isVisible():
            return None
        scene_pos = self.mapToScene(pos)
        return nearest_joint(pose, scene_pos.x(), scene_pos.y(), HIT_RADIUS / self.zoom)

    def _other_person_at(self, pos: QPoint) -> bool:
        point = self.mapToScene(pos)
        return any(x0 <= point.x() <= x1 and y0 <= point.y() <= y1 for x0, y0, x1, y1 in self._document.other_people)

    def _grabs_joints(self) -> bool:
        # With a mask tool, masking the person wins: a stroke or outline over the body must not catch a joint.
        # While a pose edit runs, its result will replace the pose, so edits made meanwhile would only be lost.
        return (self._pose_mode and not self._tool.edits_mask and not self._space_held
                and not self._document.busy)

    def _placing(self, joint: str) -> bool:
        """Whether dragging ``joint`` places it where it is in the photo (it was not found, so the detection's
        spot means nothing) rather than moving it to a new pose."""
        source, index = self._document.pose_source, JOINT_INDEX[joint]
        return (source is not None and source.confidence[index] < FOUND and not source.locked[index]
                and not self._document.pose.locked[index])

    def _begin_joint_drag(self, joint: str, pos: QPoint) -> None:
        pose = self._document.pose
        self._document.selected_joint = joint
        x, y = pose[joint]
        self._joint_drag = (joint, pose, QPointF(x, y) - self.mapToScene(pos))
        self._drag_pose = pose
        self._update_cursor()

    def _drag_joint(self, pos: QPoint, alone: bool) -> None:
        joint, start, offset = self._joint_drag
        point = self.mapToScene(pos) + offset
        # placing a joint that was not found corrects the detection: the joints below it stay where they are
        moved = start.moved(joint, (point.x(), point.y()), carry_children=not (alone or self._placing(joint)))
        if not start.locked[JOINT_INDEX[joint]]:
            # the user put it there: it is no longer the detector's guess
            moved.confidence[JOINT_INDEX[joint]] = 1.0
        self._drag_pose = moved
        self._update_pose_overlay()

    def _end_joint_drag(self, commit: bool) -> None:
        if self._joint_drag is None:
            return
        (joint, start, _), moved = self._joint_drag, self._drag_pose
        self._joint_drag = self._drag_pose = None
        if commit and moved is not None and np.abs(moved.points - start.points).max() > 1e-9:
            if self._placing(joint):
                # where the joint is now, in the photo and in the pose: found, by hand
                source, index = self._document.pose_source.copy(), JOINT_INDEX[joint]
                source.points[index], source.confidence[index] = moved.points[index], 1.0
                self._document.set_pose(source, moved, f"Place {joint_label(joint)}")
            else:
                self._document.set_pose(self._document.pose_source, moved, f"Move {joint_label(joint)}")
        else:
            self._update_pose_overlay()
        self._update_cursor()

    # -- painting --------------------------------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, CANVAS_BACKGROUND)
        if has_alpha(self._document.pixels):
            # Checker squares stay the same size on screen at every zoom, as in other editors.
            image_rect = self.mapFromScene(self.sceneRect()).boundingRect()
            painter.save()
            painter.resetTransform()
            painter.fillRect(image_rect, self._checker)
            painter.restore()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if not (self._split or self._compare_held):
            return
        painter.save()
        painter.resetTransform()
        image = self.mapFromScene(self.sceneRect()).boundingRect()
        if self._compare_held:
            self._draw_label(painter, QPoint(image.left(), image.top()), "Before", Qt.AlignmentFlag.AlignLeft)
        else:
            x = self._divider_x()
            top, bottom = max(image.top(), 0), min(image.bottom(), self.viewport().height())
            painter.setPen(QPen(QColor(0, 0, 0, 140), 3))
            painter.drawLine(x, top, x, bottom)
            painter.setPen(QPen(QColor(255, 255, 255), 1))
            painter.drawLine(x, top, x, bottom)
            middle = (top + bottom) // 2
            painter.setBrush(QColor(255, 255, 255))
            painter.setPen(QPen(QColor(0, 0, 0, 160), 1))
            painter.drawEllipse(QPoint(x, middle), 7, 7)
            self._draw_label(painter, QPoint(x, image.top()), "Before", Qt.AlignmentFlag.AlignRight)
            self._draw_label(painter, QPoint(x, image.top()), "After", Qt.AlignmentFlag.AlignLeft)
        painter.restore()

    def _draw_label(self, painter: QPainter, anchor: QPoint, text: str, side: Qt.AlignmentFlag) -> None:
        metrics = painter.fontMetrics()
        box = QRect(0, 0, metrics.horizontalAdvance(text) + 12, metrics.height() + 6)
        top = max(anchor.y(), 0) + 8
        left = anchor.x() + 8 if side == Qt.AlignmentFlag.AlignLeft else anchor.x() - 8 - box.width()
        box.moveTo(left, top)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(box, 4, 4)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _divider_x(self) -> int:
        return self.mapFromScene(QPointF(self._document.width * self._split_position, 0)).x()

    def _near_divider(self, pos: QPoint) -> bool:
        return self._split and abs(pos.x() - self._divider_x()) <= DIVIDER_GRAB_PX

    # -- cursor ----------------------------------------------------------------------------------------------
    def _update_cursor(self, pos: QPoint | None = None) -> None:
        hovered = self._joint_at(pos) if pos is not None and self._grabs_joints() else None
        self._pose_overlay.set_hovered(hovered)
        if self._pan_from is not None:
            shape = Qt.CursorShape.ClosedHandCursor
        elif self._joint_drag is not None:
            shape = Qt.CursorShape.SizeAllCursor
        elif hovered is not None:
            locked = self._document.pose.locked[JOINT_INDEX[hovered]]
            shape = Qt.CursorShape.ForbiddenCursor if locked else Qt.CursorShape.SizeAllCursor
        elif self._space_held or self._tool == CanvasTool.HAND:
            shape = Qt.CursorShape.OpenHandCursor
        elif self._tool == CanvasTool.ZOOM:
            self.viewport().setCursor(_zoom_cursor())
            self._update_brush_cursor()
            return
        else:
            shape = Qt.CursorShape.CrossCursor
        self.viewport().setCursor(shape)
        self._update_brush_cursor()

    def _update_brush_cursor(self, scene_pos: QPointF | None = None) -> None:
        visible = self._tool.shows_brush and not self._space_held and self.underMouse()
        if scene_pos is None:
            scene_pos = self.mapToScene(self.viewport().mapFromGlobal(QCursor.pos()))
        size = self._mask_settings.brush_size
        ellipse = QRectF(scene_pos.x() - size / 2, scene_pos.y() - size / 2, size, size)
        for item in (self._cursor_outer, self._cursor_inner):
            item.setRect(ellipse)
            item.setVisible(visible)

    # -- input -----------------------------------------------------------------------------------------------
    # The first fit needs the final viewport size: layouts settle through several resizes after the tab is
    # shown, so refit on each of them until the event loop has had one turn.
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_pending:
            self.fit(at_most_actual_size=True)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._fit_pending:
            self.fit(at_most_actual_size=True)
            QTimer.singleShot(0, self._end_initial_fit)

    def _end_initial_fit(self) -> None:
        if self._fit_pending:
            self._fit_pending = False
            self.fit(at_most_actual_size=True)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.set_zoom(self.zoom * WHEEL_STEP ** steps, event.position().toPoint())
        event.accept()

    def _cancellable(self) -> MaskShape | None:
        """The rectangle or lasso being dragged, which Escape cancels."""
        tool = self._mask_stroke[0] if self._mask_stroke is not None else None
        return tool if isinstance(tool, MaskShape) else None

    def event(self, event: QEvent) -> bool:
        # Escape is also the window's Cancel shortcut; while an outline is dragged it belongs to the canvas.
        if (event.type() == QEvent.Type.ShortcutOverride and event.key() == Qt.Key.Key_Escape
                and self._cancellable() is not None):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        shape = self._cancellable()
        if event.key() == Qt.Key.Key_Escape and shape is not None:
            shape.cancel()
            self._mask_stroke = None
            event.accept()
        elif event.key() == Qt.Key.Key_Shift and shape is not None:
            shape.constrain(True)
            super().keyPressEvent(event)
        elif event.key() == Qt.Key.Key_Backslash and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            if not event.isAutoRepeat():
                self.set_compare_held(True)
            event.accept()
        elif event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_held = True
                self._update_cursor()
            event.accept()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        shape = self._cancellable()
        if event.isAutoRepeat():
            event.accept()
        elif event.key() == Qt.Key.Key_Shift and shape is not None:
            shape.constrain(False)
            super().keyReleaseEvent(event)
        elif event.key() == Qt.Key.Key_Backslash:
            self.set_compare_held(False)
        elif event.key() == Qt.Key.Key_Space:
            self._space_held = False
            self._update_cursor()
        else:
            super().keyReleaseEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        # A key released while another widget has focus never reaches us; don't leave compare or pan stuck on.
        self._space_held = False
        if self._compare_held:
            self.set_compare_held(False)
        super().focusOutEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        button = event.button()
        joint = self._joint_at(pos) if button == Qt.MouseButton.LeftButton and self._grabs_joints() else None
        if self._mask_stroke is not None:
            pass  # another button during a stroke neither restarts nor ends it, nor pans
        elif joint is not None and not self._near_divider(pos):
            self._begin_joint_drag(joint, pos)
        elif button == Qt.MouseButton.LeftButton and self._grabs_joints() and self._other_person_at(pos):
            point = self.mapToScene(pos)
            self.person_clicked.emit(point.x(), point.y())
        elif button == Qt.MouseButton.MiddleButton or (
                button == Qt.MouseButton.LeftButton and (self._space_held or self._tool == CanvasTool.HAND)
                and not self._near_divider(pos)):
            self._pan_from = pos
            self._update_cursor()
        elif button == Qt.MouseButton.LeftButton and self._near_divider(pos):
            self._dragging_divider = True
        elif self._tool == CanvasTool.ZOOM and button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            # Photoshop's and GIMP's zoom tool: click zooms in at the point, Alt-click or right-click zooms out.
            out = button == Qt.MouseButton.RightButton or bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
            (self.zoom_out if out else self.zoom_in)(pos)
        elif self._tool.edits_mask and button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            # Right-drag or Alt does the opposite: erase with the brush, paint with the eraser, clear a shape.
            inverse = button == Qt.MouseButton.RightButton or bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
            tool = self._shapes.get(self._tool, self._brush)
            tool.begin(self._document, self.mapToScene(pos), inverse != (self._tool == CanvasTool.ERASER))
            self._mask_stroke = (tool, button)
        else:
            super().mousePressEvent(event)
            return
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        scene_pos = self.mapToScene(pos)
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
        elif self._joint_drag is not None:
            self._drag_joint(pos, alone=bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
        elif self._dragging_divider:
            self.set_split_position(scene_pos.x() / self._document.width)
        elif self._mask_stroke is not None:
            self._mask_stroke[0].extend(scene_pos, bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
        elif self._near_divider(pos):
            self.viewport().setCursor(Qt.CursorShape.SplitHCursor)
        else:
            self._update_cursor(pos)
        self._update_brush_cursor(scene_pos)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._pan_from = None
            self._update_cursor()
        elif self._joint_drag is not None and event.button() == Qt.MouseButton.LeftButton:
            self._end_joint_drag(commit=True)
        elif self._dragging_divider:
            self._dragging_divider = False
        elif self._mask_stroke is not None:
            tool, button = self._mask_stroke
            if event.button() == button:
                self._mask_stroke = None
                tool.extend(self.mapToScene(event.position().toPoint()),
                            bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
                tool.finish()
        else:
            super().mouseReleaseEvent(event)
            return
        event.accept()

    def enterEvent(self, event: QEnterEvent) -> None:
        super().enterEvent(event)
        self._update_brush_cursor()

    def leaveEvent(self, event: QEvent) -> None:
        super().leaveEvent(event)
        for item in (self._cursor_outer, self._cursor_inner):
            item.setVisible(False)
