"""The one background thread that owns the device and runs tool jobs, one at a time, in submission order.

Jobs reach the worker through a queued signal, so the worker thread's event queue is the job queue. Results,
progress and errors come back through queued signals; the UI thread never runs a model and never waits on the
worker, except briefly at shutdown after cancelling everything.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from ganstudio.engine import Runtime
from ganstudio.engine.cancel import Cancelled, CancelToken
from ganstudio.imaging import ImageError
from ganstudio.tools import get_tool

log = logging.getLogger(__name__)

_job_ids = itertools.count(1)

#: Progress reports closer together than this are dropped (except the last), so a tool reporting per row
#: cannot flood the UI thread's event queue.
PROGRESS_INTERVAL_S = 0.05


@dataclass
class Job:
    """A tool run. The image and mask are copied on creation: the document may change while the job runs."""

    tool: str
    params: Any
    image: np.ndarray
    mask: np.ndarray | None = None
    runtime: Runtime = field(default_factory=Runtime)
    cancel: CancelToken = field(default_factory=CancelToken)
    id: int = field(default_factory=lambda: next(_job_ids))
    #: Work other than the tool's run (a pose detection), called like ``ToolSpec.run``; its result may be any
    #: object and is passed on as it is.
    function: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        self.image = self.image.copy()
        if self.mask is not None:
            self.mask = self.mask.copy()


def describe_error(error: BaseException) -> str:
    """A one-line message for the user."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        return "Out of memory: try a smaller tile size in Preferences, the CPU, or a smaller image."
    if isinstance(error, (ImageError, ValueError, RuntimeError)) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class JobRunner(QObject):
    """Lives in the worker thread; every slot here runs there."""

    started = Signal(int)
    progress = Signal(int, float, str)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)

    @Slot(object)
    def run(self, job: Job) -> None:
        if job.cancel.cancelled:
            self.cancelled.emit(job.id)
            return
        self.started.emit(job.id)
        last = 0.0

        def report(fraction: float, message: str) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL_S or fraction >= 1.0:
                last = now
                self.progress.emit(job.id, float(fraction), message)

        try:
            function = job.function if job.function is not None else get_tool(job.tool).run
            result = function(job.image, job.params, mask=job.mask, progress=report, cancel=job.cancel,
                              runtime=job.runtime)
            job.cancel.raise_if_cancelled()
            if job.function is None and (not isinstance(result, np.ndarray) or result.ndim not in (2, 3)):
                raise RuntimeError(f"the {job.tool} tool returned no image")
        except Cancelled:
            self.cancelled.emit(job.id)
        except Exception as error:  # noqa: BLE001 - any failure of a tool must reach the user, not kill the thread
            log.exception("job %d (%s) failed", job.id, job.tool)
            self.failed.emit(job.id, describe_error(error))
        else:
            self.finished.emit(job.id, result)


class JobQueue(QObject):
    """The UI-thread side: submit, cancel, and signals re-emitted in the UI thread."""

    started = Signal(int)
    progress = Signal(int, float, str)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)
    _submit = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: dict[int, Job] = {}
        self._running: int | None = None
        self._thread = QThread()
        self._thread.setObjectName("ganstudio-worker")
        self._runner = JobRunner()
        self._runner.moveToThread(self._thread)
        self._thread.finished.connect(self._runner.deleteLater)
        self._submit.connect(self._runner.run)
        self._runner.started.connect(self._on_started)
        self._runner.progress.connect(self._on_progress)
        self._runner.finished.connect(self._on_finished)
        self._runner.failed.connect(self._on_failed)
        self._runner.cancelled.connect(self._on_cancelled)
        self._thread.start()

    def submit(self, job: Job) -> int:
        if not self._thread.isRunning():
            raise RuntimeError("the worker has been shut down")
        self._jobs[job.id] = job
        self._submit.emit(job)
        return job.id

    def cancel(self, job_id: int) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            job.cancel.cancel()

    def cancel_all(self) -> None:
        for job in self._jobs.values():
            job.cancel.cancel()

    def is_active(self, job_id: int) -> bool:
        return job_id in self._jobs

    @property
    def running_job(self) -> int | None:
        return self._running

    @property
    def busy(self) -> bool:
        """Whether any job (a tool's, Generate Images', a pose detection) is running or waiting: the device is
        taken until the last one has ended."""
        return bool(self._jobs)

    @property
    def queued_count(self) -> int:
        """Jobs submitted but not started yet."""
        return len(self._jobs) - (self._running is not None)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything and stop the thread; ``False`` if a tool ignored its cancel token past the timeout."""
        self.cancel_all()
        self._thread.quit()
        stopped = self._thread.wait(timeout_ms)
        if stopped:
            self._jobs.clear()
            self._running = None
        return stopped

    def _on_started(self, job_id: int) -> None:
        self._running = job_id
        self.started.emit(job_id)

    def _on_progress(self, job_id: int, fraction: float, message: str) -> None:
        if job_id in self._jobs:
            self.progress.emit(job_id, fraction, message)

    def _done(self, job_id: int) -> bool:
        if self._running == job_id:
            self._running = None
        return self._jobs.pop(job_id, None) is not None

    def _on_finished(self, job_id: int, result: object) -> None:
        if self._done(job_id):
            self.finished.emit(job_id, result)

    def _on_failed(self, job_id: int, message: str) -> None:
        if self._done(job_id):
            self.failed.emit(job_id, message)

    def _on_cancelled(self, job_id: int) -> None:
        if self._done(job_id):
            self.cancelled.emit(job_id)
