"""Icons and theme: the shipped ``resources`` folder (inside the installed package, or the checkout's)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

from ganstudio.package_data import shipped_folder


def resources_dir() -> Path | None:
    """The shipped ``resources`` folder, or ``None`` when the package was installed without it."""
    return shipped_folder("resources")


def resource_path(*parts: str) -> Path | None:
    base = resources_dir()
    if base is None:
        return None
    path = base.joinpath(*parts)
    return path if path.is_file() else None


def icon(name: str) -> QIcon:
    """``resources/icons/NAME.svg``, drawn at any size (toolbars at 2× scale stay sharp); empty when missing."""
    path = resource_path("icons", f"{name}.svg")
    return QIcon(str(path)) if path is not None else QIcon()


def app_icon() -> QIcon:
    """The application icon; an empty icon (Qt's default) when the resources are missing."""
    path = resource_path("icons", "ganstudio.svg")
    return QIcon(str(path)) if path is not None else QIcon()


#: Canvas backdrop: a neutral mid-dark grey judges colour better than black or a tinted theme colour.
CANVAS_BACKGROUND = QColor(0x2B, 0x2B, 0x2B)


def apply_dark_theme(app: QApplication) -> None:
    """Fusion with a neutral dark palette, the usual look of photo editors (Krita, Photoshop, darktable)."""
    fusion = QStyleFactory.create("Fusion")
    if fusion is not None:
        app.setStyle(fusion)
    palette = QPalette()
    window, base, text = QColor(0x35, 0x36, 0x38), QColor(0x25, 0x26, 0x28), QColor(0xDD, 0xDD, 0xDD)
    highlight = QColor(0x3D, 0x7E, 0xC9)
    palette.setColor(QPalette.ColorRole.Window, window)
    palette.setColor(QPalette.ColorRole.WindowText, text)
    palette.setColor(QPalette.ColorRole.Base, base)
    palette.setColor(QPalette.ColorRole.AlternateBase, window)
    palette.setColor(QPalette.ColorRole.ToolTipBase, base)
    palette.setColor(QPalette.ColorRole.ToolTipText, text)
    palette.setColor(QPalette.ColorRole.Text, text)
    palette.setColor(QPalette.ColorRole.Button, window)
    palette.setColor(QPalette.ColorRole.ButtonText, text)
    palette.setColor(QPalette.ColorRole.BrightText, QColor(0xFF, 0x55, 0x55))
    palette.setColor(QPalette.ColorRole.Link, highlight.lighter(130))
    palette.setColor(QPalette.ColorRole.Highlight, highlight)
    palette.setColor(QPalette.ColorRole.HighlightedText, QColor(0xFF, 0xFF, 0xFF))
    palette.setColor(QPalette.ColorRole.PlaceholderText, QColor(0x88, 0x88, 0x88))
    # Bevel shades (frame lines, separators); Qt's defaults are meant for light themes and glare white here.
    for role, shade in ((QPalette.ColorRole.Light, 0x55), (QPalette.ColorRole.Midlight, 0x45),
                        (QPalette.ColorRole.Mid, 0x2E), (QPalette.ColorRole.Dark, 0x22),
                        (QPalette.ColorRole.Shadow, 0x16)):
        palette.setColor(role, QColor(shade, shade, shade))
    disabled = QColor(0x7A, 0x7A, 0x7A)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    app.setPalette(palette)
