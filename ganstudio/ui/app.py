"""Start the GUI: ``ganstudio [FILES]`` and ``python -m ganstudio`` end up here."""
from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from ganstudio import __version__
from ganstudio.ui.main_window import APP_TITLE, MainWindow
from ganstudio.ui.resources import app_icon, apply_dark_theme

log = logging.getLogger(__name__)


def install_excepthook(window: MainWindow) -> None:
    """Show unexpected errors in Python slots to the user and keep running, instead of aborting the app."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, error, tb)
            return
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, error, tb)))
        window.show_error(f"Unexpected error: {error or kind.__name__}\n\nDetails were written to the console.")

    sys.excepthook = hook


def _save_screenshot_and_quit(app: QApplication, window: MainWindow, files: list[str], path: Path,
                              worker_ok: bool) -> None:
    app.processEvents()
    opened = len(window.documents) == len(files)
    saved = window.grab().save(str(path))
    if not saved:
        log.error("could not write the screenshot %s", path)
    app.exit(0 if opened and saved and worker_ok else 1)


def _check_worker_then_screenshot(app: QApplication, window: MainWindow, files: list[str], path: Path) -> None:
    """Run a tiny job through the editor's worker first: a bundle whose worker process cannot start fails here."""
    import numpy as np

    from ganstudio.tools.superres import SuperResParams
    from ganstudio.ui.worker import Job

    job = Job("superres", SuperResParams("bicubic", 2), np.zeros((8, 8, 3), np.uint8))

    def ended(job_id: int, *details: object, ok: bool) -> None:
        if job_id == job.id:
            if not ok:
                log.error("the worker did not run a job: %s", details[0] if details else "cancelled")
            _save_screenshot_and_quit(app, window, files, path, ok)

    window.jobs.finished.connect(lambda job_id, *_: ended(job_id, ok=True))
    window.jobs.failed.connect(lambda job_id, message: ended(job_id, message, ok=False))
    window.jobs.cancelled.connect(lambda job_id: ended(job_id, ok=False))
    window.jobs.submit(job)


def run_gui(files: list[str], screenshot: Path | None = None) -> int:
    """Open the main window with ``files`` and run until it closes; the exit code of the event loop.

    With ``screenshot``, save a picture of the window once the files are open and the worker has run a tiny job, and
    quit: 0 when every file opened and the job ran.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    QApplication.setOrganizationName(APP_TITLE)
    QApplication.setApplicationName(APP_TITLE)
    QApplication.setApplicationVersion(__version__)
    QApplication.setDesktopFileName("ganstudio")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setWindowIcon(app_icon())
    apply_dark_theme(app)
    window = MainWindow()
    install_excepthook(window)
    # Ctrl+C in the terminal closes the window the normal way (asking about unsaved work). Python handles signals
    # only between bytecodes, so a timer lets the interpreter run now and then while Qt waits for events.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(250)
    window.show()
    # The worker process imports torch for a few seconds: start it now, so the first Run does not wait for it.
    QTimer.singleShot(0, window.jobs.warm_up)
    # Open after the event loop starts, so the window is on screen (and laid out) before a big file loads. The
    # screenshot follows in the same call: files load in the background while the event loop runs on, so a timer
    # of its own would fire before they are open.
    def open_then_screenshot() -> None:
        window.open_files(files)
        if screenshot is not None:
            _check_worker_then_screenshot(app, window, files, screenshot)

    QTimer.singleShot(0, open_then_screenshot)
    code = app.exec()
    if not window.shutdown():
        # A tool ignored its cancel token; exiting the interpreter with the worker thread still in Python code
        # would abort with a Qt error, so leave at once: there is nothing left to save.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
