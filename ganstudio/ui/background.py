"""File work (opening, saving) off the UI thread, for callers that need its result before going on.

Reading or writing a large TIFF takes 100-500 ms (decoding, compressing, the fsync of an atomic write): run on the
UI thread, that is a frozen window. Here it runs in a thread while the UI thread keeps its event loop going for
painting and timers. Keyboard and mouse input waits until the work is done, so nothing the user does can change or
close the document half-way, and the caller gets its answer back as if the call had been synchronous.
"""
from __future__ import annotations

import threading
from typing import Callable, TypeVar

from PySide6.QtCore import QEventLoop, QTimer

T = TypeVar("T")

#: How often the waiting loop looks whether the work is done.
_POLL_MS = 5


def run_in_background(work: Callable[[], T]) -> T:
    """``work()`` on a background thread, its result (or exception) returned (raised) here once it is done."""
    outcome: dict[str, object] = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as error:  # noqa: BLE001 - re-raised on the caller's thread
            outcome["error"] = error
        finally:
            done.set()

    thread = threading.Thread(target=target, name="ganstudio-file-io", daemon=True)
    thread.start()
    if not done.wait(0.005):  # small files are done before a loop is worth starting
        loop = QEventLoop()
        poll = QTimer()
        poll.setInterval(_POLL_MS)
        poll.timeout.connect(lambda: done.is_set() and loop.quit())
        poll.start()
        if not done.is_set():
            loop.exec(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        poll.stop()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]  # type: ignore[return-value]
