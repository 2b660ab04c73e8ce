"""A tool's result on the part of the image in view, and the same part before, at 100 %: what the whole run will
give there, in a fraction of its time."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (QButtonGroup, QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QPushButton,
                               QScrollArea, QVBoxLayout, QWidget)

from ganstudio.imaging.color import resize
from ganstudio.ui.qimage import DisplayImage


class PreviewDialog(QDialog):
    """Before or after of one preview, in the same place so that flipping between them (Space) shows what changed;
    "Apply to Whole Image" asks for the full run with the same settings."""

    apply_requested = Signal()

    def __init__(self, before: np.ndarray, after: np.ndarray, title: str, details: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Preview: {title}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        enlarged = before.shape[:2] != after.shape[:2]
        if enlarged:
            # Bicubic, the classic upscale: what the model has to beat, at the same size on screen.
            before = resize(before, (after.shape[1], after.shape[0]), "bicubic")
        self._displays = {"before": DisplayImage(before), "after": DisplayImage(after)}

        self.image_label = QLabel()
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidget(self.image_label)
        scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        self.before_button = QPushButton("Before (bicubic)" if enlarged else "Before")
        self.after_button = QPushButton("After")
        group = QButtonGroup(self)
        toggles = QHBoxLayout()
        toggles.addWidget(QLabel("Show:"))
        for button in (self.before_button, self.after_button):
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            group.addButton(button)
            toggles.addWidget(button)
        toggles.addWidget(QLabel("(Space flips between them)"))
        toggles.addStretch(1)
        self.before_button.toggled.connect(lambda on: on and self._show("before"))
        self.after_button.toggled.connect(lambda on: on and self._show("after"))

        self.details = QLabel(details)
        self.details.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.apply_button = QPushButton("Apply to Whole Image")
        buttons.addButton(self.apply_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.rejected.connect(self.reject)
        self.apply_button.clicked.connect(self._apply)

        layout = QVBoxLayout(self)
        layout.addWidget(self.details)
        layout.addLayout(toggles)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        self.showing = ""
        self.after_button.setChecked(True)
        self.image_label.adjustSize()
        self.resize(min(after.shape[1] + 60, 1300), min(after.shape[0] + 150, 900))

    def _show(self, which: str) -> None:
        self.showing = which
        self.image_label.setPixmap(self._displays[which].pixmap)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            (self.before_button if self.showing == "after" else self.after_button).setChecked(True)
            return
        super().keyPressEvent(event)

    def _apply(self) -> None:
        self.apply_requested.emit()
        self.accept()
