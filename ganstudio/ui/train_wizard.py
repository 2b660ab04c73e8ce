"""The training wizard: from a folder of the user's own pictures to a model in the tool, for four kinds of model
(:mod:`ganstudio.train.recipes`): fine-tuned super-resolution, inpainting, translation between two folders
(CycleGAN) and a generator of new pictures (DCGAN).

Training never runs in this process: the Train page starts ``python -m ganstudio train <task> ...`` as a QProcess
and reads its JSON-lines events (:mod:`ganstudio.train.events`), so a crash or out-of-memory in training cannot take
the editor down. Pause stops the child with SIGTERM (it checkpoints first); Resume runs the same command with
``--resume``. The run's command is saved in its folder and the folder is remembered in the config folder, so a
stopped run can be continued after the app was closed. The Finish page runs the kind's export command into the
user's model folder and rescans the registry, so the model is selectable at once.

The Data page chooses the crop size (only those the folders' photos allow) and the augmentation with the photos;
the Settings page's time estimate times a few steps of the run's own command in a child process as well
(:mod:`ganstudio.train.probe`).
"""
from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QProcess, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QPalette, QPixmap
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QProgressBar, QPushButton,
                               QRadioButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget, QWizard, QWizardPage)

from ganstudio.config import default_model_dir
from ganstudio.models import configure_registry, get_registry
from ganstudio.train.folder_check import FolderReport, PairReport, check_folder, match_pairs
from ganstudio.train.recipes import (NAME_PATTERN, PRESETS, RECIPES, Machine, Output, Recipe, RunSpec, Settings,
                                     runs_dir, slug)
from ganstudio.ui.loss_plot import LossPlot

__all__ = ["Machine", "RunSpec", "Settings", "TrainingWizard"]

_ERROR_STYLE = "color: #e26a6a;"
_OK_STYLE = "color: #6cc46c;"
_WARNING_STYLE = "color: #e0a040;"
_STDERR_LINES = 40
#: Step events the speed and time left are averaged over: enough to span the validations, previews and checkpoints
#: that make single steps slower.
_RATE_WINDOW = 50
#: How many new pictures the Finish page offers to open after training a generator.
GENERATED_ON_FINISH = 4
#: The Advanced page's precision choices (``--precision`` of the loops), in menu order.
PRECISION_LABELS = {"fp32": "Full (fp32)", "auto": "Automatic (bf16 where the GPU has it, else fp16)",
                    "bf16": "bfloat16 (bf16)", "fp16": "Half (fp16)"}
PRECISION_TIP = ("Lower precision (bf16, fp16) trains faster and in less memory on a CUDA GPU. On the CPU training "
                 "always runs in full precision (fp32): bf16 is very slow there (about 50× slower than fp32 on the "
                 "2-core CPU it was measured on).")


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _count(value: Any) -> str:
    """A ``start`` event's image count: one number, or one per folder."""
    return " and ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _start_text(event: dict[str, Any]) -> str:
    paired = "train_pairs" in event
    held = event.get("val_pairs") if paired else event.get("val_images", event.get("sample_images"))
    held_text = f" ({_count(held)} held out to show progress)" if held else ""
    device = str(event.get("device"))
    where = "the CPU" if device == "cpu" else f"the GPU ({device})" if device.startswith("cuda") else device
    precision = f" in {event['precision']}" if event.get("precision") else ""
    what = f"{event['train_pairs']} before/after pairs" if paired else f"{_count(event.get('train_images'))} pictures"
    return f"Training on {what}{held_text} on {where}{precision}."


def _speed_text(rate: float) -> str:
    return f"{rate:.2f} steps/s" if rate >= 1 else f"{1 / rate:.1f} s per step" if rate > 0 else ""


def _validation_text(event: dict[str, Any]) -> str:
    """A ``validation`` event in a line: super-resolution reports PSNR; inpainting its fill scores."""
    if "best_psnr" in event:
        return f"step {event['step']}: validation PSNR {event['psnr']:.2f} dB (best {event['best_psnr']:.2f} dB)"
    scores = ", ".join(f"{name} {event[name]:.4g}" for name in ("psnr", "hole_l1", "ab_l1", "l1", "lpips")
                       if name in event)
    return f"step {event['step']}: validation {scores} (best {event.get('best_metric')} " \
           f"{event.get('best_score', float('nan')):.4g} at step {event.get('best_step')})"


def _button(text: str, slot: Callable[[], object]) -> QPushButton:
    button = QPushButton(text)
    button.setAutoDefault(False)  # Enter in a field must not start or stop anything
    button.clicked.connect(slot)
    return button


def _python_process(parent: QObject) -> QProcess:
    process = QProcess(parent)
    process.setProgram(sys.executable)
    return process


def _note() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    return label


def _hint() -> QLabel:
    """A wrapped explanation under a choice, quieter than the choices themselves."""
    label = _note()
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def _choice(combo: QComboBox, *notes: QLabel) -> QVBoxLayout:
    """A menu at the width of its longest choice (not stretched across the page) with its notes close under it."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(combo)
    row.addStretch(1)
    column = QVBoxLayout()
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(3)
    column.addLayout(row)
    for note in notes:
        column.addWidget(note)
    return column


# -- page 1 ------------------------------------------------------------------------------------------------------
class KindPage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("What to train")
        self.setSubTitle("Teach a model your kind of pictures. It then appears in the editor, ready to use.")
        layout = QVBoxLayout(self)
        self.kind_group = QButtonGroup(self)
        self.kind_radios: dict[str, QRadioButton] = {}
        for recipe in RECIPES.values():
            radio = QRadioButton(recipe.title)
            explain = _note()
            explain.setText(recipe.explain)
            explain.setIndent(22)
            self.kind_group.addButton(radio)
            self.kind_radios[recipe.kind] = radio
            layout.addWidget(radio)
            layout.addWidget(explain)
            layout.addSpacing(6)
        self.kind_radios["superres"].setChecked(True)
        self.resume_radio = QRadioButton()
        self.kind_group.addButton(self.resume_radio)
        self.resume_label = _note()
        self.resume_label.setIndent(22)
        layout.addSpacing(6)
        layout.addWidget(self.resume_radio)
        layout.addWidget(self.resume_label)
        layout.addStretch(1)
        self.remembered: RunSpec | None = None

    def select(self, kind: str) -> None:
        self.kind_radios[kind].setChecked(True)

    @property
    def kind(self) -> str:
        """The kind chosen for a new run (whatever the resume option says)."""
        return next((kind for kind, radio in self.kind_radios.items() if radio.isChecked()), "superres")

    def initializePage(self) -> None:
        self.remembered = RunSpec.remembered()
        visible = self.remembered is not None
        self.resume_radio.setVisible(visible)
        self.resume_label.setVisible(visible)
        if self.remembered is not None:
            recipe = self.remembered.recipe
            folders = " and ".join(f for f in (self.remembered.data, self.remembered.data_b) if f)
            self.resume_radio.setText(f"Continue the stopped run “{Path(self.remembered.run_dir).name}”")
            self.resume_label.setText(f"{recipe.title}, from {folders}; it goes on from its last checkpoint.")
            self.resume_radio.setChecked(True)
        elif self.resume_radio.isChecked():
            self.kind_radios["superres"].setChecked(True)

    def nextId(self) -> int:
        return TrainingWizard.TRAIN if self.resume_radio.isChecked() else TrainingWizard.DATA


# -- page 2 ------------------------------------------------------------------------------------------------------
class _CheckSignals(QObject):
    progress = Signal(int, int, int)
    done = Signal(int, object)


class _FolderCheck(QRunnable):
    """``check_folder`` on the thread pool; results carry the request number so a stale check is ignored."""

    def __init__(self, folder: Path, number: int, signals: _CheckSignals,
                 is_current: Callable[[int], bool]) -> None:
        super().__init__()
        self.folder, self.number, self.signals, self.is_current = folder, number, signals, is_current

    def run(self) -> None:
        try:
            result: FolderReport | str = check_folder(
                self.folder, lambda done, total: self.signals.progress.emit(self.number, done, total),
                lambda: not self.is_current(self.number))
        except OSError as error:
            result = str(error)
        self.signals.done.emit(self.number, result)


class FolderField(QWidget):
    """One folder to train on: the path, and what a check of it found (count, sizes, broken files, duplicates)."""

    #: A new check began: until it ends there is no report.
    check_started = Signal()
    checked = Signal()

    def __init__(self, placeholder: str) -> None:
        super().__init__()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText(placeholder)
        # editingFinished also fires when the page loses focus: only a changed folder is checked again.
        self.folder_edit.editingFinished.connect(self._check_if_changed)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(_button("Browse…", self._browse))
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.summary_label = _note()
        self.verdict_label = _note()
        font = self.verdict_label.font()
        font.setBold(True)
        self.verdict_label.setFont(font)
        self.problems = QPlainTextEdit()
        self.problems.setReadOnly(True)
        self.problems.setPlaceholderText("Broken, too small and duplicate files are listed here.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.verdict_label)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.problems, 1)
        layout.addStretch(0)
        self.report: FolderReport | None = None
        self.min_side = 1
        #: Usable photos this folder needs on its own (the kind's; for pairs, the pairs decide, not the folders).
        self.min_images = 1
        self._number = 0
        self._checked_text = ""
        self._signals = _CheckSignals(self)
        self._signals.progress.connect(self._on_progress)
        self._signals.done.connect(self._on_done)

    @property
    def folder(self) -> Path:
        return Path(self.folder_edit.text().strip()).expanduser()

    @property
    def ok(self) -> bool:
        return self.report is not None and self.report.verdict(self.min_side, self.min_images).ok

    def set_min_side(self, min_side: int) -> None:
        """Photos with a shorter side are left out; the verdict and the list follow at once."""
        self.min_side = min_side
        if self.report is not None:
            self._show(self.report)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.folder_edit.placeholderText(),
                                                  self.folder_edit.text() or str(Path.home()))
        if folder:
            self.folder_edit.setText(folder)
            self.start_check()

    def _check_if_changed(self) -> None:
        if self.folder_edit.text().strip() != self._checked_text:
            self.start_check()

    def start_check(self) -> None:
        self._checked_text = self.folder_edit.text().strip()
        self._number += 1
        self.report = None
        self.problems.setVisible(True)
        self.check_started.emit()
        if not self.folder_edit.text().strip():
            self.verdict_label.clear()
            self.checked.emit()
            return
        self.verdict_label.setText("Checking the photos…")
        self.verdict_label.setStyleSheet("")
        self.summary_label.clear()
        self.problems.clear()
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        QThreadPool.globalInstance().start(
            _FolderCheck(self.folder, self._number, self._signals, lambda number: number == self._number))

    def _on_progress(self, number: int, done: int, total: int) -> None:
        if number == self._number:
            self.progress.setRange(0, total)
            self.progress.setValue(done)

    def _on_done(self, number: int, result: FolderReport | str) -> None:
        if number != self._number:
            return
        self.progress.setVisible(False)
        if isinstance(result, str):
            self.verdict_label.setText(result)
            self.verdict_label.setStyleSheet(_ERROR_STYLE)
        else:
            self.report = result
            self._show(result)
        self.checked.emit()

    def _show(self, report: FolderReport) -> None:
        verdict = report.verdict(self.min_side, self.min_images)
        self.verdict_label.setText(verdict.text)
        self.verdict_label.setStyleSheet(_OK_STYLE if verdict.ok else _ERROR_STYLE)
        self.summary_label.setText(f"{len(report.images) + len(report.broken)} image files: {report.size_summary()}.")
        lines: list[str] = []
        if report.broken:
            lines.append(f"Unreadable ({len(report.broken)}), left out:")
            lines += [f"  {item.path.relative_to(report.folder)}: {item.reason}" for item in report.broken]
        small = report.too_small(self.min_side)
        if small:
            lines.append(f"Smaller than {self.min_side} px ({len(small)}), left out:")
            lines += [f"  {path.relative_to(report.folder)}" for path in small]
        if report.duplicates:
            lines.append(f"Exact duplicates ({len(report.duplicates)} groups), only the first is used:")
            lines += ["  " + " = ".join(str(p.relative_to(report.folder)) for p in group)
                      for group in report.duplicates]
        self.problems.setPlainText("\n".join(lines) or "No problems found.")
        # a clean folder says so in the summary rather than in a large empty list
        self.problems.setVisible(bool(lines))
        if not lines:
            self.summary_label.setText(self.summary_label.text() + " No broken, too small or duplicate files.")


class DataPage(QWizardPage):
    """The folder (or, to translate, the two folders and a short name for each) and their checks; then the crop
    size and the augmentation of the training pictures, whose choices follow the kind and the folders' sizes."""

    checked = Signal()

    def __init__(self, machine: Machine) -> None:
        super().__init__()
        self.machine = machine
        self.setTitle("Your photos")
        self._pairs: tuple[FolderReport, FolderReport, PairReport] | None = None
        self.field_a = FolderField("Folder of photos")
        self.field_b = FolderField("Second folder of photos")
        self.name_a_edit = QLineEdit()
        self.name_b_edit = QLineEdit()
        self._names_typed = {self.name_a_edit: False, self.name_b_edit: False}
        for field, edit in ((self.field_a, self.name_a_edit), (self.field_b, self.name_b_edit)):
            field.check_started.connect(self.completeChanged)
            field.check_started.connect(self._fit_fields)
            field.checked.connect(lambda f=field, e=edit: self._on_checked(f, e))
            edit.setPlaceholderText("e.g. cat")
            edit.setToolTip("A short name: lower-case letters, digits, - and _. The models are called "
                            "<first>2<second> and <second>2<first>.")
            edit.textEdited.connect(lambda _, e=edit: self._names_typed.__setitem__(e, True))
            edit.textChanged.connect(self._on_names_changed)
        self.names_problem = _note()
        self.names_problem.setStyleSheet(_ERROR_STYLE)
        # Each folder's heading and short name show only when there are two: one folder needs neither.
        self.heading_a, self.heading_b = QLabel("First kind of picture"), QLabel("Second kind of picture")
        self.name_row_a, self.name_row_b = QWidget(), QWidget()
        self._layout = layout = QVBoxLayout(self)
        for heading, field, name_row, edit in ((self.heading_a, self.field_a, self.name_row_a, self.name_a_edit),
                                               (self.heading_b, self.field_b, self.name_row_b, self.name_b_edit)):
            font = heading.font()
            font.setBold(True)
            heading.setFont(font)
            row = QHBoxLayout(name_row)
            row.setContentsMargins(0, 0, 0, 0)
            row.addWidget(QLabel("Short name"))
            row.addWidget(edit, 1)
            layout.addWidget(heading)
            layout.addWidget(field, 1)
            layout.addWidget(name_row)
        layout.addWidget(self.names_problem)
        # before/after kinds: how the two folders pair up, under both
        self.pairs_heading = QLabel("Pairs")
        font = self.pairs_heading.font()
        font.setBold(True)
        self.pairs_heading.setFont(font)
        self.pairs_verdict = _note()
        self.pairs_verdict.setFont(font)
        self.pairs_problems = QPlainTextEdit()
        self.pairs_problems.setReadOnly(True)
        self.pairs_problems.setPlaceholderText("Files without a partner and pairs of different sizes are listed here.")
        for widget in (self.pairs_heading, self.pairs_verdict, self.pairs_problems):
            layout.addWidget(widget)

        # the training pictures: crop and augmentation, under the folder checks they depend on
        self.crop_combo = QComboBox()
        self.crop_combo.activated.connect(self._on_crop_chosen)
        self.crop_hint = _hint()
        self.crop_warning = _note()
        self.crop_warning.setStyleSheet(_WARNING_STYLE)
        self.augment_combo = QComboBox()
        self.augment_combo.currentIndexChanged.connect(self._on_augment_changed)
        self.augment_hint = _hint()
        self.pictures_box = QGroupBox("Training pictures")
        form = QFormLayout(self.pictures_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.crop_row_label = QLabel("Crop size")
        form.addRow(self.crop_row_label, _choice(self.crop_combo, self.crop_hint, self.crop_warning))
        form.addRow("Augmentation", _choice(self.augment_combo, self.augment_hint))
        layout.addWidget(self.pictures_box)
        # what is left when no list of problems takes it: below everything, not between a folder and its choices
        layout.addStretch(0)
        #: The crop the user (or the kind's default) asks for; :attr:`crop` is it, or the largest smaller choice
        #: that leaves enough photos when the folders' photos are too small for it.
        self._crop_wanted = 0
        self._kind_shown = ""

    # The single-folder kinds' view of the page, which is the first folder's.
    @property
    def folder_edit(self) -> QLineEdit:
        return self.field_a.folder_edit

    @property
    def verdict_label(self) -> QLabel:
        return self.field_a.verdict_label

    @property
    def problems(self) -> QPlainTextEdit:
        return self.field_a.problems

    @property
    def report(self) -> FolderReport | None:
        return self.field_a.report

    def start_check(self) -> None:
        self.field_a.start_check()

    @property
    def recipe(self) -> Recipe:
        return self.wizard().recipe

    @property
    def fields(self) -> list[FolderField]:
        return [self.field_a, self.field_b][: self.recipe.folders]

    @property
    def folders(self) -> list[Path]:
        return [field.folder for field in self.fields]

    @property
    def reports(self) -> list[FolderReport | None]:
        return [field.report for field in self.fields]

    @property
    def names(self) -> list[str]:
        if self.recipe.folders != 2 or not self.recipe.names_needed:
            return []
        return [self.name_a_edit.text().strip(), self.name_b_edit.text().strip()]

    @property
    def pair_report(self) -> PairReport | None:
        """How the two folders pair up (paired kinds, once both are checked)."""
        before, after = self.field_a.report, self.field_b.report
        if not self.recipe.paired or before is None or after is None:
            return None
        # asked for by every repaint of the verdict and by the buttons: match once per pair of checks
        cached = self._pairs
        if cached is None or cached[0] is not before or cached[1] is not after:
            cached = self._pairs = (before, after, match_pairs(before, after))
        return cached[2]

    def initializePage(self) -> None:
        recipe = self.recipe
        two = recipe.folders == 2
        self.setSubTitle(recipe.data_hint.format(min_images=recipe.min_images))
        for widget in (self.heading_a, self.heading_b, self.field_b):
            widget.setVisible(two)
        for widget in (self.name_row_a, self.name_row_b):
            widget.setVisible(two and recipe.names_needed)
        for widget in (self.pairs_heading, self.pairs_verdict, self.pairs_problems):
            widget.setVisible(recipe.paired)
        self.heading_a.setText(recipe.headings[0])
        self.heading_b.setText(recipe.headings[1])
        self.field_a.folder_edit.setPlaceholderText(recipe.placeholders[0] if two else "Folder of photos")
        self.field_b.folder_edit.setPlaceholderText(recipe.placeholders[1])
        for field in (self.field_a, self.field_b):
            field.min_images = 1 if recipe.paired else recipe.min_images
        if recipe.kind != self._kind_shown:  # back and forth keeps the choices; another kind starts from its own
            self._kind_shown = recipe.kind
            self._fill_choices(recipe)
        self._update_crop_choices()
        self._on_names_changed()

    # -- crop and augmentation
    @property
    def crop(self) -> int:
        return int(self.crop_combo.currentData() or self.recipe.crop_for(self.machine))

    @property
    def augment(self) -> str:
        return str(self.augment_combo.currentData() or self.recipe.default_augment)

    def _fill_choices(self, recipe: Recipe) -> None:
        default = recipe.crop_for(self.machine)
        self.crop_row_label.setText(recipe.crop_label)
        self.crop_combo.clear()
        for size in recipe.crop_sizes:
            self.crop_combo.addItem(recipe.crop_text(size) + (" · recommended" if size == default else ""), size)
        self._crop_wanted = default
        self.crop_hint.setText(recipe.crop_hint)
        self.augment_combo.blockSignals(True)
        self.augment_combo.clear()
        for value, (text, explain) in recipe.augments.items():
            self.augment_combo.addItem(text + (" · recommended" if value == recipe.default_augment else ""), value)
            self.augment_combo.setItemData(self.augment_combo.count() - 1, explain, Qt.ItemDataRole.ToolTipRole)
        self.augment_combo.setCurrentIndex(0)
        self.augment_combo.blockSignals(False)
        self._on_augment_changed()

    def set_crop(self, crop: int) -> None:
        """Choose ``crop`` as the user would (it must be one of the kind's choices, and enabled)."""
        index = self.crop_combo.findData(crop)
        if index < 0:
            raise ValueError(f"{crop} px is not a crop choice of {self.recipe.kind}")
        self.crop_combo.setCurrentIndex(index)
        self._on_crop_chosen(index)

    def set_augment(self, value: str) -> None:
        self.augment_combo.setCurrentIndex(self.augment_combo.findData(value))

    def _on_crop_chosen(self, index: int) -> None:
        self._crop_wanted = int(self.crop_combo.itemData(index))
        self._update_crop_choices()

    def _on_augment_changed(self) -> None:
        value = self.augment_combo.currentData()
        self.augment_hint.setText(self.recipe.augments[value][1] if self.wizard() and value else "")

    def usable_at(self, crop: int) -> int | None:
        """Usable photos at ``crop`` (of the smaller folder when there are two); None before every check ended."""
        reports = self.reports
        if any(report is None for report in reports):
            return None
        min_side = self.recipe.min_side(crop)
        pairs = self.pair_report
        if pairs is not None:
            return len(pairs.usable(min_side))
        return min(len(report.usable(min_side)) for report in reports)  # type: ignore[union-attr]

    def _update_crop_choices(self) -> None:
        """Enable the crops that leave enough photos, fall back from one that does not, and say what is left out."""
        if not self.crop_combo.count():  # a check that ended before the page was first shown
            return
        recipe = self.recipe
        model = self.crop_combo.model()
        enabled: list[int] = []
        for index in range(self.crop_combo.count()):
            size = int(self.crop_combo.itemData(index))
            usable = self.usable_at(size)
            ok = usable is None or usable >= recipe.min_images
            model.item(index).setEnabled(ok)
            self.crop_combo.setItemData(index, None if ok else
                                        f"Too large for these photos: {usable} would be usable, at least "
                                        f"{recipe.min_images} are needed", Qt.ItemDataRole.ToolTipRole)
            if ok:
                enabled.append(size)
        # the wanted crop if the photos allow it, else the largest smaller one that does (smaller crops never
        # leave fewer photos); none at all: the wanted one, and the folder's verdict says why it is not enough
        smaller = [size for size in enabled if size <= self._crop_wanted]
        crop = self._crop_wanted if self._crop_wanted in enabled else max(smaller) if smaller else self._crop_wanted
        self.crop_combo.setCurrentIndex(self.crop_combo.findData(crop))
        min_side = recipe.min_side(crop)
        for field in (self.field_a, self.field_b):
            field.set_min_side(min_side)
        self._show_pairs(min_side)
        warnings = []
        what = recipe.crop_label.lower()
        if crop != self._crop_wanted:
            warnings.append(f"The photos are too small for a {what} of {self._crop_wanted} px: {crop} px is the "
                            "largest that leaves enough of them.")
        pairs = self.pair_report
        small = len(pairs.too_small(min_side)) if pairs is not None else \
            sum(len(report.too_small(min_side)) for report in self.reports if report is not None)
        if small:
            photos = "1 photo is" if small == 1 else f"{small} photos are"
            warnings.append(f"{photos} smaller than {min_side} px and will be left out (listed above); a smaller "
                            f"{what} keeps them.")
        self.crop_warning.setText(" ".join(warnings))
        self.crop_warning.setVisible(bool(warnings))
        self.completeChanged.emit()

    def _show_pairs(self, min_side: int) -> None:
        pairs = self.pair_report
        if pairs is None:
            self.pairs_verdict.setText("Choose both folders to see how their files pair up." if self.recipe.paired
                                       else "")
            self.pairs_verdict.setStyleSheet("")
            self.pairs_problems.clear()
            self.pairs_problems.setVisible(False)
            return
        verdict = pairs.verdict(min_side, self.recipe.min_images)
        self.pairs_verdict.setText(f"{verdict.text} {len(pairs.pairs)} files pair by name.")
        self.pairs_verdict.setStyleSheet(_OK_STYLE if verdict.ok else _ERROR_STYLE)
        lines = pairs.problem_lines(min_side)
        self.pairs_problems.setPlainText("\n".join(lines))
        self.pairs_problems.setVisible(bool(lines))

    def _on_checked(self, field: FolderField, edit: QLineEdit) -> None:
        # A name the user has not typed follows the folder: "Cats" gives "cats".
        if field.report is not None and not self._names_typed[edit]:
            edit.setText(slug(field.report.folder.name, "")[:24].strip("-"))
        if self.wizard() is not None:
            self._update_crop_choices()
        self._fit_fields()
        self.completeChanged.emit()
        self.checked.emit()

    def _fit_fields(self) -> None:
        """A folder with a list of problems takes the page's spare height for it; a clean one only its lines."""
        for field in (self.field_a, self.field_b):
            listed = not field.problems.isHidden()
            self._layout.setStretchFactor(field, 1 if listed else 0)
            field.setSizePolicy(QSizePolicy.Policy.Preferred,
                                QSizePolicy.Policy.Preferred if listed else QSizePolicy.Policy.Maximum)

    def names_problem_text(self) -> str:
        if self.recipe.folders != 2:
            return ""
        a, b = self.names if self.recipe.names_needed else ("before", "after")
        if not (NAME_PATTERN.match(a) and NAME_PATTERN.match(b)):
            return "Give each kind a short name of lower-case letters, digits, - and _ (e.g. cat and dog)."
        if a == b:
            return "The two kinds need different names."
        if self.field_a.report is not None and self.field_b.report is not None and \
                self.field_a.report.folder.resolve() == self.field_b.report.folder.resolve():
            return "Choose two different folders."
        return ""

    def _on_names_changed(self) -> None:
        self.names_problem.setText(self.names_problem_text())
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        if not (all(field.ok for field in self.fields) and not self.names_problem_text()):
            return False
        pairs = self.pair_report
        return pairs is None if not self.recipe.paired else \
            pairs is not None and pairs.verdict(self.recipe.min_side(self.crop), self.recipe.min_images).ok


# -- page 3 ------------------------------------------------------------------------------------------------------
def _rough_duration(seconds: float) -> str:
    """A training time as a person plans with it: "about 6 min", "about 2 h 10 min", "about 3 days"."""
    minutes = seconds / 60
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"about {round(minutes)} min"
    if minutes < 10 * 60:
        hours, rest = divmod(round(minutes / 5) * 5, 60)
        return f"about {hours} h {rest} min" if rest else f"about {hours} h"
    if minutes < 48 * 60:
        return f"about {round(minutes / 60)} h"
    return f"about {round(minutes / 60 / 24)} days"


def _step_time(seconds: float) -> str:
    return f"{seconds:.2f} s a step" if seconds < 10 else f"{seconds:.0f} s a step"


class SpeedProbe(QObject):
    """Measures seconds per training step: ``python -m ganstudio.train.probe <kind> <args>`` (a few steps of the
    run's own command on generated pictures; :mod:`ganstudio.train.probe`) as a child process, never in the UI
    thread. Results are kept per key, so going back to a preset shows its estimate at once; a newer request
    stops a probe still measuring an older one. ``measured(key, seconds, error)``: seconds is NaN on failure."""

    measured = Signal(str, float, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.results: dict[str, tuple[float, str]] = {}
        self.process: QProcess | None = None
        self.key = ""
        self._output = b""
        self._scratch = ""

    def request(self, key: str, kind: str, args: list[str]) -> None:
        """Measure for ``key`` unless known or being measured; a known result is emitted at once."""
        if key in self.results:
            self.measured.emit(key, *self.results[key])
            return
        if self.process is not None and key == self.key:
            return
        self.stop()
        self.key = key
        self._launch(key, kind, args)

    def _launch(self, key: str, kind: str, args: list[str]) -> None:
        self._output = b""
        # the probe's pictures and run: removed here, as a probe stopped for a newer request is killed
        self._scratch = tempfile.mkdtemp(prefix="ganstudio-probe-")
        process = _python_process(self)
        process.setArguments(["-m", "ganstudio.train.probe", "--scratch", self._scratch, kind, *args])
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyRead.connect(lambda: setattr(self, "_output", self._output + process.readAll().data()))
        process.finished.connect(lambda code, status: self._on_finished(process, key))
        process.errorOccurred.connect(lambda error: self._on_error(process, key, error))
        self.process = process
        process.start()

    def _on_error(self, process: QProcess, key: str, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and process is self.process:
            self.process = None
            process.deleteLater()
            self._remove_scratch()
            self.finish(key, math.nan, f"could not start {sys.executable}")

    def _on_finished(self, process: QProcess, key: str) -> None:
        if process is not self.process:  # stopped for a newer request
            return
        self.process = None
        self._output += process.readAll().data()
        process.deleteLater()
        self._remove_scratch()
        seconds, error = math.nan, "the probe ended without a result"
        for line in self._output.decode("utf-8", "replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "probe":
                seconds, error = float(event["seconds_per_step"]), ""
            elif isinstance(event, dict) and event.get("event") == "error":
                error = str(event.get("message", error))
        self.finish(key, seconds, error)

    def finish(self, key: str, seconds: float, error: str = "") -> None:
        """Keep and announce a result (what a finished probe calls)."""
        self.results[key] = (seconds, error)
        self.measured.emit(key, seconds, error)

    def stop(self) -> None:
        """Stop a running probe (its result is dropped)."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.waitForFinished(2000)
            process.deleteLater()
        self._remove_scratch()

    def _remove_scratch(self) -> None:
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = ""

    @property
    def running(self) -> bool:
        return self.process is not None


class SettingsPage(QWizardPage):
    def __init__(self, machine: Machine) -> None:
        super().__init__()
        self.machine = machine
        self.setTitle("Settings")
        self.setSubTitle(f"Sized for this machine: {machine.describe()}.")
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "Start training")
        self.preset_combo = QComboBox()
        for preset, text in zip(PRESETS, ("Quick: a first look", "Balanced", "Best: takes the longest")):
            self.preset_combo.addItem(text, preset)
        self.preset_combo.currentIndexChanged.connect(self.apply_preset)
        self.base_box = QCheckBox()
        self.base_box.toggled.connect(self.apply_preset)
        self.base_note = _note()

        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 10_000_000)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 512)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-6, 1e-2)
        self.lr_spin.setSingleStep(1e-5)
        self.blocks_spin = QSpinBox()
        self.channels_spin = QSpinBox()
        self.checkpoint_spin = QSpinBox()
        self.checkpoint_spin.setRange(1, 1_000_000)
        self.checkpoint_spin.setToolTip("Steps between checkpoints: how much Pause or a crash can lose at most")
        self.precision_combo = QComboBox()
        for value, text in PRECISION_LABELS.items():
            self.precision_combo.addItem(text, value)
        self.precision_combo.setToolTip(PRECISION_TIP)
        # autocast is for GPUs: on a CPU-only machine the choice is fixed at fp32, and the note says why
        self.precision_combo.setEnabled(machine.cuda)
        self.precision_note = QLabel("" if machine.cuda else "The CPU always trains in fp32.")
        self.precision_note.setToolTip(PRECISION_TIP)
        precision_row = QHBoxLayout()
        precision_row.setContentsMargins(0, 0, 0, 0)
        precision_row.addWidget(self.precision_combo)
        precision_row.addWidget(self.precision_note, 1)
        # one training process per GPU: each takes the batch size, so a step sees that many more pictures
        self.all_gpus_box = QCheckBox(f"Train on all {machine.gpus} GPUs")
        self.all_gpus_box.setToolTip(f"One training process per GPU, each with the batch size above: a step learns "
                                     f"from {machine.gpus}× the pictures")
        self.all_gpus_box.setChecked(machine.gpus > 1)
        self.all_gpus_box.setVisible(machine.gpus > 1)

        # a checkbox that unfolds a frame: a checkable group box would leave an empty frame when folded
        self.advanced = QCheckBox("Advanced")
        self.advanced.toggled.connect(self._show_advanced)
        self._advanced_body = QGroupBox()
        self._form = QFormLayout(self._advanced_body)
        self._form.addRow("Steps", self.steps_spin)
        self._form.addRow("Learning rate", self.lr_spin)
        self._form.addRow("Batch size", self.batch_spin)
        self._form.addRow("Checkpoint every (steps)", self.checkpoint_spin)
        self._form.addRow("Precision", precision_row)
        self._form.labelForField(precision_row).setToolTip(PRECISION_TIP)
        self._form.addRow("Residual blocks", self.blocks_spin)
        self._form.addRow("Channels", self.channels_spin)
        self._advanced_body.setVisible(False)

        self.summary_label = _note()
        # the preset's time on this machine: its steps times the seconds a step took in a short measured run
        self.estimate_label = QLabel()
        self.estimate_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.probe = SpeedProbe(self)
        self.probe.measured.connect(self._on_measured)
        self._estimate_timer = QTimer(self)
        self._estimate_timer.setSingleShot(True)
        self._estimate_timer.setInterval(400)  # a spin box's arrows held down measure once, at the end
        self._estimate_timer.timeout.connect(self._request_estimate)
        preset_row = QHBoxLayout()
        preset_row.setContentsMargins(0, 0, 0, 0)
        self.preset_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        preset_row.addWidget(self.preset_combo)
        preset_row.addSpacing(12)
        preset_row.addWidget(self.estimate_label, 1)
        top = QFormLayout()
        top.addRow("Preset", preset_row)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.base_box)
        layout.addWidget(self.base_note)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.all_gpus_box)
        layout.addWidget(self.advanced)
        layout.addWidget(self._advanced_body)
        layout.addStretch(1)
        for spin in (self.steps_spin, self.batch_spin, self.blocks_spin):
            spin.valueChanged.connect(self._update_usable)
        self.steps_spin.valueChanged.connect(self._show_estimate)
        for spin in (self.batch_spin, self.blocks_spin, self.channels_spin):
            spin.valueChanged.connect(self._schedule_estimate)
        self.precision_combo.currentIndexChanged.connect(self._schedule_estimate)

    def _show_advanced(self, shown: bool) -> None:
        self._advanced_body.setVisible(shown)

    @property
    def recipe(self) -> Recipe:
        return self.wizard().recipe

    def initializePage(self) -> None:
        recipe = self.recipe
        self._form.setRowVisible(self.blocks_spin, recipe.blocks_label is not None)
        if recipe.blocks_label is not None:
            self._form.labelForField(self.blocks_spin).setText(recipe.blocks_label)
        self._form.labelForField(self.channels_spin).setText(recipe.channels_label)
        self.blocks_spin.setRange(*recipe.blocks_range)
        self.channels_spin.setRange(*recipe.channels_range)
        bases = recipe.base_models()
        self.base_box.setVisible(bool(recipe.base_label))
        self.base_box.setText(recipe.base_label)
        self.base_box.setEnabled(bool(bases))
        self.base_box.setToolTip("" if bases else recipe.no_base_text())
        self.base_note.setVisible(not bases)
        self.base_note.setText(recipe.no_base_text())
        self.base_box.blockSignals(True)
        self.base_box.setChecked(bool(bases))
        self.base_box.blockSignals(False)
        self.apply_preset()

    def apply_preset(self) -> None:
        recipe = self.recipe
        from_base = self.base_box.isChecked()
        settings = recipe.preset(self.preset_combo.currentData(), self.machine, from_base)
        self.steps_spin.setValue(settings.steps)
        self.batch_spin.setValue(settings.batch)
        self.lr_spin.setValue(settings.lr)
        self.blocks_spin.setValue(settings.blocks)
        self.channels_spin.setValue(settings.channels)
        self.checkpoint_spin.setValue(settings.checkpoint_every)
        self.precision_combo.setCurrentIndex(self.precision_combo.findData(settings.precision))
        # A shipped model's size is fixed (its weights only fit that architecture): show it, read-only.
        fixed = recipe.base_size() if from_base else None
        if fixed is not None:
            self.blocks_spin.setValue(fixed[0])
            self.channels_spin.setValue(fixed[1])
        self.blocks_spin.setEnabled(fixed is None)
        self.channels_spin.setEnabled(fixed is None)
        tip = "Fixed by the shipped model the run starts from: its weights fit this size only" if fixed else ""
        self.blocks_spin.setToolTip(tip)
        self.channels_spin.setToolTip(tip)
        self._update_usable()
        self._schedule_estimate()

    def processes(self) -> int:
        """Training processes: one per GPU when the machine has several and all are asked for, else 1."""
        return self.machine.gpus if self.machine.gpus > 1 and self.all_gpus_box.isChecked() else 1

    def settings(self) -> Settings:
        """The run's settings: this page's, with the crop and augmentation chosen on the Data page."""
        data = self.wizard().data_page
        return Settings(self.steps_spin.value(), self.batch_spin.value(), data.crop, self.lr_spin.value(),
                        self.blocks_spin.value(), self.channels_spin.value(), self.checkpoint_spin.value(),
                        self.precision_combo.currentData(), data.augment)

    def _usable(self) -> int | None:
        """Usable photos at the chosen crop: of the smaller folder when there are two; None before the data check."""
        return self.wizard().data_page.usable_at(self.wizard().data_page.crop) if self.wizard() else None

    def _problem(self) -> str:
        reports = self.wizard().data_page.reports
        problem = self.recipe.settings_problem(self.settings())
        if problem or any(report is None for report in reports):
            return problem
        data = self.wizard().data_page
        min_side = self.recipe.min_side(data.crop)
        pairs = data.pair_report
        if pairs is not None:
            verdict = pairs.verdict(min_side, self.recipe.min_images)
            return "" if verdict.ok else verdict.text
        return next((report.verdict(min_side, self.recipe.min_images).text for report in reports
                     if not report.verdict(min_side, self.recipe.min_images).ok), "")

    def _update_usable(self) -> None:
        if self.wizard() is None or self._usable() is None:
            return
        problem = self._problem()
        if problem:
            text = problem
        else:
            data, recipe = self.wizard().data_page, self.recipe
            count = self._usable()
            photos = f"{count} usable pairs" if recipe.paired else \
                f"{count} usable photos{' in the smaller folder' if recipe.folders == 2 else ''}"
            augment = recipe.augments[data.augment][0]
            augment = augment[0].lower() + augment[1:]
            batch = self.batch_spin.value()
            text = f"Enough to train on: {photos}. {self.steps_spin.value():,} steps of {batch} " \
                   f"{recipe.crop_noun}{'' if batch == 1 else 's'} of {data.crop} px, augmentation: {augment} " \
                   "(set with your photos)."
        self.summary_label.setText(text)
        self.summary_label.setStyleSheet(_ERROR_STYLE if problem else "")
        self.completeChanged.emit()

    # -- the time estimate
    def _speed_key(self) -> str:
        """What a step's time depends on: the model and its size, the batch, the crop and the precision."""
        settings = self.settings()
        return json.dumps([self.recipe.kind, self.base_box.isChecked(), settings.batch, settings.crop,
                           settings.blocks, settings.channels, settings.precision])

    def _schedule_estimate(self) -> None:
        if self.wizard() is None or self.wizard().currentPage() is not self:
            return
        key = self._speed_key()
        if key in self.probe.results:
            self._show_estimate()
        else:
            self.estimate_label.setText(f"Measuring the speed on this {self._device_word}…")
            self.estimate_label.setToolTip("A few training steps of this model run in the background to time them.")
            self.estimate_label.setStyleSheet("")
        self._estimate_timer.start()

    def _request_estimate(self) -> None:
        if self.wizard() is None or self.wizard().currentPage() is not self:
            return
        wizard: TrainingWizard = self.wizard()
        data = wizard.data_page
        # the run's own command line; the probe points it at generated pictures and a scratch folder
        spec = self.recipe.build_spec(data.folders, self.settings(), self.base_box.isChecked(),
                                      runs_dir() / "speed-probe", self._usable() or 0, data.names)
        self.probe.request(self._speed_key(), self.recipe.kind, spec.args)

    def _on_measured(self, key: str, seconds: float, error: str) -> None:
        if self.wizard() is not None and key == self._speed_key():
            self._show_estimate()

    @property
    def _device_word(self) -> str:
        return "GPU" if self.machine.cuda else "CPU"

    def _show_estimate(self) -> None:
        """Steps times the measured seconds a step, once measured for these settings."""
        if self.wizard() is None:
            return
        seconds, error = self.probe.results.get(self._speed_key(), (math.nan, "not measured yet"))
        if math.isnan(seconds):
            if not self.probe.running and error != "not measured yet":
                self.estimate_label.setText("No time estimate: the speed could not be measured.")
                self.estimate_label.setToolTip(error)
                self.estimate_label.setStyleSheet(_WARNING_STYLE)
            return
        steps = self.steps_spin.value()
        self.estimate_label.setText(f"{_rough_duration(steps * seconds).capitalize()} on this {self._device_word} "
                                    f"({_step_time(seconds)}, measured)")
        self.estimate_label.setToolTip(f"{steps:,} steps × {seconds:.2f} s a step, as measured on this machine with "
                                       "these settings; validation, previews and checkpoints add a few per cent.")
        self.estimate_label.setStyleSheet("")

    def cleanupPage(self) -> None:
        self._estimate_timer.stop()
        self.probe.stop()
        super().cleanupPage()

    def isComplete(self) -> bool:
        return self.wizard() is not None and self._usable() is not None and not self._problem()

    def validatePage(self) -> bool:
        wizard: TrainingWizard = self.wizard()
        recipe = self.recipe
        folders, names = wizard.data_page.folders, wizard.data_page.names
        run_dir = runs_dir() / f"{recipe.run_name(folders, names)}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir.mkdir(parents=True, exist_ok=True)
        usable = self._usable()
        assert usable is not None
        self._estimate_timer.stop()
        self.probe.stop()  # the run needs the machine to itself
        spec = recipe.build_spec(folders, self.settings(), self.base_box.isChecked(), run_dir, usable, names)
        spec.processes = self.processes()
        spec.save()
        wizard.spec = spec
        wizard.resume_next = False
        return True


# -- page 4 ------------------------------------------------------------------------------------------------------
class TrainPage(QWizardPage):
    event_received = Signal(dict)
    process_finished = Signal(str)  # the new state: "done", "paused", "failed" or "cancelled"

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Training")
        self.plot = LossPlot()
        self.sample_label = QLabel()
        self.sample_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample_label.setMinimumSize(300, 200)
        self.sample_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.sample_caption = QLabel()
        self.sample_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample_caption.setWordWrap(True)
        self.progress = QProgressBar()
        self.stats_label = QLabel()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setFixedHeight(90)
        self.pause_button = _button("Pause", self.pause)
        self.pause_button.setToolTip("Stop after saving a checkpoint; Resume goes on from there, even after a restart")
        self.resume_button = _button("Resume", self.resume)
        self.cancel_button = _button("Cancel training", self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.stats_label, 1)
        for button in (self.pause_button, self.resume_button, self.cancel_button):
            buttons.addWidget(button)
        samples = QVBoxLayout()
        samples.addWidget(self.sample_label, 1)
        samples.addWidget(self.sample_caption)
        views = QHBoxLayout()
        views.addWidget(self.plot, 1)
        views.addLayout(samples, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(views, 1)
        layout.addWidget(self.progress)
        layout.addLayout(buttons)
        layout.addWidget(self.status_label)
        layout.addWidget(self.log)

        self.process: QProcess | None = None
        self.state = "idle"
        self.last_error = ""
        self._buffer = b""
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._sample_path = ""
        self._stopping = ""
        #: (arrival time, step) of the latest step events, for a speed that includes validations and checkpoints
        self._step_times: deque[tuple[float, int]] = deque(maxlen=_RATE_WINDOW)

    @property
    def spec(self) -> RunSpec:
        spec = self.wizard().spec
        assert spec is not None
        return spec

    def initializePage(self) -> None:
        wizard: TrainingWizard = self.wizard()
        self.setSubTitle(f"Run folder: {self.spec.run_dir}")
        self._sample_path = ""
        self.sample_label.clear()
        self.sample_label.setText(self.spec.recipe.sample_hint)
        self.sample_caption.clear()
        self.stats_label.clear()
        self.log.clear()
        self.plot.clear()
        self.progress.setRange(0, self.spec.total)
        self.progress.setValue(0)
        self.start(resume=wizard.resume_next)

    def start(self, resume: bool) -> None:
        if self.process is not None:
            return
        self._buffer, self._stopping, self.last_error = b"", "", ""
        self._stderr.clear()
        self._step_times.clear()  # the time between sessions is no training speed
        process = _python_process(self)
        process.setArguments(self.spec.command(resume))
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self.process = process
        self._set_state("running")
        self.status_label.setText("Resuming from the last checkpoint…" if resume else "Starting…")
        self.status_label.setStyleSheet("")
        process.start()

    def pause(self) -> None:
        if self.process is not None:
            self._stopping = "paused"
            self.status_label.setText("Pausing: saving a checkpoint…")
            self.pause_button.setEnabled(False)
            self.process.terminate()  # SIGTERM: the loop checkpoints, then exits

    def resume(self) -> None:
        self.start(resume=True)

    def cancel(self) -> None:
        RunSpec.forget()
        if self.process is not None:
            self._stopping = "cancelled"
            self.process.kill()
        else:
            self._set_state("cancelled")

    def shutdown(self, timeout_ms: int) -> bool:
        """Pause a running child for the app's exit (the run stays resumable); ``False`` if it did not stop."""
        if self.process is None:
            return True
        self._stopping = "paused"
        self.process.terminate()
        if self.process is not None and not self.process.waitForFinished(timeout_ms):
            self.process.kill()
            return False
        return True

    def _read_stdout(self) -> None:
        assert self.process is not None
        self._buffer += self.process.readAllStandardOutput().data()
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").strip()
            if not text:
                continue
            try:
                event = json.loads(text)
            except ValueError:
                self.log.appendPlainText(text)
                continue
            if isinstance(event, dict):
                self._on_event(event)

    def _read_stderr(self) -> None:
        assert self.process is not None
        for line in self.process.readAllStandardError().data().decode("utf-8", "replace").splitlines():
            self._stderr.append(line)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "start":
            self.progress.setRange(0, int(event.get("total", self.spec.total)))
            self.progress.setValue(int(event.get("step", 0)))
            self.status_label.setText(_start_text(event))
            bicubic = event.get("bicubic_psnr")
            if isinstance(bicubic, (int, float)):
                self.log.appendPlainText(f"A plain bicubic enlargement of the held-out photos scores {bicubic:.2f} dB "
                                         "PSNR: the model's validation PSNR should be above it (higher is better).")
        elif kind == "step":
            step, total = int(event["step"]), int(event["total"])
            self.progress.setValue(step)
            self.plot.add(step, event.get("losses", {}))
            rate = self._rate(step, float(event.get("it_per_s") or 0))
            left = f" · about {_duration((total - step) / rate)} left" if rate > 0 and step < total else ""
            self.stats_label.setText(f"Step {step:,} of {total:,} · {_speed_text(rate)}{left}")
        elif kind == "done":
            steps, seconds = int(event.get("step", 0)), float(event.get("wall_time_s") or 0)
            if steps and seconds > 0 and event.get("stopped"):
                self.stats_label.setText(f"Stopped at step {steps:,} after {_duration(seconds)} of training")
            elif steps and seconds > 0:
                self.stats_label.setText(f"Trained {steps:,} steps in {_duration(seconds)} "
                                         f"({_speed_text(steps / seconds)})")
        elif kind == "validation":
            self.log.appendPlainText(_validation_text(event))
        elif kind == "sample":
            self._sample_path = str(event["path"])
            self._show_sample()
            self.sample_caption.setText(f"Step {int(event.get('step', 0)):,} · {self.spec.recipe.sample_caption}")
        elif kind == "warning":
            self.log.appendPlainText(f"warning: {event.get('message', '')}")
        elif kind == "error":
            self.last_error = str(event.get("message", ""))
        self.event_received.emit(event)

    def _rate(self, step: int, reported: float, now: float | None = None) -> float:
        """Steps per second over the latest step events as they arrived (``now``: this one's arrival), validations,
        previews and checkpoints included; the child's own figure for the bare steps until there are two events to
        measure between."""
        self._step_times.append((time.monotonic() if now is None else now, step))
        (start, first), (end, last) = self._step_times[0], self._step_times[-1]
        return (last - first) / (end - start) if last > first and end > start else reported

    def _show_sample(self) -> None:
        pixmap = QPixmap(self._sample_path)
        if not pixmap.isNull():
            self.sample_label.setPixmap(pixmap.scaled(self.sample_label.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                      Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self._sample_path:
            self._show_sample()

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            self.last_error = f"could not start {sys.executable}: {self.process.errorString()}"
            self._on_finished(-1, QProcess.ExitStatus.CrashExit)

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if self.process is None:
            return
        self._read_stderr()
        self._buffer += b"\n"  # a last line without its newline still counts
        self._read_stdout()
        process, self.process = self.process, None
        process.deleteLater()
        if self._stopping == "cancelled":
            state, text = "cancelled", f"Cancelled. The run folder {self.spec.run_dir} is kept; delete it if unwanted."
        elif code == 0 and status == QProcess.ExitStatus.NormalExit and self.progress.value() >= self.spec.total:
            state, text = "done", "Training finished. Next: name the model."
        elif self._stopping == "paused" and code == 0:
            state, text = "paused", "Paused at the last checkpoint. Resume goes on from there, also after a restart."
        else:
            detail = self.last_error or "\n".join(list(self._stderr)[-8:]) or f"exit code {code}"
            state, text = "failed", f"Training stopped with an error: {detail}\nResume tries again from the last checkpoint."
        self.status_label.setText(text)
        self.status_label.setStyleSheet(_ERROR_STYLE if state == "failed" else "")
        self._set_state(state)
        self.process_finished.emit(state)

    def _set_state(self, state: str) -> None:
        self.state = state
        running = state == "running"
        self.pause_button.setEnabled(running)
        self.resume_button.setEnabled(state in ("paused", "failed"))
        self.cancel_button.setEnabled(state in ("running", "paused", "failed"))
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.state == "done"


# -- page 5 ------------------------------------------------------------------------------------------------------
class FinishPage(QWizardPage):
    exported = Signal(str)

    def __init__(self, model_dir: Callable[[], Path], machine: Machine) -> None:
        super().__init__()
        self._model_dir = model_dir
        self._machine = machine
        self.setTitle("Save the model")
        self.name_edit, self.title_edit = QLineEdit(), QLineEdit()
        # the second model of a translation run: the way back
        self.name_b_edit, self.title_b_edit = QLineEdit(), QLineEdit()
        for edit in (self.name_edit, self.name_b_edit):
            edit.setToolTip("File name: lower-case letters, digits, - and _")
        for edit in (self.title_edit, self.title_b_edit):
            edit.setToolTip("What the tool's model list shows")
        for edit in (self.name_edit, self.title_edit, self.name_b_edit, self.title_b_edit):
            edit.textChanged.connect(self._validate)
        self.latest_box = QCheckBox("Use the last weights rather than the best-measured ones")
        self.open_box = QCheckBox(f"Open {GENERATED_ON_FINISH} new pictures in the editor when I click Finish")
        self.open_box.setChecked(True)
        self.save_button = _button("Save model", self.export)
        self.status_label = _note()
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._form = QFormLayout()
        self._form.addRow("Name", self.name_edit)
        self._form.addRow("Title", self.title_edit)
        self._form.addRow("Name (the way back)", self.name_b_edit)
        self._form.addRow("Title (the way back)", self.title_b_edit)
        self._form.addRow("", self.latest_box)
        self._form.addRow("", self.open_box)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(self._form)
        layout.addLayout(row)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        self.process: QProcess | None = None
        self.saved_path = ""
        self._output = b""

    @property
    def spec(self) -> RunSpec:
        spec = self.wizard().spec
        assert spec is not None
        return spec

    @property
    def _edits(self) -> list[tuple[QLineEdit, QLineEdit]]:
        pairs = [(self.name_edit, self.title_edit), (self.name_b_edit, self.title_b_edit)]
        return pairs[: len(self.spec.recipe.default_outputs(self.spec))]

    def initializePage(self) -> None:
        recipe = self.spec.recipe
        outputs = recipe.default_outputs(self.spec)
        self.saved_path = ""
        if recipe.model_task == "generate":
            self.setSubTitle("It is saved into your model folder; File ▸ Generate Images… makes new pictures "
                             "with it.")
        else:
            self.setSubTitle(f"It is saved into your model folder and appears in {recipe.where}'s model list.")
        two = len(outputs) == 2
        for edit in (self.name_b_edit, self.title_b_edit):
            self._form.setRowVisible(edit, two)
        self._form.setRowVisible(self.latest_box, recipe.has_best)
        self._form.setRowVisible(self.open_box, recipe.model_task == "generate")
        for (name_edit, title_edit), output in zip(self._edits, outputs):
            name_edit.setText(output.name)
            title_edit.setText(output.title)
            name_edit.setEnabled(True)
            title_edit.setEnabled(True)
        self._validate()

    def outputs(self) -> list[Output]:
        return [Output(name.text().strip(), title.text().strip()) for name, title in self._edits]

    def _validate(self) -> bool:
        if self.wizard() is None or self.wizard().spec is None:
            return False
        taken = {m.name for m in get_registry().all()}
        outputs = self.outputs()
        problem = ""
        for output in outputs:
            if not NAME_PATTERN.match(output.name):
                problem = "The name may use lower-case letters, digits, - and _ only."
            elif (self._model_dir() / f"{output.name}.safetensors").exists() or output.name in taken:
                problem = f"A model named “{output.name}” exists already: choose another name."
            elif not output.title:
                problem = "Give the model a title."
            if problem:
                break
        if not problem and len({o.name for o in outputs}) < len(outputs):
            problem = "The two models need different names."
        if self.saved_path:
            return not problem
        self.status_label.setText(problem)
        self.status_label.setStyleSheet(_ERROR_STYLE if problem else "")
        self.save_button.setEnabled(not problem and self.process is None)
        return not problem

    def export(self) -> None:
        if not self._validate() or self.process is not None:
            return
        spec = self.spec
        args = spec.recipe.export_args(spec, self.outputs(), self._model_dir(), self._machine.describe(),
                                       self.latest_box.isChecked())
        self._output = b""
        process = _python_process(self)
        process.setArguments(["-m", "ganstudio", "train", *args])
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.readyRead.connect(lambda: setattr(self, "_output", self._output + process.readAll().data()))
        process.finished.connect(self._on_finished)
        self.process = process
        self.save_button.setEnabled(False)
        self.status_label.setStyleSheet("")
        self.status_label.setText("Saving…")
        process.start()

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        process, self.process = self.process, None
        assert process is not None
        self._output += process.readAll().data()
        process.deleteLater()
        events = []
        for line in self._output.decode("utf-8", "replace").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        exported = [e for e in events if isinstance(e, dict) and e.get("event") == "export"]
        if code != 0 or not exported:
            errors = [str(e.get("message")) for e in events if isinstance(e, dict) and e.get("event") == "error"]
            tail = self._output.decode("utf-8", "replace").strip().splitlines()[-5:]
            self.status_label.setText("Could not save the model: " + ("; ".join(errors) or "\n".join(tail)))
            self.status_label.setStyleSheet(_ERROR_STYLE)
            self.save_button.setEnabled(True)
            return
        self.saved_path = str(exported[0]["weights"])
        RunSpec.forget()
        configure_registry(self._model_dir())
        recipe = self.spec.recipe
        titles = " and ".join(f"“{o.title}”" for o in self.outputs())
        saved = ", ".join(str(e["weights"]) for e in exported)
        if recipe.model_task == "generate":
            text = f"Saved as {saved}. File ▸ Generate Images… makes new pictures with {titles}."
        else:
            text = f"Saved as {saved}. Choose {titles} in {recipe.where}."
        self.status_label.setStyleSheet("")
        self.status_label.setText(text)
        for name_edit, title_edit in self._edits:
            name_edit.setEnabled(False)
            title_edit.setEnabled(False)
        self.completeChanged.emit()
        self.exported.emit(self.saved_path)

    def isComplete(self) -> bool:
        return bool(self.saved_path)


class TrainingWizard(QWizard):
    """Non-modal. ``model_exported`` carries the new weights' path once the registry has been rescanned;
    ``generate_requested`` (model name, count) asks the editor for new pictures from a generator just saved."""

    KIND, DATA, SETTINGS, TRAIN, FINISH = range(5)
    model_exported = Signal(str)
    generate_requested = Signal(str, int)

    def __init__(self, parent: QWidget | None = None, model_dir: Callable[[], Path] | None = None,
                 machine: Machine | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train a Model")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.spec: RunSpec | None = None
        self.resume_next = False
        machine = machine or Machine.detect()
        self.kind_page = KindPage()
        self.data_page = DataPage(machine)
        self.settings_page = SettingsPage(machine)
        self.train_page = TrainPage()
        self.finish_page = FinishPage(model_dir or default_model_dir, machine)
        for page_id, page in enumerate((self.kind_page, self.data_page, self.settings_page, self.train_page,
                                        self.finish_page)):
            self.setPage(page_id, page)
        self.finish_page.exported.connect(self.model_exported)
        self.resize(980, 760)

    @property
    def recipe(self) -> Recipe:
        """What the Data and Settings pages set up: the kind chosen on the first page."""
        return RECIPES[self.kind_page.kind]

    def validateCurrentPage(self) -> bool:
        if self.currentId() == self.KIND and self.kind_page.resume_radio.isChecked():
            self.spec = self.kind_page.remembered
            self.resume_next = True
        return super().validateCurrentPage()

    @property
    def is_running(self) -> bool:
        return self.train_page.process is not None

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """For the app's exit: a running training is paused (checkpointed), so the wizard can resume it later."""
        self.settings_page.probe.stop()
        return self.train_page.shutdown(timeout_ms)

    def accept(self) -> None:
        finish = self.finish_page
        if self.spec is not None and self.spec.recipe.model_task == "generate" and finish.saved_path \
                and finish.open_box.isChecked():
            self.generate_requested.emit(finish.outputs()[0].name, GENERATED_ON_FINISH)
        super().accept()
        # the next Train a Model… starts a new run, not this finished one
        self.spec, self.resume_next = None, False
        self.restart()

    def reject(self) -> None:
        # Closing the wizard pauses a run rather than losing it; it is offered again the next time.
        self.settings_page.probe.stop()
        self.train_page.shutdown(15000)
        super().reject()
