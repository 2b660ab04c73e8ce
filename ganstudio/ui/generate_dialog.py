"""File ▸ Generate Images…: new pictures from a user's ``generate`` model, each opened as a new, unsaved image.

The model runs in the editor's worker like any tool (one job per picture), so the window stays responsive and
Esc cancels; :class:`ImageGenerator` keeps track of those jobs, :class:`GenerateDialog` is the form.
"""
from __future__ import annotations

import random
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from ganstudio.engine import Runtime
from ganstudio.models import get_registry
from ganstudio.tools import generate
from ganstudio.ui.worker import Job, JobQueue

#: What a generation job carries as its image: generation takes none.
_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)
MAX_COUNT = 64


class ImageGenerator(QObject):
    """Submits one worker job per picture and hands each finished picture to ``open_picture(pixels, title)``.

    ``blocked`` says why nothing may start now (a batch holds the device), or "" when generating may start."""

    #: Every picture of the requests made so far is done, failed or cancelled.
    idle = Signal()
    failed = Signal(str)

    def __init__(self, jobs: JobQueue, runtime: Callable[[], Runtime],
                 open_picture: Callable[[np.ndarray, str], object], parent: QObject | None = None,
                 blocked: Callable[[], str] | None = None) -> None:
        super().__init__(parent)
        self.blocked = blocked or (lambda: "")
        self._jobs = jobs
        self._runtime = runtime
        self._open_picture = open_picture
        #: job id -> the title of the picture it makes
        self._pending: dict[int, str] = {}
        jobs.finished.connect(self._on_finished)
        jobs.failed.connect(self._on_failed)
        jobs.cancelled.connect(self._on_cancelled)

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def generate(self, model: str, count: int, seed: int) -> list[int]:
        """Queue ``count`` pictures from ``model`` with the seeds ``seed``, ``seed + 1``, ...; their job ids (none
        while :attr:`blocked` gives a reason)."""
        if self.blocked():
            return []
        ids = []
        for index in range(count):
            picture_seed = (seed + index) % (generate.MAX_SEED + 1)
            job = Job(generate.TOOL.name, generate.GenerateParams(model, picture_seed), _NO_IMAGE,
                      runtime=self._runtime(), function=generate.TOOL.run)
            self._pending[job.id] = f"{model}-{picture_seed}"
            ids.append(self._jobs.submit(job))
        return ids

    def _finish(self, job_id: int, picture: np.ndarray | None = None, error: str = "") -> None:
        title = self._pending.pop(job_id, None)
        if title is None:
            return  # a tool's job, not ours
        if picture is not None:
            self._open_picture(picture, title)
        elif error:
            self.failed.emit(error)
        if not self._pending:
            self.idle.emit()

    def _on_finished(self, job_id: int, result: object) -> None:
        self._finish(job_id, picture=result if isinstance(result, np.ndarray) else None)

    def _on_failed(self, job_id: int, message: str) -> None:
        self._finish(job_id, error=message)

    def _on_cancelled(self, job_id: int) -> None:
        self._finish(job_id)


class GenerateDialog(QDialog):
    """Non-modal: a ``generate`` model, how many pictures and the seed of the first."""

    def __init__(self, generator: ImageGenerator, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Generate Images")
        self.generator = generator
        self.model_combo = QComboBox()
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, MAX_COUNT)
        self.count_spin.setValue(4)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, generate.MAX_SEED)
        self.seed_spin.setToolTip("The same model and seed give the same picture again; each further picture "
                                  "takes the next seed")
        random_button = QPushButton("Random")
        random_button.setAutoDefault(False)
        random_button.clicked.connect(lambda: self.seed_spin.setValue(random.randint(0, generate.MAX_SEED)))
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_spin, 1)
        seed_row.addWidget(random_button)
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        self.info_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.generate_button = buttons.addButton("Generate", QDialogButtonBox.ButtonRole.ActionRole)
        self.generate_button.clicked.connect(self.generate)
        buttons.rejected.connect(self.close)
        form = QFormLayout()
        form.addRow("Model", self.model_combo)
        form.addRow("Pictures", self.count_spin)
        form.addRow("Seed", seed_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.info_label)
        layout.addWidget(buttons)
        self._failures = 0
        generator.idle.connect(self._on_idle)
        generator.failed.connect(self._on_failed)
        self.refresh_models()

    def refresh_models(self, keep: str | None = None) -> None:
        """Re-read the registry (a model may have just been trained), keeping or choosing ``keep``."""
        keep = keep if keep is not None else self.model_combo.currentData()
        self.model_combo.clear()
        for model in get_registry().for_task(generate.TOOL.task):
            self.model_combo.addItem(model.label, model.name)
        self.model_combo.setCurrentIndex(max(self.model_combo.findData(keep), 0))
        has_models = self.model_combo.count() > 0
        self.generate_button.setEnabled(has_models and not self.generator.busy)
        self.info_label.setText("" if has_models else "No picture generator yet. Train one with File ▸ Train a "
                                                      "Model… and “Generate new images like my folder”.")

    def generate(self) -> list[int]:
        model = self.model_combo.currentData()
        if not model or self.generator.busy:
            return []
        reason = self.generator.blocked()
        if reason:
            self.info_label.setText(reason)
            return []
        count, seed = self.count_spin.value(), self.seed_spin.value()
        self._failures = 0
        ids = self.generator.generate(model, count, seed)
        # the next click makes new pictures rather than the same ones again
        self.seed_spin.setValue((seed + count) % (generate.MAX_SEED + 1))
        self.generate_button.setEnabled(False)
        self.info_label.setText(f"Generating {count} picture{'s' if count > 1 else ''}; each opens as a new image.")
        return ids

    def _on_failed(self, message: str) -> None:
        self._failures += 1

    def _on_idle(self) -> None:
        self.generate_button.setEnabled(self.model_combo.count() > 0)
        self.info_label.setText("Done: the pictures are open as new, unsaved images." if not self._failures else
                                "The model could not make the pictures (see the message).")
