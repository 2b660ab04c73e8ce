"""Edit the preferences; the caller saves and applies them when the dialog is accepted."""
from __future__ import annotations

import dataclasses

from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from ganstudio.config import DEVICES, PRECISIONS, Preferences, default_model_dir
from ganstudio.engine import cuda_available

_DEVICE_LABELS = {"auto": "Automatic (GPU when present)", "cpu": "CPU", "cuda": "CUDA GPU"}
_PRECISION_LABELS = {"auto": "Automatic", "fp32": "Full (fp32)", "fp16": "Half (fp16)", "bf16": "bfloat16"}


class PreferencesDialog(QDialog):
    def __init__(self, prefs: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self._prefs = prefs

        self.device = QComboBox()
        for device in DEVICES:
            self.device.addItem(_DEVICE_LABELS[device], device)
        has_cuda = cuda_available()
        if not has_cuda:
            model: QStandardItemModel = self.device.model()
            model.item(self.device.findData("cuda")).setEnabled(False)
        self.device.setCurrentIndex(max(self.device.findData(prefs.device), 0))

        self.precision = QComboBox()
        for precision in PRECISIONS:
            self.precision.addItem(_PRECISION_LABELS[precision], precision)
        self.precision.setCurrentIndex(max(self.precision.findData(prefs.precision), 0))
        self.precision.setToolTip("Half precision is used only on a GPU, and only for models that support it.")

        self.tile = QSpinBox()
        self.tile.setRange(0, 8192)
        self.tile.setSingleStep(64)
        self.tile.setSuffix(" px")
        self.tile.setSpecialValueText("Automatic")
        self.tile.setValue(prefs.tile)
        self.tile.setToolTip("Large images are processed in tiles of this size; smaller tiles use less memory.")

        self.model_dir = QLineEdit(prefs.model_dir)
        self.model_dir.setPlaceholderText(str(default_model_dir()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.model_dir, 1)
        folder_row.addWidget(browse)

        self.max_megapixels = QSpinBox()
        self.max_megapixels.setRange(1, 10_000)
        self.max_megapixels.setSuffix(" MP")
        self.max_megapixels.setValue(prefs.max_megapixels)
        self.max_megapixels.setToolTip("Larger files are refused when opened (protects against decompression bombs).")

        self.jpeg_quality = QSpinBox()
        self.jpeg_quality.setRange(1, 100)
        self.jpeg_quality.setValue(prefs.jpeg_quality)

        form = QFormLayout()
        form.addRow("Device", self.device)
        if not has_cuda:
            form.addRow("", QLabel("No CUDA GPU was found: models run on the CPU."))
        form.addRow("Precision", self.precision)
        form.addRow("Tile size", self.tile)
        form.addRow("Model folder", folder_row)
        form.addRow("Largest image", self.max_megapixels)
        form.addRow("JPEG quality", self.jpeg_quality)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.setMinimumWidth(460)

    def _browse(self) -> None:
        start = self.model_dir.text() or str(default_model_dir())
        folder = QFileDialog.getExistingDirectory(self, "Model folder", start)
        if folder:
            self.model_dir.setText(folder)

    def preferences(self) -> Preferences:
        """The edited preferences; fields the dialog does not show (recent files) are carried over."""
        return dataclasses.replace(
            self._prefs,
            device=self.device.currentData(),
            precision=self.precision.currentData(),
            tile=self.tile.value(),
            model_dir=self.model_dir.text().strip(),
            max_megapixels=self.max_megapixels.value(),
            jpeg_quality=self.jpeg_quality.value(),
            recent_files=list(self._prefs.recent_files),
        )
