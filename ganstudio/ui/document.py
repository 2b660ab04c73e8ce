"""One open image: its pixels, metadata, mask, pose and edit history.

Every change to the pixels, the mask or the pose is a QUndoCommand on the document's own QUndoStack, so the stack's
clean state is the document's "saved" state and Ctrl+Z walks back through all of them in the order they were made.

The "before" image for compare is the input of the most recent tool run that is still applied (walking back
from the top of the undo stack), or the image as opened when no tool run is applied. Compare therefore always shows
what the last tool did, and it follows undo/redo.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from ganstudio.pose import Pose

#: A mask region ``(x0, y0, x1, y1)`` in image pixels, end-exclusive; ``None`` means the whole mask.
Region = tuple[int, int, int, int] | None


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize, so a mask stays aligned with an image a tool has rescaled."""
    if mask.shape == (height, width):
        return mask.copy()
    if not mask.any():
        return np.zeros((height, width), np.uint8)
    rows = np.arange(height) * mask.shape[0] // height
    cols = np.arange(width) * mask.shape[1] // width
    return np.ascontiguousarray(mask[rows[:, None], cols])


class Document(QObject):
    image_changed = Signal()
    #: Emitted with the changed :data:`Region` whenever mask pixels change, live strokes included.
    mask_changed = Signal(object)
    dirty_changed = Signal(bool)
    busy_changed = Signal(bool)
    path_changed = Signal()
    #: The detected or edited pose changed (a drag, a lock, a detection, undo/redo).
    pose_changed = Signal()
    #: The joint the user picked on the canvas (its name), or ``None``.
    joint_selected = Signal(object)

    def __init__(self, pixels: np.ndarray, meta: Any = None, path: Path | None = None,
                 parent: QObject | None = None, name: str = "") -> None:
        super().__init__(parent)
        self._pixels = pixels
        self._opened = pixels
        self.meta = meta
        self._path = path
        #: The title of a new picture that has no file yet (a generated one); it counts as unsaved until saved.
        self._name = name
        self._unsaved_new = bool(name) and path is None
        self.mask = np.zeros(pixels.shape[:2], np.uint8)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(lambda _: self.dirty_changed.emit(self.dirty))
        self._job_id: int | None = None
        # The pose the person is in now (detected, or corrected by hand), and where the user wants them.
        self._pose_source: Pose | None = None
        self._pose: Pose | None = None
        self._selected_joint: str | None = None
        #: (the pixels it was found on, the detector's name, the person's matte) of the last detection
        self._person: tuple[np.ndarray, str, np.ndarray] | None = None
        #: The other people the last detection saw (image-pixel boxes): a click in one poses them instead.
        self.other_people: list[tuple[float, float, float, float]] = []

    # -- image -----------------------------------------------------------------------------------------------
    @property
    def pixels(self) -> np.ndarray:
        return self._pixels

    @property
    def before(self) -> np.ndarray:
        for index in range(self.undo_stack.index() - 1, -1, -1):
            command = self.undo_stack.command(index)
            if isinstance(command, ReplaceImage):
                return command.old_pixels
        return self._opened

    @property
    def height(self) -> int:
        return self._pixels.shape[0]

    @property
    def width(self) -> int:
        return self._pixels.shape[1]

    @property
    def channels(self) -> int:
        return 1 if self._pixels.ndim == 2 else self._pixels.shape[2]

    @property
    def bit_depth(self) -> int:
        return 16 if self._pixels.dtype == np.uint16 else 8

    def apply_result(self, pixels: np.ndarray, text: str, clear_mask: bool = False, pose: Pose | None = None) -> None:
        """Replace the image as one undoable step; the mask follows a change of size, or is cleared in the same
        step with ``clear_mask``. ``pose`` is the pose the person has in the new image (after a pose edit)."""
        self.undo_stack.push(ReplaceImage(self, pixels, text, clear_mask and not self.mask_is_empty, pose))

    def _set_image(self, pixels: np.ndarray, mask: np.ndarray | None) -> None:
        self._pixels = pixels
        self.image_changed.emit()
        if mask is not None:
            self.mask = mask
            self.mask_changed.emit(None)

    # -- mask ------------------------------------------------------------------------------------------------
    @property
    def mask_is_empty(self) -> bool:
        return not self.mask.any()

    def set_mask(self, mask: np.ndarray, text: str) -> None:
        """Replace the whole mask as one undoable step (load, clear, invert)."""
        if mask.shape != self.mask.shape:
            raise ValueError(f"the mask is {mask.shape[1]} × {mask.shape[0]} but the image is "
                             f"{self.width} × {self.height}")
        self.undo_stack.push(EditMask(self, (0, 0, self.width, self.height), self.mask.copy(), mask, text))

    # -- pose ------------------------------------------------------------------------------------------------
    @property
    def pose_source(self) -> Pose | None:
        """The person's pose in the image as it is now: what a pose edit moves them from."""
        return self._pose_source

    @property
    def pose(self) -> Pose | None:
        """The edited pose: where the person should be. Never mutated in place; edits replace it."""
        return self._pose

    @property
    def pose_edited(self) -> bool:
        """Whether any joint of the edited pose is away from where the person is now."""
        if self._pose is None or self._pose_source is None:
            return False
        return bool(np.abs(self._pose.points - self._pose_source.points).max() > 1e-6)

    def remember_person(self, pixels: np.ndarray, model: str, person: np.ndarray) -> None:
        """Keep the person's matte a detection with ``model`` found on ``pixels``, if those are still the image."""
        if pixels is self._pixels:
            self._person = (pixels, model, person)

    def person_for(self, model: str) -> np.ndarray | None:
        """The matte found by ``model`` on the image as it is now (undo back to it counts), else None."""
        if self._person is not None and self._person[0] is self._pixels and self._person[1] == model:
            return self._person[2]
        return None

    def set_pose(self, source: Pose | None, target: Pose | None, text: str) -> None:
        """Set both poses as one undoable step."""
        self.undo_stack.push(SetPose(self, source, target, text))

    def _put_pose(self, source: Pose | None, target: Pose | None) -> None:
        self._pose_source, self._pose = source, target
        self.pose_changed.emit()

    @property
    def selected_joint(self) -> str | None:
        return self._selected_joint

    @selected_joint.setter
    def selected_joint(self, joint: str | None) -> None:
        if joint != self._selected_joint:
            self._selected_joint = joint
            self.joint_selected.emit(joint)

    # -- file and job state ----------------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self._path

    @path.setter
    def path(self, value: Path) -> None:
        self._path = value
        self.path_changed.emit()

    @property
    def title(self) -> str:
        return self._path.name if self._path is not None else self._name or "Untitled"

    @property
    def dirty(self) -> bool:
        return self._unsaved_new or not self.undo_stack.isClean()

    def mark_saved(self) -> None:
        new_picture = self._unsaved_new and self.undo_stack.isClean()
        self._unsaved_new = False
        self.undo_stack.setClean()
        if new_picture:  # the stack was clean already, so it reports no change
            self.dirty_changed.emit(False)

    @property
    def job_id(self) -> int | None:
        """The id of the tool job running on this document, if any; one at a time per document."""
        return self._job_id

    @job_id.setter
    def job_id(self, value: int | None) -> None:
        self._job_id = value
        self.busy_changed.emit(value is not None)

    @property
    def busy(self) -> bool:
        return self._job_id is not None


class ReplaceImage(QUndoCommand):
    def __init__(self, document: Document, pixels: np.ndarray, text: str, clear_mask: bool = False,
                 pose: Pose | None = None) -> None:
        super().__init__(text)
        self._document = document
        self.old_pixels = document.pixels
        self.new_pixels = pixels
        resized = pixels.shape[:2] != document.pixels.shape[:2]
        # Only a change of size or a clear touches the mask; otherwise it is left alone to keep each step small.
        touched = resized or clear_mask
        self._old_mask = document.mask if touched else None
        if clear_mask:
            self._new_mask = np.zeros(pixels.shape[:2], np.uint8)
        else:
            self._new_mask = resize_mask(document.mask, *pixels.shape[:2]) if resized else None
        # After a pose edit the person stands in the new pose, which becomes the start of the next edit; after an
        # upscale the joints scale with the image; other tools leave the person where they were.
        self._old_pose = (document.pose_source, document.pose)
        height, width = pixels.shape[:2]
        if pose is not None:
            fitted = pose.fitted_to(width, height)
            self._new_pose: tuple[Pose | None, Pose | None] | None = (fitted, fitted.copy())
        elif resized:
            self._new_pose = tuple(p.fitted_to(width, height) if p is not None else None for p in self._old_pose)
        else:
            self._new_pose = None

    def redo(self) -> None:
        self._document._set_image(self.new_pixels, self._new_mask)
        if self._new_pose is not None:
            self._document._put_pose(*self._new_pose)

    def undo(self) -> None:
        self._document._set_image(self.old_pixels, self._old_mask)
        if self._new_pose is not None:
            self._document._put_pose(*self._old_pose)


class EditMask(QUndoCommand):
    """A rectangular patch of the mask, before and after; strokes keep only their bounding box."""

    def __init__(self, document: Document, region: tuple[int, int, int, int], old: np.ndarray, new: np.ndarray,
                 text: str) -> None:
        super().__init__(text)
        self._document = document
        self._region = region
        self._old = old
        self._new = new

    def _put(self, patch: np.ndarray) -> None:
        x0, y0, x1, y1 = self._region
        self._document.mask[y0:y1, x0:x1] = patch
        self._document.mask_changed.emit(self._region)

    def redo(self) -> None:
        self._put(self._new)

    def undo(self) -> None:
        self._put(self._old)


class SetPose(QUndoCommand):
    """Both poses before and after: a joint drag, a lock, a detection, a reset or a loaded pose file."""

    def __init__(self, document: Document, source: Pose | None, target: Pose | None, text: str) -> None:
        super().__init__(text)
        self._document = document
        self._old = (document.pose_source, document.pose)
        self._new = (source, target)

    def redo(self) -> None:
        self._document._put_pose(*self._new)

    def undo(self) -> None:
        self._document._put_pose(*self._old)
