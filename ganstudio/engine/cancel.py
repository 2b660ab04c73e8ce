"""Cooperative cancellation shared by the worker thread, the tools and the tiling loop."""
from __future__ import annotations

import threading
from typing import Callable

#: ``progress(fraction, message)``: fraction in [0, 1], message a few words for the status bar.
ProgressCallback = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised inside a job when its cancel token was set; the job leaves no result behind."""


class CancelToken:
    """Set from any thread; checked by long operations between units of work (tiles, files, steps)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self) -> None:
        self._event.set()
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def add_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when the token is cancelled (at once if it already is): a job running in another
        process hears of its cancel this way."""
        if self._event.is_set():
            callback()
        else:
            self._callbacks.append(callback)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")


def check(cancel: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if ``cancel`` is set; a ``None`` token never cancels."""
    if cancel is not None:
        cancel.raise_if_cancelled()


def report(progress: ProgressCallback | None, fraction: float, message: str = "") -> None:
    if progress is not None:
        progress(min(max(fraction, 0.0), 1.0), message)
