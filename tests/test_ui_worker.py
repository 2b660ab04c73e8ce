"""Tools run in the background worker: results, cancel, errors, and results landing on the right image."""
from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from ganstudio.engine.cancel import report
from ganstudio.tools import TOOLS, get_tool
from ganstudio.tools.superres import SuperResParams
from ganstudio.ui.worker import Job, describe_error

TIMEOUT_MS = 10_000


def _register(monkeypatch, name: str, run) -> None:
    """A fake tool, shaped like the real super-resolution tool but with another ``run``."""
    monkeypatch.setitem(TOOLS, name, dataclasses.replace(get_tool("superres"), name=name, title=name.title(), run=run))


def _slow_run(image, params, mask=None, progress=None, cancel=None, runtime=None):
    # Works in small steps checking the token, as the tiling loop does; gives up after a few seconds
    # so a broken cancel fails the test instead of hanging it.
    for step in range(500):
        cancel.raise_if_cancelled()
        report(progress, step / 500, f"step {step}")
        time.sleep(0.01)
    return image + 1


def _wait_until(qtbot, condition) -> None:
    qtbot.waitUntil(condition, timeout=TIMEOUT_MS)


def test_superres_runs_in_the_worker_and_is_one_undo_step(window, make_image, qtbot, monkeypatch):
    path, original = make_image(height=24, width=32)
    document = window.open_file(path)
    panel = window.tools_panel
    panel.select_tool("superres")
    page = panel.current_page
    page.editor("model").setCurrentIndex(page.editor("model").findData("bicubic"))
    page.editor("scale").setCurrentIndex(page.editor("scale").findData(2))
    threads = []
    real_run = get_tool("superres").run

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real_run(*args, **kwargs)

    monkeypatch.setitem(TOOLS, "superres", dataclasses.replace(get_tool("superres"), run=spy))
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        assert document.busy and not panel.run_button.isEnabled()
    assert threads and threads[0] is not threading.main_thread()
    assert document.pixels.shape == (48, 64, 3)
    assert not document.busy and panel.run_button.isEnabled()
    assert document.undo_stack.count() == 1 and "bicubic" in document.undo_stack.text(0)
    assert "64 × 48" in window.image_label.text()
    window.undo_action.trigger()
    np.testing.assert_array_equal(document.pixels, original)
    window.redo_action.trigger()
    assert document.pixels.shape == (48, 64, 3)


def test_cancel_stops_the_job_and_leaves_the_image_unchanged(window, make_image, qtbot, monkeypatch):
    _register(monkeypatch, "slow", _slow_run)
    path, original = make_image()
    document = window.open_file(path)
    with qtbot.waitSignal(window.jobs.started, timeout=TIMEOUT_MS):
        job_id = window.run_tool("slow", SuperResParams())
    _wait_until(qtbot, lambda: window.job_progress.value() > 0)
    assert window.cancel_button.isVisible() and "step" in window.job_label.text()
    with qtbot.waitSignal(window.jobs.cancelled, timeout=TIMEOUT_MS) as cancelled:
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    assert cancelled.args == [job_id]
    np.testing.assert_array_equal(document.pixels, original)
    assert document.undo_stack.count() == 0 and not document.dirty and not document.busy
    assert not window.cancel_button.isVisible()


def test_a_failing_tool_shows_a_message_and_the_worker_keeps_going(window, make_image, qtbot, monkeypatch):
    def broken(image, params, **kwargs):
        raise ValueError("the model file is damaged")

    _register(monkeypatch, "broken", broken)
    path, original = make_image()
    document = window.open_file(path)
    with qtbot.waitSignal(window.jobs.failed, timeout=TIMEOUT_MS) as failed:
        window.run_tool("broken", SuperResParams())
    assert failed.args[1] == "the model file is damaged"
    messages = [box.text() for box in window.findChildren(QMessageBox) if box.isVisible()]
    assert any("the model file is damaged" in text for text in messages)
    np.testing.assert_array_equal(document.pixels, original)
    assert not document.busy

    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        window.run_tool("superres", SuperResParams("bicubic", 2))
    assert document.width == 2 * original.shape[1]


def test_the_result_goes_to_the_image_that_started_the_job(window, make_image, qtbot, monkeypatch):
    release = threading.Event()

    def gated(image, params, **kwargs):
        release.wait(TIMEOUT_MS / 1000)
        return 255 - image

    _register(monkeypatch, "gated", gated)
    first_path, first_pixels = make_image("first.png")
    second_path, second_pixels = make_image("second.png", seed=1)
    first = window.open_file(first_path)
    second = window.open_file(second_path)
    window.tabs.setCurrentIndex(0)
    window.run_tool("gated", SuperResParams())
    window.tabs.setCurrentIndex(1)
    assert window.tools_panel.run_button.isEnabled()  # only the busy image is locked
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        release.set()
    np.testing.assert_array_equal(first.pixels, 255 - first_pixels)
    np.testing.assert_array_equal(second.pixels, second_pixels)
    assert first.dirty and not second.dirty


def test_a_result_for_a_closed_image_is_dropped(window, make_image, qtbot, monkeypatch):
    release = threading.Event()

    def gated(image, params, **kwargs):
        release.wait(TIMEOUT_MS / 1000)
        return 255 - image

    _register(monkeypatch, "gated", gated)
    path, _ = make_image("first.png")
    other_path, other_pixels = make_image("second.png", seed=1)
    window.open_file(path)
    other = window.open_file(other_path)
    window.tabs.setCurrentIndex(0)
    window.run_tool("gated", SuperResParams())
    assert window.close_tab(0)
    # Closing cancelled the job: the tool's late result is discarded by the worker.
    with qtbot.waitSignal(window.jobs.cancelled, timeout=TIMEOUT_MS):
        release.set()
    assert window.documents == [other]
    np.testing.assert_array_equal(other.pixels, other_pixels)
    assert not window.cancel_button.isVisible()


def test_jobs_work_on_copies():
    image = np.zeros((4, 4, 3), np.uint8)
    mask = np.zeros((4, 4), np.uint8)
    job = Job("superres", SuperResParams(), image, mask)
    image[:] = 7
    mask[:] = 255
    assert not job.image.any() and not job.mask.any()


@pytest.mark.parametrize("error, expected", [
    (MemoryError(), "Out of memory"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "Out of memory"),
    (ValueError("scale must be one of 2, 3, 4\nmore detail"), "scale must be one of 2, 3, 4"),
    (KeyError("x"), "KeyError: 'x'"),
])
def test_errors_become_one_line_messages(error, expected):
    message = describe_error(error)
    assert message.startswith(expected) and "\n" not in message
