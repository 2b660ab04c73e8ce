"""The main window through pytest-qt, offscreen: open, zoom, compare, undo, save, close prompts, drops, errors."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from ganstudio.imaging import read_image


def _messages(window) -> list[str]:
    return [box.text() for box in window.findChildren(QMessageBox) if box.isVisible()]


def test_open_shows_the_image_and_its_size(window, make_image):
    path, pixels = make_image("photo.png")
    document = window.open_file(path)
    assert window.tabs.count() == 1
    np.testing.assert_array_equal(document.pixels, pixels)
    assert window.tabs.tabText(0) == "photo.png"
    assert "64 × 48" in window.image_label.text() and "RGB 8-bit" in window.image_label.text()
    assert "photo.png" in window.windowTitle()
    assert window.zoom_label.text() == "100 %"  # a small image opens at 100 %, not blown up
    assert window.prefs.recent_files[0] == str(path.resolve())


def test_opening_an_open_file_switches_to_its_tab(window, make_image):
    first, _ = make_image("a.png")
    second, _ = make_image("b.png", seed=1)
    document = window.open_file(first)
    window.open_file(second)
    assert window.tabs.currentIndex() == 1
    assert window.open_file(first) is document
    assert window.tabs.count() == 2 and window.tabs.currentIndex() == 0


def test_zoom_actions_and_wheel_change_the_view_scale(window, make_image):
    path, _ = make_image(height=400, width=600)
    window.open_file(path)
    canvas = window.current_canvas
    start = canvas.zoom
    window.zoom_in_action.trigger()
    assert canvas.zoom > start
    window.zoom_out_action.trigger()
    window.zoom_out_action.trigger()
    assert canvas.zoom < start
    window.actual_size_action.trigger()
    assert canvas.zoom == pytest.approx(1.0)
    window.fit_action.trigger()
    assert canvas.zoom == pytest.approx(canvas.fit_zoom())
    shown = canvas.mapToScene(canvas.viewport().rect()).boundingRect()
    assert shown.contains(canvas.sceneRect())

    before = canvas.zoom
    centre = QPointF(canvas.viewport().rect().center())
    wheel = QWheelEvent(centre, canvas.viewport().mapToGlobal(centre), QPoint(), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), wheel)
    assert canvas.zoom == pytest.approx(before * 1.25 ** 2)
    assert window.zoom_label.text() == f"{canvas.zoom * 100:.0f} %"


def test_pixels_turn_crisp_past_200_percent(window, make_image):
    path, _ = make_image()
    window.open_file(path)
    canvas = window.current_canvas
    canvas.set_zoom(1.5)
    assert canvas._image_item.transformationMode() == Qt.TransformationMode.SmoothTransformation
    canvas.set_zoom(4.0)
    assert canvas._image_item.transformationMode() == Qt.TransformationMode.FastTransformation


def test_undo_and_redo_restore_the_pixels(window, make_image):
    path, original = make_image()
    document = window.open_file(path)
    edited = 255 - original
    document.apply_result(edited, "Invert")
    assert document.dirty and window.tabs.tabText(0).endswith("*")
    window.undo_action.trigger()
    np.testing.assert_array_equal(document.pixels, original)
    assert not document.dirty and window.tabs.tabText(0) == document.title
    window.redo_action.trigger()
    np.testing.assert_array_equal(document.pixels, edited)
    assert window.history_view.stack() is document.undo_stack


def test_compare_shows_the_before_image_while_backslash_is_held(window, make_image, qtbot):
    path, original = make_image()
    document = window.open_file(path)
    document.apply_result(255 - original, "Invert")
    canvas = window.current_canvas
    np.testing.assert_array_equal(document.before, original)
    qtbot.keyPress(canvas, Qt.Key.Key_Backslash)
    assert canvas.compare_held and canvas._before_clip.isVisible()
    assert canvas._before_clip.rect().width() == document.width
    qtbot.keyRelease(canvas, Qt.Key.Key_Backslash)
    assert not canvas.compare_held and not canvas._before_clip.isVisible()

    window.split_action.trigger()
    assert canvas.split and canvas._before_clip.rect().width() == pytest.approx(document.width / 2)
    canvas.set_split_position(0.25)
    assert canvas._before_clip.rect().width() == pytest.approx(document.width / 4)


def test_save_as_writes_a_file_that_reads_back_equal(window, make_image, tmp_path, monkeypatch):
    path, original = make_image("in.png")
    document = window.open_file(path)
    document.apply_result(255 - original, "Invert")
    target = tmp_path / "out"  # no suffix: the chosen filter's suffix is added
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "PNG image (*.png)"))
    assert window.save_current_as()
    saved = tmp_path / "out.png"
    np.testing.assert_array_equal(read_image(saved).pixels, 255 - original)
    assert document.path == saved.resolve() and not document.dirty
    np.testing.assert_array_equal(read_image(path).pixels, original)  # the input is untouched

    document.apply_result(original, "Restore")
    assert window.save_current()  # Save goes to the document's own file, in its format
    np.testing.assert_array_equal(read_image(saved).pixels, original)


def test_save_as_jpeg_asks_for_the_quality(window, make_image, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    path, _ = make_image("in.png")
    window.open_file(path)
    target = tmp_path / "out.jpg"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "JPEG image (*.jpg *.jpeg)"))
    monkeypatch.setattr(QInputDialog, "getInt", lambda *a, **k: (80, True))
    assert window.save_current_as()
    assert read_image(target).meta.format == "JPEG"
    assert window.prefs.jpeg_quality == 80


@pytest.mark.parametrize("answer, stays_open", [(QMessageBox.StandardButton.Cancel, True),
                                                (QMessageBox.StandardButton.Discard, False)])
def test_closing_with_unsaved_changes_asks_first(window, make_image, monkeypatch, answer, stays_open):
    path, original = make_image()
    document = window.open_file(path)
    document.apply_result(255 - original, "Invert")
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or answer)
    window.close()
    assert len(asked) == 1
    assert window.isVisible() == stays_open
    np.testing.assert_array_equal(read_image(path).pixels, original)  # nothing was saved either way


def test_closing_a_tab_can_save_first(window, make_image, monkeypatch):
    path, original = make_image()
    document = window.open_file(path)
    document.apply_result(255 - original, "Invert")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Save)
    window.close_action.trigger()
    assert window.tabs.count() == 0
    np.testing.assert_array_equal(read_image(path).pixels, 255 - original)


def test_dropping_image_files_opens_them(window, make_image, tmp_path):
    first, _ = make_image("a.png")
    second, _ = make_image("b.png", seed=1)
    (tmp_path / "notes.txt").write_text("not an image")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in (first, second, tmp_path / "notes.txt")])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert [d.title for d in window.documents] == ["a.png", "b.png"]


def test_an_unreadable_file_is_reported_not_raised(window, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert window.open_file(broken) is None
    assert window.tabs.count() == 0
    assert any("broken.png" in text for text in _messages(window))


def test_unexpected_errors_are_shown_instead_of_aborting(window, monkeypatch):
    import sys

    from ganstudio.ui.app import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook(window)
    try:
        raise KeyError("lost")
    except KeyError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    assert any("Unexpected error" in text and "lost" in text for text in _messages(window))


def test_batch_dialog_opens_from_the_file_menu_and_holds_the_device(window, make_image, qtbot, tmp_path, monkeypatch):
    import time
    from dataclasses import dataclass

    from ganstudio import tools
    from ganstudio.engine.cancel import check
    from ganstudio.tools.base import ToolSpec
    from ganstudio.tools.superres import SuperResParams

    @dataclass
    class WaitParams:
        model: str = "bicubic"

    def wait_for_cancel(image, params, mask=None, progress=None, cancel=None, runtime=None):
        while True:
            check(cancel)
            time.sleep(0.01)

    monkeypatch.setitem(tools.TOOLS, "wait", ToolSpec("wait", "Wait", "superres", WaitParams, wait_for_cancel))
    (tmp_path / "in").mkdir()
    make_image("in/one.png")
    window.batch_action.trigger()
    dialog = window.open_batch_dialog()
    assert dialog.isVisible() and window.open_batch_dialog() is dialog  # one dialog, raised again
    dialog.set_input_folder(tmp_path / "in")
    dialog.set_output_folder(tmp_path / "out")
    assert dialog.add_step("wait", {}) == []
    assert dialog.start()

    path, _ = make_image("photo.png")
    window.open_file(path)
    assert window.run_tool("superres", SuperResParams(scale=2)) is None
    assert any("batch is running" in text for text in _messages(window))

    with qtbot.waitSignal(dialog.batch_finished, timeout=10_000):
        dialog.cancel()
    job = window.run_tool("wait", WaitParams())
    assert job is not None
    # and the other way round: a batch does not start while the editor's job holds the device
    assert not dialog.start() and "editor is running a tool" in dialog.message_label.text()
    with qtbot.waitSignal(window.jobs.cancelled, timeout=10_000):
        window.cancel_running_job()
    assert dialog.start()
    with qtbot.waitSignal(dialog.batch_finished, timeout=10_000):
        dialog.cancel()


def test_about_names_the_torch_build_device_and_precision(window, monkeypatch):
    import torch

    shown = []
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: shown.append(text))
    window.about_action.trigger()
    (text,) = shown
    assert f"torch {torch.__version__}" in text and "Device: " in text and "Precision: " in text
