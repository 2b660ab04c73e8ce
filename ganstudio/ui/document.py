"""One open image: its pixels, metadata, mask and edit history.

Every change to the pixels or the mask is a QUndoCommand on the document's own QUndoStack, so the stack's clean
state is the document's "saved" state.

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

    def __init__(self, pixels: np.ndarray, meta: Any = None, path: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pixels = pixels
        self._opened = pixels
        self.meta = meta
        self._path = path
        self.mask = np.zeros(pixels.shape[:2], np.uint8)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(lambda clean: self.dirty_changed.emit(not clean))
        self._job_id: int | None = None

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

    def apply_result(self, pixels: np.ndarray, text: str, clear_mask: bool = False) -> None:
        """Replace the image as one undoable step; the mask follows a change of size, or is cleared in the same
        step with ``clear_mask``."""
        self.undo_stack.push(ReplaceImage(self, pixels, text, clear_mask and not self.mask_is_empty))

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
        return self._path.name if self._path is not None else "Untitled"

    @property
    def dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def mark_saved(self) -> None:
        self.undo_stack.setClean()

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
    def __init__(self, document: Document, pixels: np.ndarray, text: str, clear_mask: bool = False) -> None:
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

    def redo(self) -> None:
        self._document._set_image(self.new_pixels, self._new_mask)

    def undo(self) -> None:
        self._document._set_image(self.old_pixels, self._old_mask)


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
