"""A word-wrapped label for the tool pages, which live in a QStackedWidget."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget


class WrappedLabel(QLabel):
    """A word-wrapped label that asks for the height its text needs at its width: inside a QStackedWidget a plain
    one is given the height of its unwrapped hint and its lines are cut off."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        needed = self.heightForWidth(self.width())
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)
