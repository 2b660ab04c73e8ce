"""A tool's result on the part of the image in view, beside the same part before, at 100 %: what the whole run will
give there, in a fraction of its time."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QGridLayout, QLabel, QPushButton, QScrollArea,
                               QVBoxLayout, QWidget)

from ganstudio.imaging.color import resize
from ganstudio.ui.qimage import DisplayImage


class PreviewDialog(QDialog):
    """Before | after of one preview; "Apply to Whole Image" asks for the full run with the same settings."""

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
        self._displays = [DisplayImage(before), DisplayImage(after)]

        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        captions = ("Before (bicubic, same size)" if enlarged else "Before", "After")
        self.image_labels: list[QLabel] = []
        for column, (caption, display) in enumerate(zip(captions, self._displays)):
            heading = QLabel(caption)
            heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
            image = QLabel()
            image.setPixmap(display.pixmap)
            image.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
            grid.addWidget(heading, 0, column)
            grid.addWidget(image, 1, column)
            self.image_labels.append(image)
        content = QWidget()
        content.setLayout(grid)
        scroll = QScrollArea()
        scroll.setWidget(content)
        scroll.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.details = QLabel(details)
        self.details.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.apply_button = QPushButton("Apply to Whole Image")
        buttons.addButton(self.apply_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.rejected.connect(self.reject)
        self.apply_button.clicked.connect(self._apply)

        layout = QVBoxLayout(self)
        layout.addWidget(self.details)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        hint = content.sizeHint()
        self.resize(min(hint.width() + 48, 1400), min(hint.height() + 120, 900))

    def _apply(self) -> None:
        self.apply_requested.emit()
        self.accept()
