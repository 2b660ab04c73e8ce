"""The tools dock: pick a tool, its model and parameters, and run it on the current image."""
from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Qt, Signal, SignalInstance
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLineEdit, QPushButton,
                               QSizePolicy, QSpinBox, QStackedWidget, QVBoxLayout, QWidget)

from ganstudio.models import get_registry
from ganstudio.tools import TOOLS, ToolSpec
from ganstudio.tools.base import rank_models
from ganstudio.tools.superres import SCALES
from ganstudio.tools.translate import MAX_WORKING_SIZE
from ganstudio.ui.document import Document
from ganstudio.ui.pose_page import PosePage
from ganstudio.ui.wrapped_label import WrappedLabel

#: The largest side, in image pixels, of the area a preview runs on: a few seconds on a CPU at ×4.
PREVIEW_SIDE = 256

#: Parameters offered as a fixed list rather than a free number.
_CHOICES: dict[str, tuple[Any, ...]] = {"scale": SCALES}
#: Ranges and steps for numeric parameters, by field name (the spin box default of 0..99 fits none of them).
_RANGES: dict[str, tuple[float, float]] = {"radius": (1, 64), "feather": (0, 64), "strength": (0.0, 1.0),
                                           "working_size": (0, MAX_WORKING_SIZE)}
_STEPS: dict[str, float] = {"strength": 0.05, "working_size": 16}
#: What a spin box shows at its lowest value, where that value means "decide for me".
_SPECIAL_TEXT = {"working_size": "Model's own"}
_SUFFIXES = {"radius": " px", "feather": " px", "working_size": " px"}


class ToolPage(QWidget):
    """The form of one tool, built from its parameters dataclass; ``model`` becomes the registry's model list."""

    changed = Signal()
    run_text = "Run"

    def __init__(self, spec: ToolSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.spec = spec
        self._editors: dict[str, QWidget] = {}
        self._model: QComboBox | None = None
        #: What the chosen model is for, in one line under the model list.
        self.model_summary = WrappedLabel()
        self.model_summary.setObjectName("modelSummary")
        self._refreshing = False
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        defaults = spec.params_type()
        for field in dataclasses.fields(spec.params_type):
            value = getattr(defaults, field.name)
            editor = self._model_combo(value) if field.name == "model" else _editor_for(field.name, value)
            self._editors[field.name] = editor
            _value_signal(editor).connect(self.changed)
            form.addRow(field.name.replace("_", " ").capitalize(), editor)
            if field.name == "model":
                form.addRow("", self.model_summary)
        if self._model is not None:
            self._model.currentIndexChanged.connect(self._show_summary)
            self._show_summary()
        if self._model is not None and "scale" in self._editors:
            self._model.currentIndexChanged.connect(self._scale_follows_model)

    def _show_summary(self) -> None:
        name = self._model.currentData() if self._model is not None else None
        try:
            summary = get_registry().get(name, self.spec.task).summary if name else ""
        except KeyError:
            summary = ""
        self.model_summary.setText(summary)
        self.model_summary.setVisible(bool(summary))

    def _scale_follows_model(self) -> None:
        """Picking a fixed-scale model picks its scale (a ×2 model at ×4 would be a ×2 run enlarged by Lanczos);
        the user can still choose another scale afterwards."""
        name = self._model.currentData()
        if not name or self._refreshing:
            return
        try:
            scale = get_registry().get(name, self.spec.task).scale
        except KeyError:
            return
        combo = self._editors["scale"]
        index = combo.findData(scale) if scale else -1
        if index >= 0:
            combo.setCurrentIndex(index)

    def _model_combo(self, default: str) -> QComboBox:
        self._model = QComboBox()
        self._model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self._model.setMinimumContentsLength(12)
        self.refresh_models(default)
        return self._model

    def refresh_models(self, keep: str | None = None) -> None:
        """Re-read the registry (the model folder may have changed), keeping the selection when it still exists."""
        if self._model is None:
            return
        keep = keep if keep is not None else self._model.currentData()
        self._refreshing = True  # re-reading the list is not the user picking a model
        self._model.clear()
        # Best first and the classic baselines last, marked: a first Run should use a model, not plain resampling.
        models = rank_models(get_registry().for_task(self.spec.task), self.spec.preferred_models)
        titles = [model.title for model in models]
        for model in models:
            # the title alone where it is unique: the panel is narrow, and the name is in the tooltip
            text = model.title if titles.count(model.title) == 1 else model.label
            self._model.addItem(f"{text} (baseline)" if model.is_classic else text, model.name)
            self._model.setItemData(self._model.count() - 1, f"{model.label} · {model.source}",
                                    Qt.ItemDataRole.ToolTipRole)
        index = self._model.findData(keep)
        self._model.setCurrentIndex(max(index, 0))
        self._refreshing = False

    def params(self) -> Any:
        return self.spec.params_type(**{name: _value_of(editor) for name, editor in self._editors.items()})

    def editor(self, name: str) -> QWidget:
        return self._editors[name]

    def needs_mask(self) -> bool:
        return self.spec.uses_mask(self.params())

    def has_model(self) -> bool:
        return self._model is None or self._model.count() > 0

    @property
    def model_combo(self) -> QComboBox | None:
        return self._model

    def run_hint(self) -> str:
        """Why the tool cannot run yet beyond a missing model or mask (none for a plain form)."""
        return ""


def _editor_for(name: str, default: Any) -> QWidget:
    if name in _CHOICES:
        combo = QComboBox()
        for choice in _CHOICES[name]:
            combo.addItem(f"×{choice}" if name == "scale" else str(choice), choice)
        combo.setCurrentIndex(max(combo.findData(default), 0))
        return combo
    if isinstance(default, bool):
        box = QCheckBox()
        box.setChecked(default)
        return box
    if isinstance(default, (int, float)):
        spin = QSpinBox() if isinstance(default, int) else QDoubleSpinBox()
        low, high = _RANGES.get(name, (0, 10_000))
        spin.setRange(type(default)(low), type(default)(high))
        spin.setSingleStep(type(default)(_STEPS.get(name, 1)))
        spin.setSuffix(_SUFFIXES.get(name, ""))
        if name in _SPECIAL_TEXT:
            spin.setSpecialValueText(_SPECIAL_TEXT[name])
        spin.setValue(default)
        return spin
    return QLineEdit(str(default))


def _value_signal(editor: QWidget) -> SignalInstance:
    if isinstance(editor, QComboBox):
        return editor.currentIndexChanged
    if isinstance(editor, QCheckBox):
        return editor.toggled
    if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        return editor.valueChanged
    return editor.textChanged


def _value_of(editor: QWidget) -> Any:
    if isinstance(editor, QComboBox):
        return editor.currentData()
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        return editor.value()
    return editor.text()


class ToolsPanel(QWidget):
    """Emits ``run_requested(tool_name, params)``; the main window turns it into a job on the current image."""

    run_requested = Signal(str, object)
    #: The same, for a preview of the part of the image in view (tools whose spec is ``previewable``).
    preview_requested = Signal(str, object)
    #: The Pose page's Detect, with the pose model's name.
    detect_requested = Signal(str)
    #: The name of the tool now picked, so the canvas can show what belongs to it (the Pose tool's skeleton).
    tool_changed = Signal(str)
    #: (tool, model) when the user picks a model from a tool's list (not when the list is re-read), to remember it.
    model_chosen = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tool = QComboBox()
        self._pages = QStackedWidget()
        for spec in TOOLS.values():
            self._tool.addItem(spec.title, spec.name)
            # A pose cannot be typed into a form: the Pose tool has its own page, its skeleton is on the canvas.
            page = PosePage(spec) if spec.name == "pose" else ToolPage(spec)
            page.changed.connect(self._update)
            if isinstance(page, PosePage):
                page.detect_requested.connect(self.detect_requested)
            if page.model_combo is not None:
                combo = page.model_combo
                # activated: only the user's own picks, never a programmatic change or a refresh
                combo.activated.connect(lambda _, c=combo, n=spec.name: self.model_chosen.emit(n, c.currentData()))
            self._pages.addWidget(page)
        # a wrapped label that asks for its lines' height, or the page above it is squashed when it wraps
        self._hint = WrappedLabel()
        self._run = QPushButton("Run")
        self._run.setDefault(True)
        self._run.setMinimumHeight(30)
        self._preview = QPushButton("Preview Visible Area")
        self._preview.setToolTip("Run the tool on the part of the image in view (up to "
                                 f"{PREVIEW_SIDE}×{PREVIEW_SIDE} pixels) and show it beside the original at 100 %")
        layout = QVBoxLayout(self)
        layout.addWidget(self._tool)
        layout.addSpacing(4)
        layout.addWidget(self._pages)
        layout.addWidget(self._hint)
        layout.addWidget(self._run)
        layout.addWidget(self._preview)
        self._tool.currentIndexChanged.connect(self._show_page)
        self._run.clicked.connect(self._on_run)
        self._preview.clicked.connect(self._on_preview)
        self._has_document = self._busy = False
        self._mask_empty = True
        self._show_page(0)

    @property
    def current_page(self) -> ToolPage | PosePage:
        return self._pages.currentWidget()

    @property
    def current_tool(self) -> str:
        return self.current_page.spec.name

    @property
    def pose_page(self) -> PosePage | None:
        pages = (self._pages.widget(index) for index in range(self._pages.count()))
        return next((page for page in pages if isinstance(page, PosePage)), None)

    @property
    def run_button(self) -> QPushButton:
        return self._run

    @property
    def preview_button(self) -> QPushButton:
        return self._preview

    def select_tool(self, name: str) -> None:
        self._tool.setCurrentIndex(self._tool.findData(name))

    def page(self, tool: str) -> ToolPage | PosePage:
        pages = (self._pages.widget(index) for index in range(self._pages.count()))
        return next(page for page in pages if page.spec.name == tool)

    def select_model(self, tool: str, model: str) -> bool:
        """Pick ``model`` in ``tool``'s list; False (and nothing changes) when it is not installed."""
        combo = self.page(tool).model_combo
        index = combo.findData(model) if combo is not None else -1
        if index < 0:
            return False
        combo.setCurrentIndex(index)
        return True

    def refresh_models(self) -> None:
        for index in range(self._pages.count()):
            self._pages.widget(index).refresh_models()

    def set_document(self, document: Document | None) -> None:
        """The image the tools work on now (pages that keep per-image state follow it)."""
        page = self.pose_page
        if page is not None:
            page.set_document(document)

    def set_document_state(self, has_document: bool, busy: bool, mask_empty: bool) -> None:
        self._has_document, self._busy, self._mask_empty = has_document, busy, mask_empty
        self._update()

    def _show_page(self, index: int) -> None:
        # A stacked widget is as tall as its tallest page; hidden pages with an Ignored policy do not count,
        # so a short form leaves no gap above the Run button.
        for other in range(self._pages.count()):
            vertical = QSizePolicy.Policy.Preferred if other == index else QSizePolicy.Policy.Ignored
            self._pages.widget(other).setSizePolicy(QSizePolicy.Policy.Preferred, vertical)
        self._pages.setCurrentIndex(index)
        self._run.setText(self.current_page.run_text)
        self._update()
        self.tool_changed.emit(self.current_tool)

    def _update(self) -> None:
        page = self.current_page
        if not self._has_document:
            hint = "Open an image to run a tool on it."
        elif self._busy:
            hint = "Running on this image…"
        elif not page.has_model():
            hint = "No model for this tool is installed yet: add one to the model folder (Preferences)."
        elif page.run_hint():
            hint = page.run_hint()
        elif page.needs_mask() and self._mask_empty:
            hint = "Paint a mask over the area to change first (mask brush: B), or load one from the Mask menu."
        else:
            hint = ""
        self._hint.setText(hint)
        self._hint.setVisible(bool(hint))
        self._run.setEnabled(not hint)
        self._preview.setVisible(page.spec.previewable)
        self._preview.setEnabled(not hint)

    def _on_run(self) -> None:
        page = self.current_page
        self.run_requested.emit(page.spec.name, page.params())

    def _on_preview(self) -> None:
        page = self.current_page
        self.preview_requested.emit(page.spec.name, page.params())
