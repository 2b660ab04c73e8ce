"""The preferences dialog: values persist across restarts and take effect at once."""
from __future__ import annotations

from ganstudio.config import load_preferences
from ganstudio.engine import cuda_available
from ganstudio.ui import main_window
from ganstudio.ui.main_window import MainWindow
from ganstudio.ui.preferences_dialog import PreferencesDialog


def test_preferences_persist_and_apply_at_once(window, qtbot, tmp_path, monkeypatch):
    rescanned = []
    monkeypatch.setattr(main_window, "configure_registry", lambda folder: rescanned.append(folder))
    window.prefs.add_recent(tmp_path / "kept.png")
    dialog = PreferencesDialog(window.prefs, window)
    qtbot.addWidget(dialog)
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.precision.setCurrentIndex(dialog.precision.findData("fp32"))
    dialog.tile.setValue(256)
    dialog.model_dir.setText(str(tmp_path / "models"))
    dialog.max_megapixels.setValue(64)
    dialog.jpeg_quality.setValue(88)
    edited = dialog.preferences()
    window.apply_preferences(edited)

    loaded = load_preferences()
    assert loaded == edited
    assert (loaded.device, loaded.precision, loaded.tile, loaded.max_megapixels, loaded.jpeg_quality) == \
        ("cpu", "fp32", 256, 64, 88)
    assert loaded.recent_files == [str((tmp_path / "kept.png").resolve())]
    assert rescanned == [tmp_path / "models"]
    assert window.device_label.text().startswith("CPU")

    restarted = MainWindow()
    qtbot.addWidget(restarted)
    try:
        assert restarted.prefs == edited
    finally:
        restarted.shutdown()


def test_cuda_is_offered_only_when_present(qtbot):
    dialog = PreferencesDialog(load_preferences())
    qtbot.addWidget(dialog)
    item = dialog.device.model().item(dialog.device.findData("cuda"))
    assert item.isEnabled() == cuda_available()


def test_tile_zero_reads_as_automatic(qtbot):
    dialog = PreferencesDialog(load_preferences())
    qtbot.addWidget(dialog)
    assert dialog.tile.value() == 0 and dialog.tile.text() == "Automatic"
