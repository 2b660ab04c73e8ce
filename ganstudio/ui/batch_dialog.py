"""The Batch dialog: a folder of images through a chain of tools into an output folder, with progress and a report.

The batch is driven from its own QThread: it runs in a batch process of its own (ganstudio.batch_process) or, when the
editor's jobs run in a thread (``GANSTUDIO_WORKER=thread``), on that QThread itself (the device stage;
``BatchRunner`` adds its reader and writer threads around it).
Per-file results and progress come back from the writer threads through queued signals, so the dialog only ever
updates widgets in the UI thread and never waits on the batch while it runs.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import (QModelIndex, QPersistentModelIndex, QSignalBlocker, Qt, QThread, QTimer, QUrl,
                            Signal)
from PySide6.QtGui import QColor, QDesktopServices, QShowEvent
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListWidget,
                               QMenu, QMessageBox, QProgressBar, QPushButton, QSpinBox, QSplitter, QStackedWidget,
                               QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from ganstudio.batch import (DEFAULT_MASK_PATTERN, DEFAULT_NAMING, FORMATS, BatchError, BatchOptions, BatchProgress,
                             BatchReport, BatchRunner, ChainStep, FileResult, find_inputs, load_preset, output_path,
                             save_preset)
from ganstudio.engine import Runtime
from ganstudio.tools import TOOLS, get_tool
from ganstudio.ui.tools_panel import ToolPage
from ganstudio.batch_process import BatchProcess
from ganstudio.ui.worker import describe_error, worker_mode

REPORT_NAME = "batch-report.json"
#: The format list: (label, BatchOptions.format).
_FORMATS = (("Same as input", "same"), ("PNG", "png"), ("JPEG", "jpeg"), ("WebP", "webp"), ("TIFF", "tiff"))
_LOSSY = {"jpeg", "webp"}
_NAMING_HELP = ("Output file name. Placeholders:\n"
                "{stem}  the input's name without its suffix\n"
                "{ext}  the output format's suffix (png, jpg, ...)\n"
                "{chain}  the chain's tool names, e.g. superres-inpaint")
#: Translucent, so failed rows read as red on the dark theme and on a light one alike.
_FAILED_BACKGROUND = QColor(220, 60, 60, 70)
_ERROR_STYLE = "color: #e26a6a;"
_FILE, _STATUS, _REASON = range(3)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _button(text: str, slot: Callable[[], object] | None = None, tip: str = "") -> QPushButton:
    button = QPushButton(text)
    # Enter in a folder or pattern field must not press Start (or Browse) behind the user's back.
    button.setAutoDefault(False)
    button.setToolTip(tip)
    if slot is not None:
        button.clicked.connect(slot)
    return button


def _watch(editor: QWidget, callback: Callable[[], None]) -> None:
    """Call ``callback`` (without the new value) whenever the parameter editor's value changes."""
    def changed(*_: object) -> None:
        callback()

    if isinstance(editor, QComboBox):
        editor.currentIndexChanged.connect(changed)
    elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        editor.valueChanged.connect(changed)
    elif isinstance(editor, QCheckBox):
        editor.toggled.connect(changed)
    elif isinstance(editor, QLineEdit):
        editor.textChanged.connect(changed)


def _set_editor(editor: QWidget, value: Any) -> None:
    if isinstance(editor, QComboBox):
        index = editor.findData(value)
        if index >= 0:
            editor.setCurrentIndex(index)
    elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
        editor.setValue(value)
    elif isinstance(editor, QCheckBox):
        editor.setChecked(bool(value))
    elif isinstance(editor, QLineEdit):
        editor.setText(str(value))


class _ElideRight(QStyledItemDelegate):
    """For the reason column: its start says what went wrong, where the file column's end names the file."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


class _BatchThread(QThread):
    """Runs one batch. ``file_done`` and ``progress`` are emitted from the runner's writer threads; the dialog
    connects them queued, so its slots run in the UI thread."""

    file_done = Signal(object)
    progress = Signal(object)

    def __init__(self, options: BatchOptions, runtime: Runtime) -> None:
        super().__init__()
        self.setObjectName("ganstudio-batch")
        # Built here, in the UI thread, so whatever BatchRunner refuses is reported before anything starts. The
        # batch itself runs in a process of its own, like the editor's tool jobs, unless those run in a thread.
        runner_type = BatchProcess if worker_mode() == "process" else BatchRunner
        self.runner = runner_type(options, runtime, on_file=self.file_done.emit, on_progress=self.progress.emit)
        self.report: BatchReport | None = None
        self.error = ""

    def run(self) -> None:
        try:
            self.report = self.runner.run()
        except Exception as error:  # noqa: BLE001 - e.g. an unreadable folder: tell the user, keep the app alive
            self.error = describe_error(error)


class BatchDialog(QDialog):
    """Non-modal. ``start()`` runs the batch in the background; ``batch_finished`` carries the ``BatchReport``."""

    batch_finished = Signal(object)

    def __init__(self, parent: QWidget | None = None, runtime_provider: Callable[[], Runtime] | None = None,
                 device_busy: Callable[[], bool] | None = None) -> None:
        """``device_busy`` tells whether another job holds the device; a batch waits for the device to be free."""
        super().__init__(parent)
        self._device_busy = device_busy or (lambda: False)
        self.setWindowTitle("Batch processing")
        self._runtime_provider = runtime_provider or Runtime
        self._pages: list[ToolPage] = []
        self._thread: _BatchThread | None = None
        self._report: BatchReport | None = None
        self._close_when_done = False
        self._sample: tuple[tuple[str, ...], Path | None] = ((), None)
        self._progress: BatchProgress | None = None

        self.settings = QWidget()
        settings = QVBoxLayout(self.settings)
        settings.setContentsMargins(0, 0, 0, 0)
        settings.addWidget(self._build_input())
        settings.addWidget(self._build_chain(), 1)
        settings.addWidget(self._build_output())

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self.settings)
        splitter.addWidget(self._build_progress())
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([470, 650])

        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.setVisible(False)

        self.start_button = _button("Start", self.start, "Process every matching image of the input folder")
        self.pause_button = _button("Pause", tip="Hold the batch after the files being processed")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._toggle_pause)
        self.cancel_button = _button("Cancel", self.cancel, "Stop now; every output already written is whole")
        self.save_report_button = _button("Save report…", self._save_report_as)
        self.open_output_button = _button("Open output folder", self._open_output)
        close = _button("Close", self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_report_button)
        buttons.addWidget(self.open_output_button)
        buttons.addStretch(1)
        for button in (self.start_button, self.pause_button, self.cancel_button, close):
            buttons.addWidget(button)
        self.start_button.setMinimumWidth(90)

        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.message_label)
        layout.addLayout(buttons)

        self._sample_timer = QTimer(self)
        self._sample_timer.setSingleShot(True)
        # Listing a folder per keystroke of its path would be wasteful on big or network folders.
        self._sample_timer.setInterval(300)
        self._sample_timer.timeout.connect(self._update_example)
        self._clock = QTimer(self)
        self._clock.setInterval(500)
        self._clock.timeout.connect(self._update_stats)

        self._refresh_chain()
        self._set_running(False)
        self._on_format_changed()
        self.resize(1120, 720)

    # -- construction ----------------------------------------------------------------------------------------
    def _build_input(self) -> QGroupBox:
        self.input_edit = QLineEdit()
        self.input_edit.setPlaceholderText("Folder of images")
        self.recursive_box = QCheckBox("Include sub-folders")
        self.patterns_edit = QLineEdit("*")
        self.patterns_edit.setToolTip("File names to take, separated by ; (e.g. *.jpg;*.png). Mask files and the "
                                      "output folder are always left out.")
        self.mask_edit = QLineEdit(DEFAULT_MASK_PATTERN)
        self.mask_edit.setToolTip("The mask file beside each image, for tools that need one; {stem} is the image's "
                                  "name without its suffix. Images without a mask are skipped.")
        for edit in (self.input_edit, self.patterns_edit, self.mask_edit):
            edit.textChanged.connect(self._schedule_example)
        self.recursive_box.toggled.connect(self._schedule_example)
        box = QGroupBox("Input")
        self._input_form = QFormLayout(box)
        self._input_form.addRow("Folder", self._folder_row(self.input_edit, "Input folder"))
        self._input_form.addRow("", self.recursive_box)
        self._input_form.addRow("Files", self.patterns_edit)
        self._input_form.addRow("Mask file", self.mask_edit)
        return box

    def _build_chain(self) -> QGroupBox:
        self.chain_list = QListWidget()
        self.chain_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.chain_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chain_list.currentRowChanged.connect(self._show_step)
        add = _button("Add tool")
        menu = QMenu(add)
        for spec in TOOLS.values():
            if spec.batchable:
                menu.addAction(spec.title, lambda name=spec.name: self.add_step(name))
        add.setMenu(menu)
        self.remove_button = _button("Remove", self._remove_step)
        self.up_button = _button("Move up", lambda: self._move_step(-1))
        self.down_button = _button("Move down", lambda: self._move_step(1))
        step_buttons = QVBoxLayout()
        for button in (add, self.remove_button, self.up_button, self.down_button):
            step_buttons.addWidget(button)
        step_buttons.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.chain_list, 1)
        top.addLayout(step_buttons)

        self.step_title = QLabel()
        self._steps = QStackedWidget()
        empty = QLabel("Add a tool to the chain: each image goes through the tools in this order.")
        empty.setWordWrap(True)
        empty.setEnabled(False)
        self._steps.addWidget(empty)
        presets = QHBoxLayout()
        presets.addWidget(_button("Save preset…", self._save_preset, "Save the chain and the output settings"))
        presets.addWidget(_button("Load preset…", self._load_preset))
        presets.addStretch(1)

        box = QGroupBox("Chain")
        layout = QVBoxLayout(box)
        layout.addLayout(top, 1)
        layout.addWidget(self.step_title)
        layout.addWidget(self._steps)
        layout.addLayout(presets)
        return box

    def _build_output(self) -> QGroupBox:
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("Where the results go")
        self.output_edit.textChanged.connect(self._schedule_example)
        self.naming_edit = QLineEdit(DEFAULT_NAMING)
        self.naming_edit.setToolTip(_NAMING_HELP)
        self.naming_edit.textChanged.connect(self._update_example)
        self.naming_example = QLabel()
        self.naming_example.setToolTip(_NAMING_HELP)
        self.format_combo = QComboBox()
        for label, name in _FORMATS:
            self.format_combo.addItem(label, name)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        self.quality_spin = QSpinBox()
        self.quality_spin.setRange(1, 100)
        self.quality_spin.setValue(BatchOptions.quality)
        self.quality_spin.setToolTip("JPEG and WebP quality")
        format_row = QHBoxLayout()
        format_row.addWidget(self.format_combo, 1)
        format_row.addWidget(QLabel("Quality"))
        format_row.addWidget(self.quality_spin)
        self.keep_metadata_box = QCheckBox("Keep metadata (EXIF, colour profile)")
        self.keep_metadata_box.setChecked(BatchOptions.keep_metadata)
        self.skip_existing_box = QCheckBox("Skip existing outputs")
        self.skip_existing_box.setToolTip("Leave outputs that already exist alone: finishes a cancelled batch")
        box = QGroupBox("Output")
        form = QFormLayout(box)
        form.addRow("Folder", self._folder_row(self.output_edit, "Output folder"))
        form.addRow("Name", self.naming_edit)
        form.addRow("", self.naming_example)
        form.addRow("Format", format_row)
        form.addRow("", self.keep_metadata_box)
        form.addRow("", self.skip_existing_box)
        return box

    def _folder_row(self, edit: QLineEdit, title: str) -> QHBoxLayout:
        def browse() -> None:
            folder = QFileDialog.getExistingDirectory(self, title, edit.text() or str(Path.home()))
            if folder:
                edit.setText(folder)

        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(_button("Browse…", browse))
        return row

    def _build_progress(self) -> QGroupBox:
        self.progress_bar = QProgressBar()
        self.stats_label = QLabel()
        self.current_label = QLabel()
        self.current_label.setTextFormat(Qt.TextFormat.PlainText)
        self.file_table = QTableWidget(0, 3)
        self.file_table.setHorizontalHeaderLabels(["File", "Status", "Reason"])
        self.file_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.file_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.file_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.file_table.setItemDelegateForColumn(_REASON, _ElideRight(self.file_table))
        self.file_table.setWordWrap(False)
        self.file_table.verticalHeader().setVisible(False)
        # dense rows: a batch lists thousands of files
        self.file_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.file_table.horizontalHeader()
        # Fixed widths, not ResizeToContents: that re-measures every row on each of thousands of insertions.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.file_table.setColumnWidth(_FILE, 200)
        self.file_table.setColumnWidth(_STATUS, 90)
        self.problems_box = QCheckBox("Show only skipped and failed files")
        self.problems_box.toggled.connect(self._filter_rows)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary_label.setVisible(False)
        box = QGroupBox("Progress")
        layout = QVBoxLayout(box)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.stats_label)
        layout.addWidget(self.current_label)
        layout.addWidget(self.file_table, 1)
        layout.addWidget(self.problems_box)
        return box

    # -- folders and options ---------------------------------------------------------------------------------
    def set_input_folder(self, path: str | Path) -> None:
        self.input_edit.setText(str(path))

    def set_output_folder(self, path: str | Path) -> None:
        self.output_edit.setText(str(path))

    def _patterns(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in re.split(r"[;,]", self.patterns_edit.text()) if p.strip()) or ("*",)

    def _options(self) -> BatchOptions:
        """The options as shown; folders may be empty here (``start`` checks them)."""
        return BatchOptions(
            input_dir=Path(self.input_edit.text().strip()).expanduser(),
            output_dir=Path(self.output_edit.text().strip()).expanduser(),
            chain=self.chain_steps(),
            patterns=self._patterns(),
            recursive=self.recursive_box.isChecked(),
            naming=self.naming_edit.text().strip(),
            format=self.format_combo.currentData(),
            quality=self.quality_spin.value(),
            keep_metadata=self.keep_metadata_box.isChecked(),
            skip_existing=self.skip_existing_box.isChecked(),
            mask_pattern=self.mask_edit.text().strip() or DEFAULT_MASK_PATTERN,
        )

    def _apply_options(self, options: BatchOptions) -> list[str]:
        """Show ``options`` (but not its folders); what could not be shown as it was, one line each."""
        problems: list[str] = []
        for page in list(self._pages):
            self._remove_page(page)
        for step in options.chain:
            problems += self.add_step(step.tool, step.params)
        self.patterns_edit.setText(";".join(options.patterns))
        self.recursive_box.setChecked(options.recursive)
        self.naming_edit.setText(options.naming)
        wanted = FORMATS.get(options.format, "unknown")
        index = next((i for i, (_, name) in enumerate(_FORMATS) if FORMATS[name] == wanted), -1)
        if index < 0:
            problems.append(f"unknown format {options.format!r}: kept {self.format_combo.currentText()}")
        else:
            self.format_combo.setCurrentIndex(index)
        self.quality_spin.setValue(options.quality)
        self.keep_metadata_box.setChecked(options.keep_metadata)
        self.skip_existing_box.setChecked(options.skip_existing)
        self.mask_edit.setText(options.mask_pattern)
        return problems

    def _on_format_changed(self) -> None:
        self.quality_spin.setEnabled(self.format_combo.currentData() in _LOSSY)
        self._update_example()

    def _schedule_example(self) -> None:
        self._sample_timer.start()

    def _update_example(self) -> None:
        """Show the first output name for the current naming pattern, format and chain."""
        options = self._options()
        key = (str(options.input_dir), str(options.output_dir), options.patterns, options.mask_pattern)
        if self._sample[0] != key:
            # Only the top folder is listed (a recursive walk could take long on a big tree): close enough to
            # show the pattern at work.
            chosen = bool(self.input_edit.text().strip()) and options.input_dir.is_dir()
            found = find_inputs(dataclasses.replace(options, recursive=False)) if chosen else []
            self._sample = (key, found[0] if found else None)
        sample = self._sample[1] or options.input_dir / "photo.jpg"
        try:
            name = output_path(options, sample).relative_to(options.output_dir)
        except (KeyError, IndexError, ValueError):
            self.naming_example.setText("Bad name: use {stem}, {ext} and {chain}")
            self.naming_example.setStyleSheet(_ERROR_STYLE)
            return
        self.naming_example.setText(f"{'First' if self._sample[1] else 'Example'}: {sample.name} → {name}")
        self.naming_example.setStyleSheet("")

    # -- chain -----------------------------------------------------------------------------------------------
    def chain_steps(self) -> list[ChainStep]:
        return [ChainStep(page.spec.name, dataclasses.asdict(page.params())) for page in self._pages]

    def step_page(self, index: int) -> ToolPage:
        """The parameter form of step ``index``."""
        return self._pages[index]

    def add_step(self, tool: str, params: dict[str, Any] | None = None) -> list[str]:
        """Append ``tool`` with ``params`` (strings allowed, as in a CLI preset); the values that could not be shown
        as given (a model that is not installed, a scale not offered), one line each. Raises ``ValueError`` for an
        unknown tool or parameter."""
        wanted = ChainStep(tool, dict(params or {})).build_params()
        page = ToolPage(get_tool(tool))
        problems = []
        for field in dataclasses.fields(wanted):
            value = getattr(wanted, field.name)
            editor = page.editor(field.name)
            _set_editor(editor, value)
            shown = getattr(page.params(), field.name)
            if shown != value:
                what = "model" if field.name == "model" else field.name.replace("_", " ")
                problems.append(f"{page.spec.title}: {what} {value!r} is not available here, using {shown!r}")
            _watch(editor, self._refresh_chain)
        self._pages.append(page)
        self._steps.addWidget(page)
        self._refresh_chain(len(self._pages) - 1)
        return problems

    def _remove_step(self) -> None:
        row = self.chain_list.currentRow()
        if 0 <= row < len(self._pages):
            self._remove_page(self._pages[row])
            self._refresh_chain(min(row, len(self._pages) - 1))

    def _remove_page(self, page: ToolPage) -> None:
        self._pages.remove(page)
        self._steps.removeWidget(page)
        page.deleteLater()

    def _move_step(self, offset: int) -> None:
        row = self.chain_list.currentRow()
        target = row + offset
        if 0 <= row < len(self._pages) and 0 <= target < len(self._pages):
            self._pages[row], self._pages[target] = self._pages[target], self._pages[row]
            self._refresh_chain(target)

    def _refresh_chain(self, select: int | None = None) -> None:
        """Rewrite the step list from the pages (after an edit, add, remove or move) and select ``select``."""
        row = self.chain_list.currentRow() if select is None else select
        with QSignalBlocker(self.chain_list):
            self.chain_list.clear()
            for number, page in enumerate(self._pages, 1):
                values = [str(v) if k == "model" else f"{k.replace('_', ' ')} {v}"
                          for k, v in dataclasses.asdict(page.params()).items()]
                self.chain_list.addItem(f"{number}. {page.spec.title}: {', '.join(values)}")
                self.chain_list.item(number - 1).setToolTip(self.chain_list.item(number - 1).text())
            self.chain_list.setCurrentRow(row if 0 <= row < len(self._pages) else -1)
        self._show_step(self.chain_list.currentRow())
        needs_mask = any(page.spec.needs_mask for page in self._pages)
        self._input_form.setRowVisible(self.mask_edit, needs_mask)
        self._update_example()

    def showEvent(self, event: QShowEvent) -> None:
        # the model folder may have gained models (a finished training run) since the dialog was last open
        for page in self._pages:
            page.refresh_models()
        super().showEvent(event)

    def _show_step(self, row: int) -> None:
        has_step = 0 <= row < len(self._pages)
        self._steps.setCurrentWidget(self._pages[row] if has_step else self._steps.widget(0))
        self.step_title.setText(f"Step {row + 1}: {self._pages[row].spec.title}" if has_step else "")
        self.step_title.setVisible(has_step)
        self.remove_button.setEnabled(has_step)
        self.up_button.setEnabled(has_step and row > 0)
        self.down_button.setEnabled(has_step and row < len(self._pages) - 1)

    # -- presets ---------------------------------------------------------------------------------------------
    def _preset_folder(self) -> str:
        return self.output_edit.text().strip() or self.input_edit.text().strip() or str(Path.home())

    def _save_preset(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save batch preset", str(Path(self._preset_folder(),
                                              "batch-preset.json")), "Batch presets (*.json)")
        if not path:
            return
        target = Path(path) if Path(path).suffix else Path(path).with_suffix(".json")
        try:
            save_preset(self._options(), target)
        except OSError as error:
            self._show_message(f"Could not save the preset: {error}")
            return
        self._show_message(f"Preset saved as {target}.", error=False)

    def _load_preset(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load batch preset", self._preset_folder(),
                                              "Batch presets (*.json);;All files (*)")
        if not path:
            return
        try:
            options = self._options().with_preset(load_preset(Path(path)))
            for step in options.chain:
                step.build_params()  # check every step before replacing the chain shown
        # with_preset trusts the preset's shape: a hand-edited file can fail in any of these ways
        except (BatchError, ValueError, TypeError, KeyError, AttributeError) as error:
            self._show_message(f"Could not load the preset: {error}")
            return
        problems = self._apply_options(options)
        if problems:
            self._show_message(f"Loaded {Path(path).name}, but: " + "; ".join(problems))
        else:
            self._show_message(f"Loaded {Path(path).name}.", error=False)

    # -- running ---------------------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self._thread is not None

    def start(self) -> bool:
        """Check the settings and start the batch in the background; ``False`` (with the reason shown) when it
        cannot start."""
        if self.is_running:
            return False
        self._show_message("")
        options = self._options()
        try:
            # in the order the dialog is filled in, so the first message is about the first thing to fix
            if not self.input_edit.text().strip():
                raise BatchError("choose an input folder")
            if not self.output_edit.text().strip():
                raise BatchError("choose an output folder")
            options.validate()
            if self._device_busy():
                raise BatchError("the editor is running a tool or generating images: wait for it or cancel it, "
                                 "then start the batch")
            options.output_dir.mkdir(parents=True, exist_ok=True)
            thread = _BatchThread(options, self._runtime_provider())
        except (BatchError, ValueError, OSError) as error:
            text = str(error)
            self._show_message(text[:1].upper() + text[1:] + ("" if text.endswith(".") else "."))
            return False
        thread.file_done.connect(self._on_file, Qt.ConnectionType.QueuedConnection)
        thread.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)
        thread.finished.connect(self._on_thread_finished, Qt.ConnectionType.QueuedConnection)
        self._thread = thread
        self._report = None
        self._progress = None
        self._close_when_done = False
        self.file_table.setRowCount(0)
        self.progress_bar.setRange(0, 0)  # busy until the runner has counted the inputs
        self.progress_bar.setFormat("%v / %m")
        self.current_label.clear()
        self.summary_label.clear()
        self.summary_label.setVisible(False)
        self._set_running(True)
        self._update_stats()
        self._clock.start()
        thread.start()
        return True

    def cancel(self) -> None:
        """Stop the batch: files being written finish, nothing else starts."""
        if self._thread is None:
            return
        self._thread.runner.cancel.cancel()
        self.cancel_button.setEnabled(False)
        self.pause_button.setEnabled(False)
        self.stats_label.setText("Cancelling: finishing the files being written…")

    def _toggle_pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        if self._thread is None:
            return
        if paused:
            self._thread.runner.pause()
        else:
            self._thread.runner.resume()
        self._update_stats()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel a running batch and wait for it, for the application's exit; ``False`` if it is still running
        after ``timeout_ms`` (a tool that ignores its cancel token)."""
        if self._thread is None:
            return True
        self._thread.runner.cancel.cancel()
        return self._thread.wait(timeout_ms)

    def reject(self) -> None:
        """Close (Escape, the window's close button, Close): while running, only after the user agrees to cancel;
        the dialog then closes by itself once the batch has stopped, without blocking the window meanwhile."""
        if self._thread is None:
            super().reject()
            return
        answer = QMessageBox.question(self, "Batch processing", "The batch is still running. Cancel it?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return
        if self._thread is None:  # it ended while the question was open
            super().reject()
            return
        self._close_when_done = True
        self.cancel()

    def _set_running(self, running: bool) -> None:
        self.settings.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.pause_button.setEnabled(running)
        with QSignalBlocker(self.pause_button):
            self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
        self.save_report_button.setEnabled(not running and self._report is not None)
        # live figures while running; the summary takes their place afterwards
        self.stats_label.setVisible(running)
        self.current_label.setVisible(running)

    def _update_stats(self) -> None:
        if self._thread is None or self._thread.runner.cancel.cancelled:
            return
        # the runner leaves pauses out, so files/s and time left are not skewed by one
        active = max(self._thread.runner.active_seconds(), 1e-6)
        elapsed = _duration(active)
        progress = self._progress
        if self._thread.runner.paused.is_set():
            text = f"Paused after {elapsed}: the files already being processed finish first"
        elif progress is None or progress.finished == 0:
            text = f"Starting… {elapsed}"
        else:
            rate = progress.finished / active
            speed = f"{rate:.1f} files/s" if rate >= 1 else f"{1 / rate:.1f} s per file"
            left = (progress.total - progress.finished) / rate
            text = f"{speed} · {elapsed} elapsed · about {_duration(left)} left"
        self.stats_label.setText(text)

    def _on_progress(self, progress: BatchProgress) -> None:
        self._progress = progress
        self.progress_bar.setRange(0, progress.total)
        self.progress_bar.setValue(progress.finished)
        self.current_label.setText(f"Last: {progress.current}")
        self._update_stats()

    def _on_file(self, result: FileResult) -> None:
        table = self.file_table
        scrollbar = table.verticalScrollBar()
        follow = scrollbar.value() == scrollbar.maximum()
        row = table.rowCount()
        table.insertRow(row)
        # image errors start with the file's name, already in the first column
        reason = result.reason.removeprefix(f"{Path(result.input).name}: ")
        items = [QTableWidgetItem(result.input), QTableWidgetItem(result.status), QTableWidgetItem(reason)]
        items[_FILE].setToolTip(result.output or result.input)
        items[_REASON].setToolTip(result.reason)
        if result.status != "done":
            icon = QStyle.StandardPixmap.SP_MessageBoxCritical if result.status == "failed" \
                else QStyle.StandardPixmap.SP_MessageBoxWarning
            items[_STATUS].setIcon(self.style().standardIcon(icon))
        if result.status == "failed":
            for item in items:
                item.setBackground(_FAILED_BACKGROUND)
        for column, item in enumerate(items):
            table.setItem(row, column, item)
        table.setRowHidden(row, self.problems_box.isChecked() and result.status == "done")
        if follow:
            table.scrollToBottom()

    def _filter_rows(self, problems_only: bool) -> None:
        for row in range(self.file_table.rowCount()):
            done = self.file_table.item(row, _STATUS).text() == "done"
            self.file_table.setRowHidden(row, problems_only and done)

    def _on_thread_finished(self) -> None:
        # Every file_done and progress signal of this batch came before: the runner joins its writers first.
        thread, self._thread = self._thread, None
        assert thread is not None
        report, error = thread.report, thread.error
        thread.deleteLater()
        self._clock.stop()
        if report is None:
            self._set_running(False)
            self._show_message(f"The batch stopped: {error}")
        else:
            self._finish(report)
        if self._close_when_done:
            super().reject()

    def _finish(self, report: BatchReport) -> None:
        self._report = report
        self._set_running(False)
        self.progress_bar.setRange(0, max(report.total, 1))  # 0..0 would be the busy indicator
        self.progress_bar.setValue(len(report.files))
        if report.total == 0:
            self.progress_bar.setFormat("No images")
        done, skipped, failed = (report.count(s) for s in ("done", "skipped", "failed"))
        counts = f"{done} done, {skipped} skipped, {failed} failed"
        if report.cancelled:
            text = (f"Cancelled after {_duration(report.elapsed_s)}: {counts}, {report.total - len(report.files)} "
                    "not started. Start again with “Skip existing outputs” to finish the rest.")
        elif report.total == 0:
            text = "No images in the input folder match the file patterns."
        else:
            text = f"Finished in {_duration(report.elapsed_s)}: {counts}."
        path = Path(report.output_dir) / REPORT_NAME
        try:
            report.save(path)
            text += f" Report saved as {path}."
        except OSError as error:
            text += f" The report could not be saved there ({error}): use Save report…"
        self.summary_label.setText(text)
        self.summary_label.setVisible(True)
        self.batch_finished.emit(report)

    # -- after a batch ---------------------------------------------------------------------------------------
    def _save_report_as(self) -> None:
        if self._report is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save batch report",
                                              str(Path(self._report.output_dir) / REPORT_NAME), "JSON (*.json)")
        if not path:
            return
        try:
            self._report.save(Path(path))
        except OSError as error:
            self._show_message(f"Could not save the report: {error}")
            return
        self._show_message(f"Report saved as {path}.", error=False)

    def _open_output(self) -> None:
        folder = Path(self.output_edit.text().strip()).expanduser()
        if not folder.is_dir():
            self._show_message(f"The output folder {folder} does not exist yet.")
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder.resolve())))

    def _show_message(self, text: str, error: bool = True) -> None:
        self.message_label.setText(text)
        self.message_label.setStyleSheet(_ERROR_STYLE if error else "")
        self.message_label.setVisible(bool(text))
