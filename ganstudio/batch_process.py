"""A batch run in a process of its own, for the editor: the batch's Python-bound steps then never hold the GIL the
editor's UI thread needs (the same reason tool jobs run in ganstudio.engine.worker_process).

:class:`BatchProcess` is used like :class:`~ganstudio.batch.BatchRunner`: ``run()`` blocks the calling thread
until the batch ends and returns its report; ``cancel``, ``pause()``, ``resume()`` and ``active_seconds()`` work from
any thread; ``on_file`` and ``on_progress`` are called on the thread that called ``run()``. The child runs a
BatchRunner (its reader, device and writer stages as they are) at background priority and sends each file's result
and the progress as it goes. Inputs are never touched and outputs are written atomically by the child, so a child
that dies leaves only whole files.
"""
from __future__ import annotations

import logging
import multiprocessing
import threading
from multiprocessing.connection import Connection
from typing import Any, Callable

from .batch import ActiveClock, BatchOptions, BatchProgress, BatchReport, BatchRunner, FileResult
from .engine import CancelToken, Runtime
from .engine.jobs import describe_error

log = logging.getLogger(__name__)


def _child_main(commands: Connection, events: Connection, options: BatchOptions, runtime: Runtime,
                paused: bool) -> None:
    from .engine.priority import lower_priority

    lower_priority()
    send_lock = threading.Lock()

    def send(*message: Any) -> None:
        with send_lock:
            events.send(message)

    runner = BatchRunner(options, runtime, on_file=lambda result: send("file", result),
                         on_progress=lambda progress: send("progress", progress))
    if paused:  # paused before the child had started
        runner.pause()

    def listen() -> None:
        while True:
            try:
                command = commands.recv()
            except (EOFError, OSError):  # the editor has gone: stop
                command = "cancel"
            if command == "cancel":
                runner.cancel.cancel()
                return
            if command == "pause":
                runner.pause()
            elif command == "resume":
                runner.resume()

    threading.Thread(target=listen, name="ganstudio-batch-listener", daemon=True).start()
    try:
        report = runner.run()
    except Exception as error:  # noqa: BLE001 - e.g. an unreadable folder: the editor shows it
        send("error", describe_error(error))
    else:
        send("report", report)


def _child_entry(*args: Any) -> None:
    try:
        _child_main(*args)
    except KeyboardInterrupt:
        pass


class BatchProcess:
    """One batch in a child process, driven like a BatchRunner."""

    def __init__(
        self,
        options: BatchOptions,
        runtime: Runtime | None = None,
        *,
        cancel: CancelToken | None = None,
        on_file: Callable[[FileResult], None] | None = None,
        on_progress: Callable[[BatchProgress], None] | None = None,
    ) -> None:
        # Checked here, in the caller's process, so a bad chain is reported before a child is started.
        BatchRunner(options, runtime)
        self.options = options
        self.runtime = runtime or Runtime()
        self.cancel = cancel or CancelToken()
        self.paused = threading.Event()
        self._on_file = on_file
        self._on_progress = on_progress
        self._clock = ActiveClock()
        self._lock = threading.Lock()
        self._commands: Connection | None = None
        self.pid: int | None = None

    def pause(self) -> None:
        self.paused.set()
        self._clock.pause()
        self._command("pause")

    def resume(self) -> None:
        self.paused.clear()
        self._clock.resume()
        self._command("resume")

    def active_seconds(self) -> float:
        return self._clock.seconds()

    def run(self) -> BatchReport:
        context = multiprocessing.get_context("spawn")
        commands_read, commands_write = context.Pipe(duplex=False)
        events_read, events_write = context.Pipe(duplex=False)
        process = context.Process(target=_child_entry, name="ganstudio-batch", daemon=True,
                                  args=(commands_read, events_write, self.options, self.runtime,
                                        self.paused.is_set()))
        self._clock.start()
        if self.paused.is_set():
            self._clock.pause()
        process.start()
        commands_read.close()
        events_write.close()
        with self._lock:
            self._commands = commands_write
            self.pid = process.pid
        self.cancel.add_callback(lambda: self._command("cancel"))
        outcome: tuple[str, Any] | None = None
        try:
            while outcome is None:
                try:
                    kind, detail = events_read.recv()
                except (EOFError, OSError):
                    break
                if kind == "file" and self._on_file is not None:
                    self._on_file(detail)
                elif kind == "progress" and self._on_progress is not None:
                    self._on_progress(detail)
                elif kind in ("report", "error"):
                    outcome = (kind, detail)
        finally:
            events_read.close()
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
            with self._lock:
                self._commands = None
            commands_write.close()
        if outcome is None:
            raise RuntimeError(f"the batch process stopped unexpectedly (exit code {process.exitcode}); "
                               "the outputs written so far are whole: start again with “Skip existing outputs”")
        kind, detail = outcome
        if kind == "error":
            raise RuntimeError(detail)
        return detail

    def _command(self, command: str) -> None:
        with self._lock:
            if self._commands is None:
                return
            try:
                self._commands.send(command)
            except (OSError, ValueError):  # the child has ended
                pass
