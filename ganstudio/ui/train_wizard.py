"""The training wizard: fine-tune super-resolution on the user's own photos, from folder to a model in the tool.

Training never runs in this process: the Train page starts ``python -m ganstudio train superres ...`` as a
QProcess and reads its JSON-lines events (:mod:`ganstudio.train.events`), so a crash or out-of-memory in training
cannot take the editor down. Pause stops the child with SIGTERM (it checkpoints first); Resume runs the same
command with ``--resume``. The run's command is saved in its folder and the folder is remembered in the config
folder, so a stopped run can be continued after the app was closed.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QProcess, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QProgressBar, QPushButton,
                               QRadioButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget, QWizard, QWizardPage)

from ganstudio.atomic import write_text_atomic
from ganstudio.config import config_dir, default_model_dir
from ganstudio.models import configure_registry, get_registry
from ganstudio.train.folder_check import MIN_IMAGES, FolderReport, check_folder
from ganstudio.ui.loss_plot import LossPlot

#: The shipped model a super-resolution fine-tune starts from.
BASE_MODEL = "srresnet-x4"
SCALE = 4
DEFAULT_CROP = 96
PRESETS = ("quick", "balanced", "best")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ERROR_STYLE = "color: #e26a6a;"
_OK_STYLE = "color: #6cc46c;"
_STDERR_LINES = 40


def remembered_run_file() -> Path:
    return config_dir() / "training-run.json"


def runs_dir() -> Path:
    return default_model_dir().parent / "runs"


@dataclass
class Machine:
    """What presets are sized for: CPU, or a CUDA GPU and its memory."""
    cuda: bool
    name: str
    memory_gb: float = 0.0

    @classmethod
    def detect(cls) -> Machine:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return cls(True, props.name, props.total_memory / 2**30)
        return cls(False, f"CPU, {os.cpu_count() or 1} cores")

    def describe(self) -> str:
        return f"{self.name} ({self.memory_gb:.0f} GB)" if self.cuda else self.name


@dataclass
class Settings:
    steps: int
    batch: int
    crop: int
    lr: float
    blocks: int
    channels: int
    checkpoint_every: int


def preset_settings(preset: str, machine: Machine, from_base: bool) -> Settings:
    """Steps and model size that finish in minutes (quick) to hours (best) on this machine."""
    level = PRESETS.index(preset)
    if machine.cuda:
        steps = (2_000, 10_000, 40_000)[level]
        batch = 32 if level == 2 and machine.memory_gb >= 12 else 16
    else:
        steps = (300, 1_500, 5_000)[level]
        batch = (8, 8, 16)[level]
    blocks, channels = ((8, 32), (12, 48), (16, 64))[level]
    # Fine-tuning moves already-good weights: a lower rate keeps it from forgetting what it knew.
    return Settings(steps, batch, DEFAULT_CROP, 5e-5 if from_base else 2e-4, blocks, channels,
                    max(10, steps // 20))


@dataclass
class RunSpec:
    """A run as the Train page starts it; saved as ``wizard.json`` in the run folder for Resume after a restart."""
    run_dir: str
    data: str
    args: list[str]
    total: int

    def command(self, resume: bool) -> list[str]:
        return ["-m", "ganstudio", "train", "superres", *self.args, *(["--resume"] if resume else [])]

    def save(self) -> None:
        write_text_atomic(Path(self.run_dir) / "wizard.json", json.dumps(asdict(self), indent=2) + "\n")
        remembered_run_file().parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(remembered_run_file(), json.dumps({"run_dir": self.run_dir}) + "\n")

    @classmethod
    def remembered(cls) -> RunSpec | None:
        """The last run the wizard started and has not exported or cancelled, if its folder still exists."""
        try:
            run_dir = Path(json.loads(remembered_run_file().read_text(encoding="utf-8"))["run_dir"])
            return cls(**json.loads((run_dir / "wizard.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def forget() -> None:
        remembered_run_file().unlink(missing_ok=True)


def build_spec(data: Path, settings: Settings, from_base: bool, run_dir: Path, usable: int) -> RunSpec:
    args = ["--data", str(data), "--out", str(run_dir), "--scale", str(SCALE), "--steps", str(settings.steps),
            "--batch", str(settings.batch), "--crop", str(settings.crop), "--lr", str(settings.lr),
            "--checkpoint-every", str(settings.checkpoint_every), "--threads", str(os.cpu_count() or 2)]
    if from_base:
        base = get_registry().get(BASE_MODEL, "superres")
        params = base.arch_params
        args += ["--init", str(base.weights), "--blocks", str(params["num_blocks"]),
                 "--channels", str(params["channels"]),
                 "--bicubic-residual" if params.get("bicubic_residual") else "--no-bicubic-residual"]
    else:
        args += ["--blocks", str(settings.blocks), "--channels", str(settings.channels)]
    # Hold out a tenth (up to the default 16) for validation and sample grids; a small folder cannot spare 16.
    every = max(1, min(500, settings.steps // 10))
    args += ["--val-images", str(min(16, usable // 10)), "--val-every", str(every), "--sample-every", str(every),
             "--log-every", str(max(1, min(10, settings.steps // 100)))]
    return RunSpec(str(run_dir), str(data), args, settings.steps)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _button(text: str, slot: Callable[[], object]) -> QPushButton:
    button = QPushButton(text)
    button.setAutoDefault(False)  # Enter in a field must not start or stop anything
    button.clicked.connect(slot)
    return button


def _python_process(parent: QObject) -> QProcess:
    process = QProcess(parent)
    process.setProgram(sys.executable)
    return process


# -- page 1 ------------------------------------------------------------------------------------------------------
class KindPage(QWizardPage):
    def __init__(self) -> None:
        super().__init__()
        self.setTitle("What to train")
        self.setSubTitle("Teach a model your kind of pictures. It then appears in the tool's model list.")
        self.superres_radio = QRadioButton("Fine-tune super-resolution on my photos")
        self.superres_radio.setChecked(True)
        explain = QLabel("Starts from the shipped “Faithful ×4” model and adapts it to your photos, so it "
                         "enlarges pictures like them with more detail.")
        explain.setWordWrap(True)
        explain.setIndent(22)
        self.resume_radio = QRadioButton()
        self.resume_label = QLabel()
        self.resume_label.setWordWrap(True)
        self.resume_label.setIndent(22)
        layout = QVBoxLayout(self)
        layout.addWidget(self.superres_radio)
        layout.addWidget(explain)
        layout.addSpacing(12)
        layout.addWidget(self.resume_radio)
        layout.addWidget(self.resume_label)
        layout.addStretch(1)
        self.remembered: RunSpec | None = None

    def initializePage(self) -> None:
        self.remembered = RunSpec.remembered()
        visible = self.remembered is not None
        self.resume_radio.setVisible(visible)
        self.resume_label.setVisible(visible)
        if self.remembered is not None:
            self.resume_radio.setText(f"Continue the stopped run “{Path(self.remembered.run_dir).name}”")
            self.resume_label.setText(f"Photos from {self.remembered.data}; it goes on from its last checkpoint.")
            self.resume_radio.setChecked(True)

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


class DataPage(QWizardPage):
    checked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Your photos")
        self.setSubTitle(f"A folder of at least {MIN_IMAGES} photos of the kind you want to enlarge "
                         "(sub-folders count too). Nothing in it is changed.")
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("Folder of photos")
        # editingFinished also fires when the page loses focus: only a changed folder is checked again.
        self.folder_edit.editingFinished.connect(self._check_if_changed)
        browse = _button("Browse…", self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.verdict_label = QLabel()
        self.verdict_label.setWordWrap(True)
        font = self.verdict_label.font()
        font.setBold(True)
        self.verdict_label.setFont(font)
        self.problems = QPlainTextEdit()
        self.problems.setReadOnly(True)
        self.problems.setPlaceholderText("Broken, too small and duplicate files are listed here.")
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.verdict_label)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.problems, 1)
        self.report: FolderReport | None = None
        self._number = 0
        self._checked_text = ""
        self._signals = _CheckSignals(self)
        self._signals.progress.connect(self._on_progress)
        self._signals.done.connect(self._on_done)

    @property
    def folder(self) -> Path:
        return Path(self.folder_edit.text().strip()).expanduser()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of photos", self.folder_edit.text() or str(Path.home()))
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
        self.completeChanged.emit()
        if not self.folder_edit.text().strip():
            self.verdict_label.clear()
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
        self.completeChanged.emit()
        self.checked.emit()

    def _show(self, report: FolderReport) -> None:
        verdict = report.verdict(DEFAULT_CROP)
        self.verdict_label.setText(verdict.text)
        self.verdict_label.setStyleSheet(_OK_STYLE if verdict.ok else _ERROR_STYLE)
        self.summary_label.setText(f"{len(report.images) + len(report.broken)} image files: {report.size_summary()}.")
        lines: list[str] = []
        if report.broken:
            lines.append(f"Unreadable ({len(report.broken)}), left out:")
            lines += [f"  {item.path.relative_to(report.folder)}: {item.reason}" for item in report.broken]
        small = report.too_small(DEFAULT_CROP)
        if small:
            lines.append(f"Smaller than {DEFAULT_CROP} px ({len(small)}), left out:")
            lines += [f"  {path.relative_to(report.folder)}" for path in small]
        if report.duplicates:
            lines.append(f"Exact duplicates ({len(report.duplicates)} groups), only the first is used:")
            lines += ["  " + " = ".join(str(p.relative_to(report.folder)) for p in group)
                      for group in report.duplicates]
        self.problems.setPlainText("\n".join(lines) or "No problems found.")

    def isComplete(self) -> bool:
        return self.report is not None and self.report.verdict(DEFAULT_CROP).ok


# -- page 3 ------------------------------------------------------------------------------------------------------
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
        self.base_box = QCheckBox("Start from the shipped “Faithful ×4” model (recommended)")
        self.base_box.toggled.connect(self.apply_preset)

        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 10_000_000)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 512)
        self.crop_spin = QSpinBox()
        self.crop_spin.setRange(16, 1024)
        self.crop_spin.setSingleStep(SCALE)
        self.crop_spin.setToolTip(f"Training crop in pixels, a multiple of {SCALE}; photos smaller than it are left out")
        self.crop_spin.valueChanged.connect(self._update_usable)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-6, 1e-2)
        self.lr_spin.setSingleStep(1e-5)
        self.blocks_spin = QSpinBox()
        self.blocks_spin.setRange(1, 64)
        self.channels_spin = QSpinBox()
        self.channels_spin.setRange(4, 256)
        self.checkpoint_spin = QSpinBox()
        self.checkpoint_spin.setRange(1, 1_000_000)
        self.checkpoint_spin.setToolTip("Steps between checkpoints: how much Pause or a crash can lose at most")

        self.advanced = QGroupBox("Advanced")
        self.advanced.setCheckable(True)
        self.advanced.setChecked(False)
        self.advanced.toggled.connect(self._show_advanced)
        self._advanced_body = QWidget()
        form = QFormLayout(self._advanced_body)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Crop (px)", self.crop_spin)
        form.addRow("Checkpoint every (steps)", self.checkpoint_spin)
        form.addRow("Residual blocks", self.blocks_spin)
        form.addRow("Channels", self.channels_spin)
        QVBoxLayout(self.advanced).addWidget(self._advanced_body)
        self._advanced_body.setVisible(False)

        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        top = QFormLayout()
        top.addRow("Preset", self.preset_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.base_box)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.advanced)
        layout.addStretch(1)
        for spin in (self.steps_spin, self.batch_spin):
            spin.valueChanged.connect(self._update_usable)

    def _show_advanced(self, shown: bool) -> None:
        self._advanced_body.setVisible(shown)

    def initializePage(self) -> None:
        has_base = any(m.name == BASE_MODEL for m in get_registry().for_task("superres"))
        self.base_box.setEnabled(has_base)
        self.base_box.setChecked(has_base)
        self.apply_preset()

    def apply_preset(self) -> None:
        from_base = self.base_box.isChecked()
        settings = preset_settings(self.preset_combo.currentData(), self.machine, from_base)
        self.steps_spin.setValue(settings.steps)
        self.batch_spin.setValue(settings.batch)
        self.crop_spin.setValue(settings.crop)
        self.lr_spin.setValue(settings.lr)
        self.blocks_spin.setValue(settings.blocks)
        self.channels_spin.setValue(settings.channels)
        self.checkpoint_spin.setValue(settings.checkpoint_every)
        # The shipped model's size is fixed (its weights only fit that architecture): show it, read-only.
        if from_base:
            params = get_registry().get(BASE_MODEL, "superres").arch_params
            self.blocks_spin.setValue(params["num_blocks"])
            self.channels_spin.setValue(params["channels"])
        self.blocks_spin.setEnabled(not from_base)
        self.channels_spin.setEnabled(not from_base)
        self._update_usable()

    def settings(self) -> Settings:
        return Settings(self.steps_spin.value(), self.batch_spin.value(), self.crop_spin.value(),
                        self.lr_spin.value(), self.blocks_spin.value(), self.channels_spin.value(),
                        self.checkpoint_spin.value())

    @property
    def report(self) -> FolderReport | None:
        return self.wizard().data_page.report if self.wizard() else None

    def _update_usable(self) -> None:
        report, crop = self.report, self.crop_spin.value()
        if report is None:
            return
        verdict = report.verdict(crop)
        if crop % SCALE:
            text, ok = f"The crop must be a multiple of {SCALE}.", False
        else:
            text, ok = f"{verdict.text} {self.steps_spin.value():,} steps of {self.batch_spin.value()} crops.", verdict.ok
        self.summary_label.setText(text)
        self.summary_label.setStyleSheet("" if ok else _ERROR_STYLE)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        report, crop = self.report, self.crop_spin.value()
        return report is not None and crop % SCALE == 0 and report.verdict(crop).ok

    def validatePage(self) -> bool:
        wizard: TrainingWizard = self.wizard()
        report = wizard.data_page.report
        assert report is not None
        name = f"{re.sub(r'[^a-z0-9]+', '-', report.folder.name.lower()).strip('-') or 'photos'}-x{SCALE}"
        run_dir = runs_dir() / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir.mkdir(parents=True, exist_ok=True)
        usable = len(report.usable(self.crop_spin.value()))
        spec = build_spec(report.folder, self.settings(), self.base_box.isChecked(), run_dir, usable)
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
        self.sample_label = QLabel("Sample pictures (bicubic | model | original) appear here")
        self.sample_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample_label.setMinimumSize(300, 200)
        self.sample_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
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
        views = QHBoxLayout()
        views.addWidget(self.plot, 1)
        views.addWidget(self.sample_label, 1)
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

    @property
    def spec(self) -> RunSpec:
        spec = self.wizard().spec
        assert spec is not None
        return spec

    def initializePage(self) -> None:
        wizard: TrainingWizard = self.wizard()
        self.setSubTitle(f"Run folder: {self.spec.run_dir}")
        self.plot.clear()
        self.progress.setRange(0, self.spec.total)
        self.progress.setValue(0)
        self.start(resume=wizard.resume_next)

    def start(self, resume: bool) -> None:
        if self.process is not None:
            return
        self._buffer, self._stopping, self.last_error = b"", "", ""
        self._stderr.clear()
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
            self.status_label.setText(f"Training on {event.get('train_images')} photos "
                                      f"({event.get('val_images')} held out to measure progress) on "
                                      f"{event.get('device')}.")
        elif kind == "step":
            step, total = int(event["step"]), int(event["total"])
            self.progress.setValue(step)
            self.plot.add(step, event.get("losses", {}))
            rate = float(event.get("it_per_s") or 0)
            left = f" · about {_duration((total - step) / rate)} left" if rate > 0 else ""
            speed = f"{rate:.2f} steps/s" if rate >= 1 else f"{1 / rate:.1f} s per step" if rate > 0 else ""
            self.stats_label.setText(f"Step {step:,} of {total:,} · {speed}{left}")
        elif kind == "validation":
            self.log.appendPlainText(f"step {event['step']}: validation PSNR {event['psnr']:.2f} dB "
                                     f"(best {event['best_psnr']:.2f} dB)")
        elif kind == "sample":
            self._sample_path = str(event["path"])
            self._show_sample()
        elif kind == "warning":
            self.log.appendPlainText(f"warning: {event.get('message', '')}")
        elif kind == "error":
            self.last_error = str(event.get("message", ""))
        self.event_received.emit(event)

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
        self.setSubTitle("It is saved into your model folder and appears in the Super-resolution tool's model list.")
        self.name_edit = QLineEdit()
        self.name_edit.setToolTip("File name: lower-case letters, digits, - and _")
        self.title_edit = QLineEdit()
        self.title_edit.setToolTip("What the tool's model list shows")
        for edit in (self.name_edit, self.title_edit):
            edit.textChanged.connect(self._validate)
        self.latest_box = QCheckBox("Use the last weights rather than the best-measured ones")
        self.save_button = _button("Save model", self.export)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        form.addRow("Title", self.title_edit)
        form.addRow("", self.latest_box)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        self.process: QProcess | None = None
        self.saved_path = ""
        self._output = b""

    def initializePage(self) -> None:
        data = Path(self.wizard().spec.data).name
        slug = re.sub(r"[^a-z0-9]+", "-", data.lower()).strip("-") or "my-photos"
        self.name_edit.setText(f"{slug}-x{SCALE}")
        self.title_edit.setText(f"{data} ×{SCALE}")

    @property
    def weights_path(self) -> Path:
        return self._model_dir() / f"{self.name_edit.text().strip()}.safetensors"

    def _validate(self) -> bool:
        name = self.name_edit.text().strip()
        problem = ""
        if not _NAME.match(name):
            problem = "The name may use lower-case letters, digits, - and _ only."
        elif self.weights_path.exists() or any(m.name == name for m in get_registry().all()):
            problem = f"A model named “{name}” exists already: choose another name."
        elif not self.title_edit.text().strip():
            problem = "Give the model a title."
        self.status_label.setText(problem)
        self.status_label.setStyleSheet(_ERROR_STYLE if problem else "")
        self.save_button.setEnabled(not problem and self.process is None and not self.saved_path)
        return not problem

    def export(self) -> None:
        if not self._validate() or self.process is not None:
            return
        spec: RunSpec = self.wizard().spec
        self._output = b""
        process = _python_process(self)
        process.setArguments(["-m", "ganstudio", "train", "export", "--run", spec.run_dir,
                              "--output", str(self.weights_path), "--name", self.name_edit.text().strip(),
                              "--title", self.title_edit.text().strip(), "--machine", self._machine.describe(),
                              *(["--latest"] if self.latest_box.isChecked() else [])])
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
        self.status_label.setText(f"Saved as {self.saved_path}. Choose “{self.title_edit.text().strip()}” in the "
                                  "Super-resolution tool.")
        self.name_edit.setEnabled(False)
        self.title_edit.setEnabled(False)
        self.completeChanged.emit()
        self.exported.emit(self.saved_path)

    def isComplete(self) -> bool:
        return bool(self.saved_path)


class TrainingWizard(QWizard):
    """Non-modal. ``model_exported`` carries the new weights' path once the registry has been rescanned."""

    KIND, DATA, SETTINGS, TRAIN, FINISH = range(5)
    model_exported = Signal(str)

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
        self.data_page = DataPage()
        self.settings_page = SettingsPage(machine)
        self.train_page = TrainPage()
        self.finish_page = FinishPage(model_dir or default_model_dir, machine)
        for page_id, page in enumerate((self.kind_page, self.data_page, self.settings_page, self.train_page,
                                        self.finish_page)):
            self.setPage(page_id, page)
        self.finish_page.exported.connect(self.model_exported)
        self.resize(980, 700)

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
        return self.train_page.shutdown(timeout_ms)

    def reject(self) -> None:
        # Closing the wizard pauses a run rather than losing it; it is offered again the next time.
        self.train_page.shutdown(15000)
        super().reject()
