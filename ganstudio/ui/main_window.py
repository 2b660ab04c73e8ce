"""The editor window: tabs of open images, menus, docks, status bar, and the link between tools and the worker."""
from __future__ import annotations

import html
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QByteArray, QSettings, QSize, Qt
from PySide6.QtGui import (QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence,
                           QShortcut, QUndoGroup)
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QFrame, QGroupBox, QInputDialog, QLabel, QMainWindow,
                               QMessageBox, QProgressBar, QPushButton, QStackedWidget, QTabWidget, QToolBar,
                               QUndoView, QVBoxLayout, QWidget)

from ganstudio import __version__
from ganstudio.config import Preferences, config_dir, load_preferences, save_preferences
from ganstudio.engine import Runtime, describe_device
from ganstudio.engine.device import runtime_report
from ganstudio.imaging import READ_SUFFIXES, SAVE_FORMATS, ImageError, read_image, write_image
from ganstudio.models import configure_registry
from ganstudio.pose import Pose
from ganstudio.pose.skeleton import found_text
from ganstudio.tools import TOOLS
from ganstudio.tools.base import preview_region
from ganstudio.tools.pose import Detection, PoseParams
from ganstudio.ui.background import run_in_background
from ganstudio.ui.batch_dialog import BatchDialog
from ganstudio.ui.canvas import Canvas, CanvasTool
from ganstudio.ui.document import Document
from ganstudio.ui.generate_dialog import GenerateDialog, ImageGenerator
from ganstudio.ui.mask_tools import MaskOptions, MaskSettings
from ganstudio.tools.pose import DEFAULT_MODEL as DEFAULT_POSE_MODEL
from ganstudio.tools.pose import detect_job
from ganstudio.ui.preferences_dialog import PreferencesDialog
from ganstudio.ui.preview_dialog import PreviewDialog
from ganstudio.ui.resources import app_icon, icon
from ganstudio.ui.shortcuts_dialog import ShortcutsDialog
from ganstudio.ui.tools_panel import PREVIEW_SIDE, ToolsPanel
from ganstudio.ui.train_wizard import TrainingWizard
from ganstudio.ui.worker import Job, JobQueue

log = logging.getLogger(__name__)

APP_TITLE = "GAN Studio"
_CHANNEL_NAMES = {1: "Grey", 2: "Grey + alpha", 3: "RGB", 4: "RGBA"}
#: Formats where Save As asks for a quality.
_LOSSY = {"JPEG", "WEBP"}
#: Errors that mean "this file could not be read or written", shown to the user as they are.
_FILE_ERRORS = (ImageError, OSError, ValueError)

#: One key per GAN tool (the canvas tools have H, Z, B, E, M, L; G opens Generate). I is free as a single key:
#: Invert Mask is Ctrl+I.
GAN_TOOL_KEYS = {"superres": "U", "inpaint": "I", "translate": "T", "colorize": "C", "pose": "P"}
GAN_TOOL_ICONS = {"superres": "upscale", "inpaint": "inpaint", "translate": "translate", "colorize": "colorize",
                  "pose": "pose"}
GAN_TOOL_TIPS = {"superres": "Upscale the image ×2 or ×4", "inpaint": "Fill the masked area",
                 "translate": "Turn one kind of picture into another, e.g. a cat into a dog",
                 "colorize": "Colour a black-and-white photo",
                 "pose": "Find the person's pose and drag it into a new one"}
#: Keys the canvas handles itself (no menu action carries them), for Help › Keyboard Shortcuts.
CANVAS_KEYS = (("Pan while held", "Space"), ("Pan", "Middle mouse drag"),
               ("See the image before the last tool while held", "\\"), ("Zoom", "Mouse wheel"),
               ("Erase with the brush, paint with the eraser, clear a shape", "Right-drag or Alt-drag"),
               ("Square rectangle", "Shift-drag"), ("Cancel the drag, or the running tool", "Esc"),
               ("Move one pose joint alone", "Shift-drag"))
#: Pixels of context around a preview's area: more than the receptive-field radius of our tiled models.
_PREVIEW_CONTEXT = 16


@dataclass(frozen=True)
class _Preview:
    """A preview job: what to run again on the whole image, and which part of its result to show."""

    tool: str
    params: object
    #: the previewed area as it was when the preview started
    before: np.ndarray
    #: the crop the job runs on: the area with its context margin
    crop_shape: tuple[int, ...]
    #: the area's rows and columns inside the crop
    inner: tuple[slice, slice]
    #: words for the area, for the dialog
    region: str


def _suffix_filters() -> list[tuple[str, list[str]]]:
    """``[(format, [suffixes])]`` for the save dialog, PNG first (lossless, the safe default)."""
    by_format: dict[str, list[str]] = {}
    for suffix, fmt in SAVE_FORMATS.items():
        by_format.setdefault(fmt, []).append(suffix)
    return sorted(by_format.items(), key=lambda item: item[0] != "PNG")


def _filter_text(fmt: str, suffixes: list[str]) -> str:
    return f"{fmt} image ({' '.join('*' + s for s in suffixes)})"


def _mask_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """A loaded mask file as H x W uint8: its luminance (white = fill), whatever the file's channels and depth."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.ndim == 2:
        return pixels.copy()
    if pixels.shape[2] < 3:
        return pixels[:, :, 0].copy()
    rgb = pixels[:, :, :3].astype(np.uint32)
    return ((rgb[:, :, 0] * 299 + rgb[:, :, 1] * 587 + rgb[:, :, 2] * 114 + 500) // 1000).astype(np.uint8)


def _set_tip_with_key(action: QAction, text: str) -> None:
    """Tooltips name the key first, as in Krita and Photoshop ("Mask Brush (B)"), then what the command does."""
    shortcut = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    tip = f"{text} ({shortcut})" if shortcut else text
    if action.statusTip():
        tip += "\n" + action.statusTip()
    if action.toolTip() != tip:
        action.setToolTip(tip)


def _menu_actions(menu) -> list[QAction]:
    actions = []
    for action in menu.actions():
        if action.menu() is not None:
            actions += _menu_actions(action.menu())
        elif not action.isSeparator():
            actions.append(action)
    return actions


class MainWindow(QMainWindow):
    def __init__(self, prefs: Preferences | None = None) -> None:
        super().__init__()
        self.prefs = prefs if prefs is not None else load_preferences()
        configure_registry(self.prefs.model_path)
        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(1280, 800)

        self.jobs = JobQueue(self)
        self.generator = ImageGenerator(self.jobs, self._runtime, self._open_generated, self,
                                        blocked=self._generate_blocked)
        self.generator.failed.connect(lambda message: self.show_error(f"Generate failed: {message}"))
        self._generate_dialog: GenerateDialog | None = None
        #: job id -> (the document it runs on, its undo text, whether it consumes the document's mask)
        self._job_documents: dict[int, tuple[Document, str, bool]] = {}
        self._job_started_at: dict[int, float] = {}
        #: job id -> the pose a pose edit puts the person in, which the result's image carries on with
        self._job_poses: dict[int, Pose | None] = {}
        #: What a tool made of its input, for the status bar when it is done (ToolSpec.input_note).
        self._job_notes: dict[int, str] = {}
        self._job_previews: dict[int, _Preview] = {}
        #: detection job id -> (the pixels it runs on, the detector), to keep the person's matte for Apply
        self._detections: dict[int, tuple[np.ndarray, str]] = {}
        self._pose_model = DEFAULT_POSE_MODEL  # the model of the last Detect, for a click on another person
        #: previews whose job has just ended, handed from _job_done to the finished handler
        self._finished_previews: dict[int, _Preview] = {}
        self._preview_dialog: PreviewDialog | None = None
        self._shut_down = False
        self._batch_dialog: BatchDialog | None = None
        self._train_wizard: TrainingWizard | None = None
        self._shortcuts_dialog: ShortcutsDialog | None = None
        self.mask_settings = MaskSettings(self)
        self.undo_group = QUndoGroup(self)

        self._build_central()
        self._build_docks()
        self._build_status_bar()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._connect_jobs()
        self._restore_layout()
        self._restore_tool_models()
        self._on_current_changed()

    # -- construction ----------------------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.tabs.currentChanged.connect(self._on_current_changed)
        welcome = QLabel("Open an image with Ctrl+O, or drop image files here.")
        welcome.setAlignment(Qt.AlignmentFlag.AlignCenter)
        welcome.setEnabled(False)
        self._central = QStackedWidget()
        self._central.addWidget(welcome)
        self._central.addWidget(self.tabs)
        self.setCentralWidget(self._central)

    def _build_docks(self) -> None:
        self.tools_panel = ToolsPanel()
        self.tools_panel.run_requested.connect(self.run_tool)
        self.tools_panel.preview_requested.connect(self.preview_tool)
        self.tools_panel.detect_requested.connect(self.detect_pose)
        self.tools_panel.tool_changed.connect(self._on_tool_changed)
        mask_box = QGroupBox("Mask")
        QVBoxLayout(mask_box).addWidget(MaskOptions(self.mask_settings))
        tools = QWidget()
        layout = QVBoxLayout(tools)
        layout.addWidget(self.tools_panel)
        layout.addWidget(mask_box)
        layout.addStretch(1)
        self.tools_dock = QDockWidget("Tools", self)
        self.tools_dock.setObjectName("tools_dock")
        self.tools_dock.setWidget(tools)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.tools_dock)

        self.history_view = QUndoView(self.undo_group)
        self.history_view.setEmptyLabel("Opened")
        self.history_dock = QDockWidget("History", self)
        self.history_dock.setObjectName("history_dock")
        self.history_dock.setWidget(self.history_view)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.history_dock)
        self.splitDockWidget(self.tools_dock, self.history_dock, Qt.Orientation.Vertical)
        self.resizeDocks([self.tools_dock], [300], Qt.Orientation.Horizontal)
        self.resizeDocks([self.tools_dock, self.history_dock], [460, 240], Qt.Orientation.Vertical)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.job_label = QLabel()
        self.job_progress = QProgressBar()
        self.job_progress.setRange(0, 1000)
        self.job_progress.setMaximumWidth(180)
        self.job_progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running tool (Esc)")
        self.cancel_button.clicked.connect(self.cancel_running_job)
        self.image_label = QLabel()
        self.zoom_label = QLabel()
        self.device_label = QLabel()
        for widget in (self.job_label, self.job_progress, self.cancel_button):
            bar.addPermanentWidget(widget)
            widget.setVisible(False)
        for widget in (self.image_label, self.zoom_label, self.device_label):
            separator = QFrame()
            separator.setFrameShape(QFrame.Shape.VLine)
            separator.setFrameShadow(QFrame.Shadow.Sunken)
            widget.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(separator)
            bar.addPermanentWidget(widget)
        self.zoom_label.setMinimumWidth(self.zoom_label.fontMetrics().horizontalAdvance("3200 %") + 12)
        self._update_device_label()

    def _action(self, text: str, slot: Callable[..., object], shortcut: QKeySequence | str | QKeySequence.StandardKey | None = None,
                *, tip: str = "", checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if isinstance(shortcut, QKeySequence.StandardKey):
            action.setShortcuts(shortcut)
        elif shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setStatusTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        keys = QKeySequence.StandardKey
        self.open_action = self._action("&Open…", self.open_dialog, keys.Open, tip="Open one or more images")
        self.save_action = self._action("&Save", self.save_current, keys.Save)
        self.save_as_action = self._action("Save &As…", self.save_current_as, "Ctrl+Shift+S")
        self.close_action = self._action("&Close", self.close_current, "Ctrl+W")
        self.quit_action = self._action("&Quit", self.close, keys.Quit)
        if not self.quit_action.shortcuts():  # some platforms bind no standard Quit key
            self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))

        self.undo_action = self.undo_group.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts(keys.Undo)
        self.redo_action = self.undo_group.createRedoAction(self, "&Redo")
        redo_keys = QKeySequence.keyBindings(keys.Redo)
        for extra in (QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")):
            if extra not in redo_keys:
                redo_keys.append(extra)
        self.redo_action.setShortcuts(redo_keys)
        self.preferences_action = self._action("&Preferences…", self.open_preferences, "Ctrl+,")
        self.batch_action = self._action("&Batch Process Folder…", self.open_batch_dialog, "Ctrl+B",
                                         tip="Run a chain of tools over a folder of images")
        self.train_action = self._action("&Train a Model…", self.open_training_wizard,
                                         tip="Fine-tune a model on a folder of your own photos")
        self.generate_action = self._action("&Generate Images…", lambda: self.open_generate_dialog(),
                                            tip="New pictures from a generator trained on your folder")

        self.zoom_in_action = self._action("Zoom &In", lambda: self._canvas_call("zoom_in"), keys.ZoomIn)
        self.zoom_in_action.setShortcuts(QKeySequence.keyBindings(keys.ZoomIn) + [QKeySequence("Ctrl+=")])
        self.zoom_out_action = self._action("Zoom &Out", lambda: self._canvas_call("zoom_out"), keys.ZoomOut)
        self.fit_action = self._action("&Fit on Screen", lambda: self._canvas_call("fit"), "Ctrl+0")
        self.actual_size_action = self._action("&100 %", lambda: self._canvas_call("actual_size"), "Ctrl+1")
        self.split_action = self._action("Compare &Split View", self._toggle_split, "Y", checkable=True,
                                         tip="Before on the left, after on the right; drag the divider. "
                                             "Hold \\ to see the whole before image.")
        self.split_action.setIconText("Compare")
        self.fit_action.setIconText("Fit")

        self.hand_action = self._action("&Hand", lambda: self.set_canvas_tool(CanvasTool.HAND), "H",
                                        checkable=True, tip="Drag to pan (also: Space-drag, middle mouse)")
        self.brush_action = self._action("Mask &Brush", lambda: self.set_canvas_tool(CanvasTool.BRUSH), "B",
                                         checkable=True,
                                         tip="Paint the mask; right-drag or Alt-drag erases; [ and ] resize")
        self.eraser_action = self._action("Mask &Eraser", lambda: self.set_canvas_tool(CanvasTool.ERASER), "E",
                                          checkable=True,
                                          tip="Erase the mask; right-drag or Alt-drag paints; [ and ] resize")
        self.rectangle_action = self._action("&Rectangle Mask", lambda: self.set_canvas_tool(CanvasTool.RECTANGLE),
                                             "M", checkable=True,
                                             tip="Drag a rectangle to mask; right-drag or Alt-drag clears it; "
                                                 "Shift makes a square; Esc cancels")
        self.lasso_action = self._action("L&asso Mask", lambda: self.set_canvas_tool(CanvasTool.LASSO), "L",
                                         checkable=True,
                                         tip="Draw round an area to mask it; right-drag or Alt-drag clears it; "
                                             "Esc cancels")
        self.zoom_tool_action = self._action("&Zoom Tool", lambda: self.set_canvas_tool(CanvasTool.ZOOM), "Z",
                                             checkable=True,
                                             tip="Click to zoom in at the point; Alt-click or right-click zooms out")
        self.zoom_tool_action.setIconText("Zoom")
        self.eraser_action.setIconText("Eraser")
        self.rectangle_action.setIconText("Rectangle")
        self.lasso_action.setIconText("Lasso")
        self._tool_actions = {CanvasTool.HAND: self.hand_action, CanvasTool.ZOOM: self.zoom_tool_action,
                              CanvasTool.BRUSH: self.brush_action,
                              CanvasTool.ERASER: self.eraser_action, CanvasTool.RECTANGLE: self.rectangle_action,
                              CanvasTool.LASSO: self.lasso_action}
        self.hand_action.setChecked(True)
        tool_group = QActionGroup(self)
        for action in self._tool_actions.values():
            tool_group.addAction(action)
        # The GAN tools, one key each as the canvas tools have (Krita, GIMP): choosing one shows its options.
        self._gan_tool_actions: dict[str, QAction] = {}
        gan_group = QActionGroup(self)
        for name, spec in TOOLS.items():
            key = GAN_TOOL_KEYS.get(name)
            action = self._action(spec.title, lambda _=False, n=name: self.choose_gan_tool(n), key, checkable=True,
                                  tip=GAN_TOOL_TIPS.get(name, spec.title))
            gan_group.addAction(action)
            self._gan_tool_actions[name] = action
        self.generate_action.setShortcut(QKeySequence("G"))
        self.keyboard_action = self._action("&Keyboard Shortcuts", self.show_keyboard_shortcuts, "Ctrl+/",
                                            tip="Every key of the editor in one list")
        self.smaller_brush_action = self._action("S&maller Brush", self.mask_settings.shrink_brush, "[")
        self.larger_brush_action = self._action("&Larger Brush", self.mask_settings.grow_brush, "]")
        self.show_mask_action = self._action("Show Mask &Overlay", self._toggle_mask_overlay, checkable=True)
        self.show_mask_action.setChecked(self.mask_settings.visible)
        self.mask_settings.changed.connect(lambda: self.show_mask_action.setChecked(self.mask_settings.visible))
        self.load_mask_action = self._action("L&oad Mask…", self.load_mask, tip="A PNG where white marks the area")
        self.save_mask_action = self._action("&Save Mask…", self.save_mask)
        self.clear_mask_action = self._action("&Clear Mask", self.clear_mask, "Ctrl+Shift+A")
        self.invert_mask_action = self._action("&Invert Mask", self.invert_mask, "Ctrl+I")
        self.about_action = self._action("&About GAN Studio", self.show_about)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel_running_job)

        self._document_actions = [
            self.save_action, self.save_as_action, self.close_action, self.zoom_in_action, self.zoom_out_action,
            self.fit_action, self.actual_size_action, self.split_action, self.load_mask_action,
            self.save_mask_action, self.clear_mask_action, self.invert_mask_action,
        ]

    def _build_menus(self) -> None:
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        file_menu.addActions([self.save_action, self.save_as_action])
        file_menu.addSeparator()
        file_menu.addAction(self.batch_action)
        file_menu.addAction(self.train_action)
        file_menu.addAction(self.generate_action)
        file_menu.addSeparator()
        file_menu.addAction(self.close_action)
        file_menu.addAction(self.quit_action)

        edit_menu = menus.addMenu("&Edit")
        edit_menu.addActions([self.undo_action, self.redo_action])
        edit_menu.addSeparator()
        edit_menu.addAction(self.preferences_action)

        view_menu = menus.addMenu("&View")
        view_menu.addActions([self.zoom_in_action, self.zoom_out_action, self.fit_action, self.actual_size_action])
        view_menu.addSeparator()
        view_menu.addAction(self.split_action)
        view_menu.addSeparator()
        view_menu.addAction(self.tools_dock.toggleViewAction())
        view_menu.addAction(self.history_dock.toggleViewAction())
        view_menu.addSeparator()
        view_menu.addActions([self.hand_action, self.zoom_tool_action])

        mask_menu = menus.addMenu("&Mask")
        mask_menu.addActions([action for tool, action in self._tool_actions.items() if tool.edits_mask])
        mask_menu.addSeparator()
        mask_menu.addActions([self.smaller_brush_action, self.larger_brush_action])
        mask_menu.addSeparator()
        mask_menu.addActions([self.clear_mask_action, self.invert_mask_action, self.show_mask_action])
        mask_menu.addSeparator()
        mask_menu.addActions([self.load_mask_action, self.save_mask_action])

        tools_menu = menus.addMenu("&Tools")
        tools_menu.addActions(list(self._gan_tool_actions.values()))
        tools_menu.addSeparator()
        tools_menu.addAction(self.generate_action)

        help_menu = menus.addMenu("&Help")
        help_menu.addAction(self.keyboard_action)
        help_menu.addSeparator()
        help_menu.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        icons = {self.open_action: "open", self.save_action: "save", self.undo_action: "undo",
                 self.redo_action: "redo", self.zoom_out_action: "zoom-out", self.fit_action: "zoom-fit",
                 self.actual_size_action: "zoom-actual", self.zoom_in_action: "zoom-in", self.split_action: "compare",
                 self.hand_action: "hand", self.zoom_tool_action: "zoom", self.brush_action: "brush",
                 self.eraser_action: "eraser", self.rectangle_action: "rectangle", self.lasso_action: "lasso",
                 self.generate_action: "generate", self.keyboard_action: "keyboard"}
        icons.update({self._gan_tool_actions[name]: icon for name, icon in GAN_TOOL_ICONS.items()
                      if name in self._gan_tool_actions})
        for action, name in icons.items():
            action.setIcon(icon(name))
        toolbar = QToolBar("Main toolbar")
        toolbar.setObjectName("main_toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        toolbar.addActions([self.open_action, self.save_action])
        toolbar.addSeparator()
        # Steady button tooltips: the full "Undo <step>" text, and the key.
        for action, label in ((self.undo_action, "Undo"), (self.redo_action, "Redo")):
            action.setIconText(label)
            action.changed.connect(lambda a=action: _set_tip_with_key(a, a.text().replace("&", "")))
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addActions([self.zoom_out_action, self.fit_action, self.actual_size_action, self.zoom_in_action])
        toolbar.addSeparator()
        toolbar.addAction(self.split_action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)

        # The toolbox: canvas tools above, the GAN tools below, as in Krita's and Photoshop's.
        self.toolbox = QToolBar("Toolbox")
        self.toolbox.setObjectName("toolbox")
        self.toolbox.setOrientation(Qt.Orientation.Vertical)
        self.toolbox.setMovable(False)
        self.toolbox.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.toolbox.setIconSize(QSize(24, 24))
        # Fusion's checked tool button is barely darker than the dark theme's background: mark the current tool.
        self.toolbox.setStyleSheet("QToolButton:checked { background: rgba(61, 126, 201, 110); "
                                   "border: 1px solid #3d7ec9; border-radius: 3px; }")
        self.toolbox.addActions(list(self._tool_actions.values()))
        self.toolbox.addSeparator()
        self.toolbox.addActions(list(self._gan_tool_actions.values()))
        self.toolbox.addAction(self.generate_action)
        self.addToolBar(Qt.ToolBarArea.LeftToolBarArea, self.toolbox)
        for action in self.findChildren(QAction):
            if action not in (self.undo_action, self.redo_action):
                _set_tip_with_key(action, action.iconText().replace("&", ""))
        self._gan_tool_actions[self.tools_panel.current_tool].setChecked(True)

    def _connect_jobs(self) -> None:
        self.jobs.started.connect(self._on_job_started)
        self.jobs.progress.connect(self._on_job_progress)
        self.jobs.finished.connect(self._on_job_finished)
        self.jobs.failed.connect(self._on_job_failed)
        self.jobs.cancelled.connect(self._on_job_cancelled)
        self.undo_group.indexChanged.connect(lambda _: self._update_for_document())

    def _layout_settings(self) -> QSettings:
        # Beside preferences.json, so tests and portable installs (GANSTUDIO_CONFIG_DIR) keep it out of ~/.config.
        return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)

    def _restore_tool_models(self) -> None:
        """Each tool starts on the model the user chose last time, if it is still installed (else the best one)."""
        settings = self._layout_settings()
        for tool in TOOLS:
            remembered = settings.value(f"tool_models/{tool}")
            if isinstance(remembered, str) and remembered:
                self.tools_panel.select_model(tool, remembered)
        self.tools_panel.model_chosen.connect(self._remember_tool_model)

    def _remember_tool_model(self, tool: str, model: str) -> None:
        settings = self._layout_settings()
        settings.setValue(f"tool_models/{tool}", model)
        settings.sync()

    def _restore_layout(self) -> None:
        settings = self._layout_settings()
        geometry, state = settings.value("geometry"), settings.value("state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    # -- documents -------------------------------------------------------------------------------------------
    @property
    def canvases(self) -> list[Canvas]:
        return [self.tabs.widget(i) for i in range(self.tabs.count())]

    @property
    def documents(self) -> list[Document]:
        return [canvas.document for canvas in self.canvases]

    @property
    def current_canvas(self) -> Canvas | None:
        return self.tabs.currentWidget()

    @property
    def current_document(self) -> Document | None:
        canvas = self.current_canvas
        return canvas.document if canvas is not None else None

    def open_files(self, paths: list[str] | list[Path]) -> None:
        for path in paths:
            self.open_file(path)

    def open_file(self, path: str | Path) -> Document | None:
        """Open ``path`` in a new tab, or switch to its tab if it is already open; errors are shown, not raised."""
        path = Path(path).expanduser().resolve()
        for index, document in enumerate(self.documents):
            if document.path == path:
                self.tabs.setCurrentIndex(index)
                return document
        self.setCursor(Qt.CursorShape.WaitCursor)
        self.statusBar().showMessage(f"Opening {path.name}…")
        limit = self.prefs.max_megapixels * 1_000_000
        try:
            loaded = run_in_background(lambda: read_image(path, max_pixels=limit))
        except _FILE_ERRORS as error:
            self.show_error(str(error))
            return None
        finally:
            self.unsetCursor()
            self.statusBar().clearMessage()
        document = Document(loaded.pixels, loaded.meta, path)
        self.add_document(document)
        self._remember_recent(path)
        return document

    def add_document(self, document: Document) -> Canvas:
        canvas = Canvas(document, self.mask_settings)
        canvas.set_tool(next((tool for tool, action in self._tool_actions.items() if action.isChecked()),
                             CanvasTool.HAND))
        canvas.set_pose_mode(self.tools_panel.current_tool == "pose")
        canvas.zoom_changed.connect(lambda _: self._update_zoom_label())
        canvas.person_clicked.connect(self._pose_other_person)
        document.dirty_changed.connect(lambda _: self._update_tab_title(document))
        document.path_changed.connect(lambda: self._update_tab_title(document))
        document.busy_changed.connect(lambda _: self._update_for_document())
        document.image_changed.connect(self._update_for_document)
        self.undo_group.addStack(document.undo_stack)
        index = self.tabs.addTab(canvas, document.title)
        self._update_tab_title(document)
        self._central.setCurrentWidget(self.tabs)
        self.tabs.setCurrentIndex(index)
        canvas.setFocus()
        return canvas

    def close_tab(self, index: int) -> bool:
        """Close one image, asking about unsaved changes; ``False`` if the user kept it open."""
        canvas = self.tabs.widget(index)
        document = canvas.document
        if document.dirty:
            self.tabs.setCurrentIndex(index)
            if not self._settle_unsaved(document):
                return False
        if document.job_id is not None:
            # Its result has nowhere to go: stop the work; the finished/cancelled signal finds no document.
            self.jobs.cancel(document.job_id)
        self.undo_group.removeStack(document.undo_stack)
        self.tabs.removeTab(index)
        canvas.deleteLater()
        if self.tabs.count() == 0:
            self._central.setCurrentIndex(0)
        return True

    def close_current(self) -> None:
        if self.tabs.count():
            self.close_tab(self.tabs.currentIndex())

    def _settle_unsaved(self, document: Document) -> bool:
        """Ask Save / Discard / Cancel; ``True`` when it is fine to close the document now."""
        answer = QMessageBox.question(
            self, APP_TITLE, f"Save the changes to “{document.title}” before closing?\n"
                             "Your changes are lost if you don't save them.",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save_document(document)
        return answer == QMessageBox.StandardButton.Discard

    def closeEvent(self, event: QCloseEvent) -> None:
        for index, document in enumerate(self.documents):
            if document.dirty:
                self.tabs.setCurrentIndex(index)
                if not self._settle_unsaved(document):
                    event.ignore()
                    return
        settings = self._layout_settings()
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("state", self.saveState())
        # The documents outlive the window's widgets by a little (Python owns them); their stacks must not drive
        # this window's history view and labels while everything is torn down.
        for document in self.documents:
            self.undo_group.removeStack(document.undo_stack)
        self.shutdown()
        event.accept()

    def shutdown(self) -> bool:
        """Stop the worker (cancelling any job); ``False`` if a tool did not stop in time."""
        if self._shut_down:
            return True
        self._shut_down = True
        stopped = self.jobs.shutdown()
        if self._batch_dialog is not None:
            stopped = self._batch_dialog.shutdown() and stopped
        if self._train_wizard is not None:
            stopped = self._train_wizard.shutdown() and stopped
        if not stopped:
            log.warning("a tool did not stop within the shutdown timeout")
        return stopped

    # -- open and save ---------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(READ_SUFFIXES))
        start = str(self.current_document.path.parent) if self.current_document and self.current_document.path \
            else ""
        paths, _ = QFileDialog.getOpenFileNames(self, "Open Images", start,
                                                f"Images ({patterns});;All files (*)")
        self.open_files(paths)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for number, entry in enumerate(self.prefs.recent_files, start=1):
            action = self.recent_menu.addAction(f"&{number % 10}  {Path(entry).name}")
            action.setStatusTip(entry)
            action.setToolTip(entry)
            action.triggered.connect(lambda _=False, p=entry: self.open_file(p))
        if not self.prefs.recent_files:
            self.recent_menu.addAction("No recent files").setEnabled(False)
            return
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear Menu", self._clear_recent)

    def _clear_recent(self) -> None:
        self.prefs.recent_files = []
        self._save_preferences()

    def _remember_recent(self, path: Path) -> None:
        self.prefs.add_recent(path)
        self._save_preferences()

    def save_current(self) -> bool:
        document = self.current_document
        return document is not None and self.save_document(document)

    def save_current_as(self) -> bool:
        document = self.current_document
        return document is not None and self.save_document_as(document)

    def save_document(self, document: Document) -> bool:
        """Save to the file it came from, in its format; files we cannot write (BMP, ...) go through Save As."""
        if document.path is None or document.path.suffix.lower() not in SAVE_FORMATS:
            return self.save_document_as(document)
        return self._write(document, document.path, self.prefs.jpeg_quality)

    def save_document_as(self, document: Document) -> bool:
        formats = _suffix_filters()
        filters = [_filter_text(fmt, suffixes) for fmt, suffixes in formats]
        current = document.path.suffix.lower() if document.path else ""
        chosen = next((i for i, (_, suffixes) in enumerate(formats) if current in suffixes), 0)
        stem = document.path.with_suffix(formats[chosen][1][0]) if document.path else Path(f"{document.title}.png")
        name, selected = QFileDialog.getSaveFileName(self, "Save Image As", str(stem), ";;".join(filters),
                                                     filters[chosen])
        if not name:
            return False
        path = Path(name)
        if path.suffix.lower() not in SAVE_FORMATS:
            _, suffixes = formats[filters.index(selected)] if selected in filters else formats[chosen]
            path = path.with_name(path.name + suffixes[0])
            # The dialog confirmed overwriting the name it returned, not the one with the suffix added.
            if path.exists() and QMessageBox.question(
                    self, APP_TITLE, f"{path.name} already exists. Replace it?") != QMessageBox.StandardButton.Yes:
                return False
        fmt = SAVE_FORMATS[path.suffix.lower()]
        quality = self.prefs.jpeg_quality
        if fmt in _LOSSY:
            quality, ok = QInputDialog.getInt(self, f"{fmt} quality", "Quality (1–100, higher is better):",
                                              quality, 1, 100)
            if not ok:
                return False
            self.prefs.jpeg_quality = quality
            self._save_preferences()
        return self._write(document, path, quality)

    def _write(self, document: Document, path: Path, quality: int) -> bool:
        self.setCursor(Qt.CursorShape.WaitCursor)
        self.statusBar().showMessage(f"Saving {path.name}…")
        # What is written is the image as it is now: a job's result may still be applied while the file is written.
        pixels, meta, state = document.pixels, document.meta, document.undo_stack.index()
        try:
            # The user chose this file by Save (its own file) or Save As (the dialog confirmed a replacement).
            written = run_in_background(lambda: write_image(path, pixels, meta, quality=quality, overwrite=True))
        except _FILE_ERRORS as error:
            self.statusBar().clearMessage()
            self.show_error(str(error))
            return False
        finally:
            self.unsetCursor()
        document.path = Path(written).resolve()
        if document.undo_stack.index() == state:
            document.mark_saved()
        self._remember_recent(document.path)
        self.statusBar().showMessage(f"Saved {document.path}", 5000)
        return True

    # -- mask ------------------------------------------------------------------------------------------------
    def set_canvas_tool(self, tool: CanvasTool) -> None:
        self._tool_actions[tool].setChecked(True)
        for canvas in self.canvases:
            canvas.set_tool(tool)

    def _toggle_mask_overlay(self, visible: bool) -> None:
        self.mask_settings.visible = visible

    def load_mask(self) -> None:
        document = self.current_document
        if document is None:
            return
        name, _ = QFileDialog.getOpenFileName(self, "Load Mask", "", "Mask images (*.png *.tif *.tiff *.bmp)")
        if not name:
            return
        try:
            limit = self.prefs.max_megapixels * 1_000_000
            mask = _mask_from_pixels(run_in_background(lambda: read_image(Path(name), max_pixels=limit)).pixels)
            document.set_mask(mask, "Load mask")
        except _FILE_ERRORS as error:
            self.show_error(f"Could not load the mask: {error}")

    def save_mask(self) -> None:
        document = self.current_document
        if document is None:
            return
        start = document.path.with_name(document.path.stem + "-mask.png") if document.path else Path("mask.png")
        name, _ = QFileDialog.getSaveFileName(self, "Save Mask", str(start), "PNG image (*.png)")
        if not name:
            return
        path = Path(name) if Path(name).suffix.lower() == ".png" else Path(name + ".png")
        try:
            write_image(path, document.mask[:, :, None], None, overwrite=True)
        except _FILE_ERRORS as error:
            self.show_error(f"Could not save the mask: {error}")
        else:
            self.statusBar().showMessage(f"Saved mask {path}", 5000)

    def clear_mask(self) -> None:
        document = self.current_document
        if document is not None and not document.mask_is_empty:
            document.set_mask(np.zeros_like(document.mask), "Clear mask")

    def invert_mask(self) -> None:
        document = self.current_document
        if document is not None:
            document.set_mask(255 - document.mask, "Invert mask")

    # -- tools and jobs --------------------------------------------------------------------------------------
    def run_tool(self, tool: str, params: object, function: Callable[..., object] | None = None,
                 text: str | None = None) -> int | None:
        """Start ``tool`` on the current image in the worker; one job per image at a time. ``function`` runs
        instead of the tool's own run (a pose detection), under the undo or status ``text``."""
        document = self.current_document
        if document is None or document.busy or self._shut_down:
            return None
        if self._batch_dialog is not None and self._batch_dialog.is_running:
            # one user of the device at a time: a batch holds it until it ends or is cancelled
            self.show_error("A batch is running: wait for it to finish or cancel it, then run the tool again.")
            return None
        spec = TOOLS[tool]
        uses_mask = spec.uses_mask(params)
        if uses_mask and document.mask_is_empty:
            self.show_error(f"{spec.title} needs a mask: paint over the area first (B), or load a mask.")
            return None
        job = Job(tool, params, document.pixels, document.mask if uses_mask else None, self._runtime(),
                  function=function)
        model = getattr(params, "model", "")
        scale = getattr(params, "scale", None)
        if text is None and isinstance(params, PoseParams):
            # the detector's name says nothing about a pose edit, which may not even run it
            text = spec.title
            self._job_poses[job.id] = params.target
        elif text is None:
            text = spec.title + (f" ×{scale}" if scale else "") + (f" ({model})" if model else "")
        self._job_documents[job.id] = (document, text, uses_mask)
        if function is None:
            self._job_notes[job.id] = spec.note_for(document.pixels, params)
        document.job_id = self.jobs.submit(job)
        self._update_job_widgets()
        # Back to the canvas, so the compare key (backslash) and view shortcuts work without another click.
        self.current_canvas.setFocus()
        return job.id

    def preview_tool(self, tool: str, params: object) -> int | None:
        """Run ``tool`` on the part of the current image in view (at most PREVIEW_SIDE pixels a side) and show
        the result beside the original; the image is not changed."""
        document, canvas = self.current_document, self.current_canvas
        if document is None or canvas is None or document.busy or self._shut_down:
            return None
        try:
            rows, cols = preview_region(document.pixels.shape, canvas.visible_rect(), PREVIEW_SIDE)
        except ValueError as error:
            self.show_error(str(error))
            return None
        # The crop carries a margin of context, cut off the result again, so the preview shows the pixels the
        # whole run gives there rather than the crop's own border effects.
        height, width = document.pixels.shape[:2]
        top, left = max(rows.start - _PREVIEW_CONTEXT, 0), max(cols.start - _PREVIEW_CONTEXT, 0)
        bottom, right = min(rows.stop + _PREVIEW_CONTEXT, height), min(cols.stop + _PREVIEW_CONTEXT, width)
        crop = document.pixels[top:bottom, left:right]
        spec = TOOLS[tool]
        model = getattr(params, "model", "")
        title = spec.title + (f" ×{params.scale}" if getattr(params, "scale", None) else "") + (
            f" ({model})" if model else "")
        job = Job(tool, params, crop, None, self._runtime())
        inner = (slice(rows.start - top, rows.stop - top), slice(cols.start - left, cols.stop - left))
        size = f"{cols.stop - cols.start}×{rows.stop - rows.start} pixels"
        whole_view = rows.stop - rows.start < PREVIEW_SIDE and cols.stop - cols.start < PREVIEW_SIDE
        region = (f"the {size} in view" if whole_view else f"{size} at the centre of the view") + (
            f" (from x {cols.start}, y {rows.start})")
        self._job_previews[job.id] = _Preview(tool, params, crop[inner].copy(), crop.shape[:2], inner, region)
        self._job_documents[job.id] = (document, f"Preview: {title}", False)
        document.job_id = self.jobs.submit(job)
        self._update_job_widgets()
        return job.id

    def _show_preview(self, job_id: int, document: Document, text: str, result: np.ndarray, seconds: float) -> None:
        preview = self._finished_previews.pop(job_id)
        # the result covers the crop with its context margin, at the tool's scale
        scale_y = result.shape[0] / preview.crop_shape[0]
        scale_x = result.shape[1] / preview.crop_shape[1]
        rows, cols = preview.inner
        shown = result[round(rows.start * scale_y):round(rows.stop * scale_y),
                       round(cols.start * scale_x):round(cols.stop * scale_x)]
        details = (f"{text.removeprefix('Preview: ')} on {preview.region}, in {seconds:.1f} s, shown at 100 %. "
                   "Apply to the whole image with the same settings, or close and change them.")
        dialog = PreviewDialog(preview.before, shown, text.removeprefix("Preview: "), details, self)
        dialog.apply_requested.connect(lambda: self._apply_previewed(document, preview.tool, preview.params))
        dialog.show()
        self._preview_dialog = dialog

    def _apply_previewed(self, document: Document, tool: str, params: object) -> None:
        if document in self.documents:
            self.tabs.setCurrentIndex(self.documents.index(document))
            self.run_tool(tool, params)

    def detect_pose(self, model: str, near: tuple[float, float] | None = None) -> int | None:
        """Find the person's skeleton on the current image (the largest person, or the one at ``near``), in the
        worker."""
        document = self.current_document
        job_id = self.run_tool("pose", PoseParams(model=model, near=near), function=detect_job, text="Detect pose")
        if job_id is not None and document is not None:
            self._detections[job_id] = (document.pixels, model)
        self._pose_model = model
        return job_id

    def _pose_other_person(self, x: float, y: float) -> None:
        """A click on another person the detection saw: pose them instead (one undo step back to the first)."""
        self.detect_pose(self._pose_model, near=(x, y))

    def _on_tool_changed(self, tool: str) -> None:
        for canvas in self.canvases:
            canvas.set_pose_mode(tool == "pose")
        action = getattr(self, "_gan_tool_actions", {}).get(tool)
        if action is not None:
            action.setChecked(True)

    def choose_gan_tool(self, name: str) -> None:
        """Show ``name``'s options in the Tools dock (opening the dock if it was closed)."""
        self.tools_panel.select_tool(name)
        self._gan_tool_actions[name].setChecked(True)
        if not self.tools_dock.isVisible():
            self.tools_dock.show()
        self.tools_dock.raise_()

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """(group, what, keys) for Help › Keyboard Shortcuts: every menu's actions with keys, then the keys that
        work on the canvas without an action."""
        rows = []
        for menu_action in self.menuBar().actions():
            menu = menu_action.menu()
            group = menu_action.text().replace("&", "")
            for action in _menu_actions(menu):
                # Leave out the multimedia keys of the standard bindings ("Open", "Zoom In"): few keyboards have them.
                keys = ", ".join(sequence.toString(QKeySequence.SequenceFormat.NativeText)
                                 for sequence in action.shortcuts() if sequence[0].key() < Qt.Key.Key_Back)
                if keys:
                    rows.append((group, action.text().replace("&", "").rstrip("…"), keys))
        rows += [("Canvas", what, keys) for what, keys in CANVAS_KEYS]
        return rows

    def show_keyboard_shortcuts(self) -> None:
        if self._shortcuts_dialog is None:
            self._shortcuts_dialog = ShortcutsDialog(self.shortcut_rows(), self)
        self._shortcuts_dialog.show()
        self._shortcuts_dialog.raise_()

    def open_batch_dialog(self) -> BatchDialog:
        if self._batch_dialog is None:
            self._batch_dialog = BatchDialog(self, runtime_provider=self._runtime,
                                             device_busy=lambda: self.jobs.busy)
        self._batch_dialog.show()
        self._batch_dialog.raise_()
        self._batch_dialog.activateWindow()
        return self._batch_dialog

    def open_training_wizard(self) -> TrainingWizard:
        if self._train_wizard is None:
            self._train_wizard = TrainingWizard(self, model_dir=lambda: self.prefs.model_path)
            # The wizard has rescanned the registry; the tools' model lists follow, as after a preferences change.
            self._train_wizard.model_exported.connect(lambda _: self.tools_panel.refresh_models())
            self._train_wizard.generate_requested.connect(lambda model, count: self.generate_images(model, count))
        self._train_wizard.show()
        self._train_wizard.raise_()
        self._train_wizard.activateWindow()
        return self._train_wizard

    def open_generate_dialog(self, model: str | None = None) -> GenerateDialog:
        if self._generate_dialog is None:
            self._generate_dialog = GenerateDialog(self.generator, self)
        self._generate_dialog.refresh_models(model)
        self._generate_dialog.show()
        self._generate_dialog.raise_()
        self._generate_dialog.activateWindow()
        return self._generate_dialog

    def generate_images(self, model: str, count: int, seed: int = 0) -> list[int]:
        """Make ``count`` new pictures with the ``generate`` model in the worker; each opens as a new image."""
        if self._shut_down:
            return []
        reason = self._generate_blocked()
        if reason:
            self.show_error(reason)
            return []
        return self.generator.generate(model, count, seed)

    def _generate_blocked(self) -> str:
        if self._batch_dialog is not None and self._batch_dialog.is_running:
            # one user of the device at a time, as for the tools
            return "A batch is running: wait for it to finish or cancel it, then generate the pictures."
        return ""

    def _open_generated(self, pixels: np.ndarray, title: str) -> Document:
        document = Document(pixels, name=title)
        self.add_document(document)
        return document

    def _runtime(self) -> Runtime:
        return Runtime(device=self.prefs.device, precision=self.prefs.precision, tile=self.prefs.tile)

    def cancel_running_job(self) -> None:
        running = self.jobs.running_job
        if running is not None:
            self.jobs.cancel(running)
            self.job_label.setText("Cancelling…")
        else:
            self.jobs.cancel_all()

    def _job_done(self, job_id: int) -> tuple[Document, str, bool] | None:
        """Forget the job; its document and undo text, or ``None`` if that document was closed meanwhile."""
        entry = self._job_documents.pop(job_id, None)
        self._job_poses.pop(job_id, None)
        self._job_notes.pop(job_id, None)
        self._detections.pop(job_id, None)
        preview = self._job_previews.pop(job_id, None)
        if preview is not None and entry is not None:
            self._finished_previews[job_id] = preview
        self._update_job_widgets()
        if entry is None or entry[0] not in self.documents:
            return None
        entry[0].job_id = None
        return entry

    def _on_job_started(self, job_id: int) -> None:
        self._job_started_at[job_id] = time.monotonic()
        self.job_progress.setValue(0)
        self._update_job_widgets()

    def _on_job_progress(self, job_id: int, fraction: float, message: str) -> None:
        if job_id == self.jobs.running_job and job_id in self._job_documents:
            document, text, _ = self._job_documents[job_id]
            self.job_progress.setValue(round(fraction * 1000))
            self.job_label.setText(f"{document.title}: {message or text}")

    def _on_job_finished(self, job_id: int, result: np.ndarray | Detection) -> None:
        seconds = time.monotonic() - self._job_started_at.pop(job_id, time.monotonic())
        pose = self._job_poses.get(job_id)
        detected_on = self._detections.pop(job_id, None)
        note = self._job_notes.get(job_id, "")
        entry = self._job_done(job_id)
        if entry is None:
            return
        document, text, used_mask = entry
        if job_id in self._finished_previews:
            self._show_preview(job_id, document, text, result, seconds)
            return
        if isinstance(result, Detection):
            if detected_on is not None:
                document.remember_person(detected_on[0], detected_on[1], result.person)
            document.set_pose(result.pose, result.pose.copy(), text)
            document.other_people = list(result.others)
            others = (f" {len(result.others) + 1} people in the photo: click another to pose them instead."
                      if result.others else "")
            self.statusBar().showMessage(f"{found_text(result.pose)}. Drag the joints to the new pose, then Apply."
                                         f"{others}", 12000)
            return
        # a fill is done with its mask: clearing it in the same step shows the result and undoes as one
        document.apply_result(result, text, clear_mask=used_mask, pose=pose)
        self.statusBar().showMessage(f"{text}: done in {seconds:.1f} s.{' ' + note if note else ''} "
                                     "Hold \\ to compare with the image before.", 12000 if note else 8000)

    def _on_job_failed(self, job_id: int, message: str) -> None:
        self._job_started_at.pop(job_id, None)
        entry = self._job_done(job_id)
        self._finished_previews.pop(job_id, None)
        if entry is not None:
            self.show_error(f"{entry[1]} failed: {message}")

    def _on_job_cancelled(self, job_id: int) -> None:
        self._job_started_at.pop(job_id, None)
        entry = self._job_done(job_id)
        self._finished_previews.pop(job_id, None)
        if entry is not None:
            self.statusBar().showMessage("Cancelled; the image is unchanged.", 5000)

    def _update_job_widgets(self) -> None:
        active = bool(self._job_documents)
        for widget in (self.job_label, self.job_progress, self.cancel_button):
            widget.setVisible(active)
        if not active:
            return
        running = self.jobs.running_job
        queued = self.jobs.queued_count
        if running in self._job_documents:
            document, text, _ = self._job_documents[running]
            label = f"{document.title}: {text}"
        else:
            label = "Waiting…"
        self.job_label.setText(label + (f"  (+{queued} queued)" if queued else ""))
        self._update_for_document()

    # -- preferences and about -------------------------------------------------------------------------------
    def open_preferences(self) -> None:
        dialog = PreferencesDialog(self.prefs, self)
        if dialog.exec() == PreferencesDialog.DialogCode.Accepted:
            self.apply_preferences(dialog.preferences())

    def apply_preferences(self, prefs: Preferences) -> None:
        """Save and take effect now: device text, the model folder's models in every tool's list."""
        self.prefs = prefs
        self._save_preferences()
        configure_registry(prefs.model_path)
        self.tools_panel.refresh_models()
        self._update_device_label()

    def _save_preferences(self) -> None:
        try:
            save_preferences(self.prefs)
        except OSError as error:
            self.statusBar().showMessage(f"Could not save the preferences: {error}", 8000)

    def _update_device_label(self) -> None:
        self.device_label.setText(describe_device(self.prefs.device))

    def show_about(self) -> None:
        QMessageBox.about(
            self, f"About {APP_TITLE}",
            f"<h3>{APP_TITLE} {__version__}</h3>"
            "<p>A photo editor for GAN tools: super-resolution, inpainting and more.</p>"
            f"<p>{'<br>'.join(html.escape(line) for line in runtime_report(self.prefs.device, self.prefs.precision))}"
            f"<br>Python {platform.python_version()} · Qt for Python {pyside_version}</p>")

    def show_error(self, message: str) -> None:
        """Tell the user without blocking: the window stays usable and a running job keeps its progress."""
        box = QMessageBox(QMessageBox.Icon.Warning, APP_TITLE, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    # -- view state ------------------------------------------------------------------------------------------
    def _canvas_call(self, method: str) -> None:
        canvas = self.current_canvas
        if canvas is not None:
            getattr(canvas, method)()

    def _toggle_split(self, enabled: bool) -> None:
        canvas = self.current_canvas
        if canvas is not None:
            canvas.set_split(enabled)

    def _on_current_changed(self, _index: int = -1) -> None:
        canvas = self.current_canvas
        self.undo_group.setActiveStack(canvas.document.undo_stack if canvas else None)
        self.tools_panel.set_document(canvas.document if canvas else None)
        self.split_action.setChecked(bool(canvas and canvas.split))
        for action in self._document_actions:
            action.setEnabled(canvas is not None)
        if canvas is not None:
            canvas.setFocus()
        self._update_for_document()
        self._update_zoom_label()

    def _update_for_document(self) -> None:
        document = self.current_document
        if document is None:
            self.image_label.setText("")
            self.setWindowTitle(APP_TITLE)
            self.setWindowModified(False)
            self.tools_panel.set_document_state(False, False, True)
            return
        channels = _CHANNEL_NAMES.get(document.channels, f"{document.channels} channels")
        self.image_label.setText(f"{document.width} × {document.height} px  ·  {channels} {document.bit_depth}-bit")
        self.setWindowTitle(f"{document.title}[*] — {APP_TITLE}")
        self.setWindowModified(document.dirty)
        self.tools_panel.set_document_state(True, document.busy, document.mask_is_empty)

    def _update_zoom_label(self) -> None:
        canvas = self.current_canvas
        if canvas is None:
            self.zoom_label.setText("")
            return
        percent = canvas.zoom * 100
        self.zoom_label.setText(f"{percent:.1f} %" if percent < 10 else f"{percent:.0f} %")

    def _update_tab_title(self, document: Document) -> None:
        if document not in self.documents:
            return
        index = self.documents.index(document)
        self.tabs.setTabText(index, document.title + (" *" if document.dirty else ""))
        self.tabs.setTabToolTip(index, str(document.path) if document.path else document.title)
        if document is self.current_document:
            self.setWindowModified(document.dirty)

    # -- drag and drop ---------------------------------------------------------------------------------------
    @staticmethod
    def _dropped_images(event: QDragEnterEvent | QDropEvent) -> list[Path]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
        return [p for p in paths if p.suffix.lower() in READ_SUFFIXES]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_images(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self._dropped_images(event)
        if paths:
            event.acceptProposedAction()
            self.open_files(paths)
