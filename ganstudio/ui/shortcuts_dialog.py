"""Help › Keyboard Shortcuts: every key of the editor in one searchable list."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLineEdit, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)


class ShortcutsDialog(QDialog):
    """Rows of (group, what, keys), grouped as the menus are; the filter matches what and keys."""

    def __init__(self, rows: list[tuple[str, str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.resize(520, 560)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter: a command or a key")
        self.filter.setClearButtonEnabled(True)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Command", "Keys"])
        self.tree.setRootIsDecorated(False)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        groups: dict[str, QTreeWidgetItem] = {}
        for group, what, keys in rows:
            if group not in groups:
                header = QTreeWidgetItem([group])
                font = header.font(0)
                font.setBold(True)
                header.setFont(0, font)
                header.setFlags(Qt.ItemFlag.ItemIsEnabled)
                self.tree.addTopLevelItem(header)
                groups[group] = header
            groups[group].addChild(QTreeWidgetItem([what, keys]))
        self.tree.expandAll()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree)
        layout.addWidget(buttons)
        self.filter.textChanged.connect(self._apply_filter)

    def visible_rows(self) -> list[tuple[str, str]]:
        rows = []
        for index in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(index)
            for child in range(group.childCount()):
                item = group.child(child)
                if not item.isHidden():
                    rows.append((item.text(0), item.text(1)))
        return rows

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for index in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(index)
            shown = 0
            for child in range(group.childCount()):
                item = group.child(child)
                hidden = bool(needle) and needle not in item.text(0).lower() and needle not in item.text(1).lower()
                item.setHidden(hidden)
                shown += not hidden
            group.setHidden(shown == 0)
