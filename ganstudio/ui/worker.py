"""The background worker that owns the device and runs tool jobs, one at a time, in submission order.

By default the jobs run in a worker process (ganstudio.engine.worker_process): a job's Python-bound steps then
cannot hold the GIL the UI thread needs. ``GANSTUDIO_WORKER=thread`` (or ``JobQueue(mode="thread")``) runs them in
a thread of this process instead, which the tests use to swap in fake tools. Either way results, progress and
errors come back as queued signals; the UI thread never runs a model and never waits on the worker, except
briefly at shutdown after cancelling everything.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ganstudio.engine.cancel import Cancelled
from ganstudio.engine.jobs import Job, describe_error, execute, throttled
from ganstudio.engine.worker_process import WorkerProcess

log = logging.getLogger(__name__)

__all__ = ["Job", "JobQueue", "describe_error", "worker_mode"]


def worker_mode() -> str:
    """``process`` unless ``GANSTUDIO_WORKER`` says ``thread``."""
    mode = os.environ.get("GANSTUDIO_WORKER", "process").strip().lower()
    return "thread" if mode == "thread" else "process"


class _JobSignals(QObject):
    """What a worker reports about a job, by job id."""

    started = Signal(int)
    progress = Signal(int, float, str)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)


class JobRunner(_JobSignals):
    """Lives in the worker thread (thread mode); every slot here runs there."""

    @Slot(object)
    def run(self, job: Job) -> None:
        if job.cancel.cancelled:
            self.cancelled.emit(job.id)
            return
        self.started.emit(job.id)
        try:
            result = execute(job.tool, job.params, job.image, job.mask, job.runtime, job.cancel,
                             throttled(lambda fraction, message: self.progress.emit(job.id, fraction, message)),
                             job.function)
        except Cancelled:
            self.cancelled.emit(job.id)
        except Exception as error:  # noqa: BLE001 - any failure of a tool must reach the user, not kill the thread
            log.exception("job %d (%s) failed", job.id, job.tool)
            self.failed.emit(job.id, describe_error(error))
        else:
            self.finished.emit(job.id, result)


class _ProcessEvents(_JobSignals):
    """Lives in the UI thread; emitted from the worker process's reader thread, so every connection is queued."""

    def relay(self, kind: str, job_id: int, *details: Any) -> None:
        getattr(self, kind).emit(job_id, *details)


class JobQueue(_JobSignals):
    """The UI-thread side: submit, cancel, and signals re-emitted in the UI thread."""

    _submit = Signal(object)

    def __init__(self, parent: QObject | None = None, mode: str | None = None) -> None:
        super().__init__(parent)
        self.mode = mode or worker_mode()
        self._jobs: dict[int, Job] = {}
        self._running: int | None = None
        self._open = True
        self._thread: QThread | None = None
        self._process: WorkerProcess | None = None
        if self.mode == "process":
            self._events = _ProcessEvents(self)
            source: QObject = self._events
            self._process = WorkerProcess(self._events.relay)
        else:
            self._thread = QThread()
            self._thread.setObjectName("ganstudio-worker")
            self._runner = JobRunner()
            self._runner.moveToThread(self._thread)
            self._thread.finished.connect(self._runner.deleteLater)
            self._submit.connect(self._runner.run)
            source = self._runner
        source.started.connect(self._on_started)
        source.progress.connect(self._on_progress)
        source.finished.connect(self._on_finished)
        source.failed.connect(self._on_failed)
        source.cancelled.connect(self._on_cancelled)
        if self._thread is not None:
            self._thread.start()

    def warm_up(self) -> None:
        """Start the worker process now rather than at the first job (it needs a few seconds to import torch)."""
        if self._process is not None and self._open:
            self._process.start()

    @property
    def worker_pid(self) -> int | None:
        """The worker process's id while it runs (process mode)."""
        return self._process.pid if self._process is not None else None

    def submit(self, job: Job) -> int:
        if not self._open:
            raise RuntimeError("the worker has been shut down")
        self._jobs[job.id] = job
        if self._process is not None:
            self._process.submit(job)
        else:
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
        self._open = False
        if self._process is not None:
            stopped = self._process.shutdown(timeout_ms / 1000)
        else:
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
