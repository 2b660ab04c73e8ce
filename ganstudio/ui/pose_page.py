"""The Pose tool's page in the tools dock: detect the skeleton, reset, lock joints, load and save poses.

The poses themselves live on the document (so each image keeps its own, with undo); the joints are dragged on the
canvas. This page edits the same document state through undoable steps and builds the parameters of Apply.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGridLayout, QMessageBox,
                               QPushButton, QSizePolicy, QVBoxLayout, QWidget)

from ganstudio.models import get_registry
from ganstudio.pose import JOINT_INDEX, Pose
from ganstudio.pose.skeleton import unfound_message, unfound_moves
from ganstudio.tools import ToolSpec
from ganstudio.tools.pose import DEFAULT_MODEL, PoseParams, best_refiner
from ganstudio.ui.document import Document
from ganstudio.ui.pose_overlay import joint_label
from ganstudio.ui.wrapped_label import WrappedLabel

AUTO_FILL = "auto"
_POSE_FILTER = "Pose files (*.json);;All files (*)"


def _combo() -> QComboBox:
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(12)
    return combo


class PosePage(QWidget):
    """Emits ``detect_requested(model)``; the main window runs the detection in the worker."""

    changed = Signal()
    detect_requested = Signal(str)
    run_text = "Apply"

    def __init__(self, spec: ToolSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self._document: Document | None = None
        self._model = _combo()
        self._model.setToolTip("The network that finds the person's joints and outline")
        self._fill = _combo()
        self._fill.setToolTip("What fills in the background the person uncovers when they move")
        self._use_mask = QCheckBox("Use painted mask as the person")
        self._use_mask.setToolTip("Paint over the whole person (B) when the detected outline misses a part")
        self._refine = QCheckBox("Refine seams")
        self._refine.setChecked(True)
        self._refine_wanted = True

        self.detect_button = QPushButton("Detect")
        self.detect_button.setToolTip("Find the person's skeleton in this image")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Put every joint back where the person is now")
        self.lock_button = QPushButton("Lock joint")
        self.load_button = QPushButton("Load pose…")
        self.save_button = QPushButton("Save pose…")
        self.save_button.setToolTip("Save the edited pose as JSON, to apply it to other photos or the CLI")
        # grows with its text after Detect, instead of squashing the buttons above it
        self._status = WrappedLabel()
        self._status.setTextFormat(Qt.TextFormat.PlainText)
        # Help rather than state: quieter than the hint above Apply that says what is missing.
        self._status.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Model", self._model)
        form.addRow("Fill", self._fill)
        buttons = QGridLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for button in (self.detect_button, self.reset_button, self.lock_button, self.load_button, self.save_button):
            # never squashed when the text under them grows after Detect: the dock makes room instead
            button.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        buttons.addWidget(self.detect_button, 0, 0)
        buttons.addWidget(self.reset_button, 0, 1)
        buttons.addWidget(self.lock_button, 1, 0, 1, 2)
        buttons.addWidget(self.load_button, 2, 0)
        buttons.addWidget(self.save_button, 2, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self._use_mask)
        layout.addWidget(self._refine)
        layout.addWidget(self._status)

        self.refresh_models(DEFAULT_MODEL)
        self.detect_button.clicked.connect(self._detect)
        self.reset_button.clicked.connect(self.reset)
        self.lock_button.clicked.connect(self.toggle_lock)
        self.load_button.clicked.connect(self.load_pose)
        self.save_button.clicked.connect(self.save_pose)
        for signal in (self._model.currentIndexChanged, self._fill.currentIndexChanged, self._use_mask.toggled,
                       self._refine.toggled):
            signal.connect(self._sync)

    # -- the interface ToolsPanel expects of a page ----------------------------------------------------------
    @property
    def model_combo(self) -> QComboBox:
        return self._model

    def refresh_models(self, keep: str | None = None) -> None:
        registry = get_registry()
        keep = keep if keep is not None else self._model.currentData()
        keep_fill = self._fill.currentData() or AUTO_FILL
        self._model.clear()
        self._fill.clear()
        self._fill.addItem("Best installed", AUTO_FILL)
        for combo, models in ((self._model, registry.for_task(self.spec.task)),
                              (self._fill, registry.for_task("inpaint"))):
            titles = [model.title for model in models]
            for model in models:
                # the title alone where it is unique, as the other tool pages: the panel is narrow (a long
                # "title (name)" was cut off), and the name is in the tooltip
                combo.addItem(model.title if titles.count(model.title) == 1 else model.label, model.name)
                combo.setItemData(combo.count() - 1, f"{model.label} · {model.source}", Qt.ItemDataRole.ToolTipRole)
        self._model.setCurrentIndex(max(self._model.findData(keep), 0))
        self._fill.setCurrentIndex(max(self._fill.findData(keep_fill), 0))
        refiner = best_refiner()
        # Unchecked and greyed out rather than hidden when there is no refiner: the tooltip says how to get one,
        # and the user's choice comes back with it.
        if self._refine.isEnabled():  # remember what the user chose while it could be chosen
            self._refine_wanted = self._refine.isChecked()
        self._refine.setEnabled(refiner is not None)
        self._refine.setChecked(refiner is not None and self._refine_wanted)
        self._refine.setToolTip(
            f"Clean up seams and stretched areas around the moved limbs with {refiner.label}" if refiner else
            "No pose refiner is installed: train one (ganstudio train pose-refiner) and add it to the model folder")
        self._sync()

    def params(self) -> PoseParams:
        document = self._document
        model = self._model.currentData() or DEFAULT_MODEL
        return PoseParams(model=model, target=document.pose if document else None,
                          source=document.pose_source if document else None,
                          fill_model=self._fill.currentData() or AUTO_FILL, use_mask=self._use_mask.isChecked(),
                          refine=self._refine.isChecked(), person=document.person_for(model) if document else None)

    def editor(self, name: str) -> QWidget:
        return {"model": self._model, "fill_model": self._fill, "use_mask": self._use_mask,
                "refine": self._refine}[name]

    def needs_mask(self) -> bool:
        return self._use_mask.isChecked()

    def has_model(self) -> bool:
        # With the painted mask as the person and a pose at hand, Apply never runs the network.
        return self._model.count() > 0 or self._use_mask.isChecked()

    def run_hint(self) -> str:
        """Why Apply cannot run yet, or ``""``."""
        document = self._document
        if document is None:
            return ""
        if document.pose is None:
            return "Detect the person's pose first, or load a pose file."
        if not document.pose_edited:
            return "Move a joint to a new place to apply the pose."
        unfound = unfound_moves(document.pose_source, document.pose)
        return unfound_message(unfound) + "." if unfound else ""

    # -- document --------------------------------------------------------------------------------------------
    def set_document(self, document: Document | None) -> None:
        if document is self._document:
            return
        if self._document is not None:
            for signal in (self._document.pose_changed, self._document.joint_selected,
                           self._document.busy_changed):
                signal.disconnect(self._sync)
        self._document = document
        if document is not None:
            for signal in (document.pose_changed, document.joint_selected, document.busy_changed):
                signal.connect(self._sync)
        self._sync()

    def _sync(self, *_: object) -> None:
        document = self._document
        pose = document.pose if document else None
        joint = document.selected_joint if document else None
        self.detect_button.setEnabled(document is not None and not document.busy and self._model.count() > 0)
        self.detect_button.setToolTip("Find the person's skeleton in this image" if self._model.count()
                                      else "No pose model is installed: add one to the model folder (Preferences)")
        self.reset_button.setEnabled(bool(document and document.pose_edited))
        self.load_button.setEnabled(document is not None)
        self.save_button.setEnabled(pose is not None)
        self.lock_button.setEnabled(pose is not None and joint is not None)
        if pose is not None and joint is not None:
            locked = bool(pose.locked[JOINT_INDEX[joint]])
            self.lock_button.setText(f"{'Unlock' if locked else 'Lock'} {joint_label(joint)}")
            self.lock_button.setToolTip("A locked joint stays where it is while you move the others")
        else:
            self.lock_button.setText("Lock joint")
            self.lock_button.setToolTip("Click a joint on the image first")
        if pose is None:
            status = ""
        else:
            status = ("With the Hand tool (H), drag a joint to move it with the limb below it; Shift-drag moves "
                      "it alone.")
        self._status.setText(status)
        self._status.setVisible(bool(status))
        self.changed.emit()

    # -- actions ---------------------------------------------------------------------------------------------
    def _detect(self) -> None:
        self.detect_requested.emit(self._model.currentData() or DEFAULT_MODEL)

    def reset(self) -> None:
        document = self._document
        if document is None or not document.pose_edited:
            return
        target = document.pose_source.copy()
        target.locked = document.pose.locked.copy()  # pins are the user's choice, not part of the position
        document.set_pose(document.pose_source, target, "Reset pose")

    def toggle_lock(self) -> None:
        document = self._document
        if document is None or document.pose is None or document.selected_joint is None:
            return
        joint = document.selected_joint
        target = document.pose.copy()
        index = JOINT_INDEX[joint]
        target.locked[index] = not target.locked[index]
        verb = "Lock" if target.locked[index] else "Unlock"
        document.set_pose(document.pose_source, target, f"{verb} {joint_label(joint)}")

    def _start_path(self, suffix: str) -> str:
        document = self._document
        if document is None or document.path is None:
            return "pose" + suffix
        return str(document.path.with_name(document.path.stem + suffix))

    def load_pose(self) -> None:
        document = self._document
        if document is None:
            return
        name, _ = QFileDialog.getOpenFileName(self, "Load Pose", self._start_path(".pose.json"), _POSE_FILTER)
        if not name:
            return
        try:
            pose = Pose.load(Path(name)).fitted_to(document.width, document.height)
        except ValueError as error:
            self._show_error(f"Could not load the pose: {error}")
            return
        # Without a detection the file is the person's pose now, to edit from; with one it is where they go.
        source = document.pose_source if document.pose_source is not None else pose.copy()
        document.set_pose(source, pose, "Load pose")

    def save_pose(self) -> None:
        document = self._document
        if document is None or document.pose is None:
            return
        name, _ = QFileDialog.getSaveFileName(self, "Save Pose", self._start_path(".pose.json"), _POSE_FILTER)
        if not name:
            return
        path = Path(name) if Path(name).suffix else Path(name + ".json")
        pose = document.pose.fitted_to(document.width, document.height)
        try:
            pose.save(path)
        except OSError as error:
            self._show_error(f"Could not save the pose: {error.strerror or error}")

    def _show_error(self, message: str) -> None:
        # Not modal, like the main window's errors: the user keeps the editor in hand.
        box = QMessageBox(QMessageBox.Icon.Warning, "Pose", message, QMessageBox.StandardButton.Ok, self.window())
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
