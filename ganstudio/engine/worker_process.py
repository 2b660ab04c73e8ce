"""Tool jobs in a separate process, so that the editor's UI thread never waits for the worker's GIL.

A job's Python-bound steps (a tool's per-row loops, a pose refinement) held the GIL long enough in a worker
thread to stall the event loop for 150-400 ms. Here the jobs run in a child process (started with ``spawn``:
forking a process that holds Qt and torch threads is unsafe), which keeps the model cache, one job at a time.
Images go both ways through shared memory, so only a few hundred bytes are pickled per job; progress, the end of a
job and cancel requests are messages on two one-way pipes.

The parent keeps the queue and hands the child one job at a time, so a job cancelled before it starts never
reaches the child, and a job that ignores its cancel request can be ended by stopping the child: the next job
starts a fresh one (its models load again, the queue is not lost).
"""
from __future__ import annotations

import io
import logging
import multiprocessing
import pickle
import queue
import threading
from collections import deque
from dataclasses import dataclass
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any, Callable

import numpy as np

from .cancel import Cancelled, CancelToken
from .jobs import Job, describe_error, execute, throttled

log = logging.getLogger(__name__)

#: Arrays smaller than this are pickled with the message; shared memory pays off above a few pages.
SHARE_MIN_BYTES = 64 * 1024
#: How long a running job may take to honour a cancel request before the child is stopped.
CANCEL_GRACE_S = 2.0

#: ``on_event(kind, job_id, *details)``, called on the reader thread: ``started``, ``progress`` (fraction,
#: message), ``finished`` (result), ``failed`` (message), ``cancelled``.
EventCallback = Callable[..., None]


# -- arrays through shared memory ------------------------------------------------------------------------------
def _attach_copy(name: str, shape: tuple[int, ...], dtype: str, unlink: bool) -> np.ndarray:
    """The array another process wrote into the shared block ``name``, copied out; the block is freed if
    ``unlink`` (the receiver owns results; the parent frees the inputs it sent when the job ends)."""
    block = shared_memory.SharedMemory(name=name)
    try:
        view = np.ndarray(shape, np.dtype(dtype), buffer=block.buf)
        array = view.copy()
        del view
    finally:
        block.close()
        if unlink:
            _unlink(block)
    return array


def _unlink(block: shared_memory.SharedMemory) -> None:
    try:
        block.unlink()
    except FileNotFoundError:
        pass


class _SharingPickler(pickle.Pickler):
    """Pickles large arrays as references to shared memory blocks it creates (kept in ``blocks``)."""

    def __init__(self, file: io.BytesIO, receiver_unlinks: bool) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.receiver_unlinks = receiver_unlinks
        self.blocks: list[shared_memory.SharedMemory] = []

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is not np.ndarray or obj.nbytes < SHARE_MIN_BYTES or obj.dtype.hasobject:
            return NotImplemented
        block = shared_memory.SharedMemory(create=True, size=obj.nbytes)
        self.blocks.append(block)
        target = np.ndarray(obj.shape, obj.dtype, buffer=block.buf)
        target[...] = obj
        del target
        return _attach_copy, (block.name, obj.shape, obj.dtype.str, self.receiver_unlinks)


def _dumps(message: Any, receiver_unlinks: bool) -> tuple[bytes, list[shared_memory.SharedMemory]]:
    buffer = io.BytesIO()
    pickler = _SharingPickler(buffer, receiver_unlinks)
    try:
        pickler.dump(message)
    except BaseException:
        for block in pickler.blocks:
            block.close()
            _unlink(block)
        raise
    return buffer.getvalue(), pickler.blocks


# -- the child -------------------------------------------------------------------------------------------------
@dataclass
class _Request:
    id: int
    tool: str
    params: Any
    image: np.ndarray
    mask: np.ndarray | None
    runtime: Any
    function: Callable[..., Any] | None
    #: The parent's model registry state (user folder, generation): the child rescans when it changes.
    registry: tuple[Any, int]


def _child_main(requests: Connection, events: Connection) -> None:
    """The worker process: runs one request at a time; a listener thread takes cancel requests meanwhile."""
    from ..models.registry import configure_registry, registry_state

    pending: deque[_Request | None] = deque()
    arrived = threading.Condition()
    tokens: dict[int, CancelToken] = {}
    send_lock = threading.Lock()

    def send(*message: Any, receiver_unlinks: bool = False) -> None:
        data, blocks = _dumps(message, receiver_unlinks)
        with send_lock:
            events.send_bytes(data)
        for block in blocks:  # the parent copies and frees them
            block.close()

    #: cancel requests for jobs that had not started yet (the request may arrive while the job is queued here)
    cancelled_early: set[int] = set()

    def listen() -> None:
        while True:
            try:
                message = requests.recv()
            except (EOFError, OSError):
                message = ("quit",)
            if message[0] == "cancel":
                with arrived:
                    token = tokens.get(message[1])
                    if token is None:
                        cancelled_early.add(message[1])
                if token is not None:
                    token.cancel()
                continue
            with arrived:
                pending.append(message[1] if message[0] == "job" else None)
                arrived.notify()
            if message[0] == "quit":
                for token in list(tokens.values()):
                    token.cancel()
                return

    threading.Thread(target=listen, name="ganstudio-worker-listener", daemon=True).start()
    seen_registry = registry_state()
    send("ready", 0)
    while True:
        with arrived:
            while not pending:
                arrived.wait()
            request = pending.popleft()
        if request is None:
            return
        if request.registry != seen_registry:
            configure_registry(request.registry[0])
            seen_registry = request.registry
        with arrived:
            token = tokens[request.id] = CancelToken()
            if request.id in cancelled_early:
                cancelled_early.discard(request.id)
                token.cancel()
        send("started", request.id)
        try:
            result = execute(request.tool, request.params, request.image, request.mask, request.runtime, token,
                             throttled(lambda fraction, message: send("progress", request.id, fraction, message)),
                             request.function)
        except Cancelled:
            send("cancelled", request.id)
        except Exception as error:  # noqa: BLE001 - any failure of a tool must reach the user, not end the process
            log.exception("job %d (%s) failed", request.id, request.tool)
            send("failed", request.id, describe_error(error))
        else:
            try:
                send("finished", request.id, result, receiver_unlinks=True)
            except Exception as error:  # noqa: BLE001 - e.g. a result that cannot be pickled
                send("failed", request.id, describe_error(error))
        finally:
            with arrived:
                del tokens[request.id]
            request = None


def _child_entry(requests: Connection, events: Connection) -> None:
    from .priority import lower_priority

    lower_priority()
    try:
        _child_main(requests, events)
    except KeyboardInterrupt:
        pass


# -- the parent ------------------------------------------------------------------------------------------------
class WorkerProcess:
    """The parent's side: a job queue, one child process running its head, and a reader thread for its events.

    Every method may be called from any thread; ``on_event`` is called on the reader thread.
    """

    def __init__(self, on_event: EventCallback) -> None:
        self._on_event = on_event
        self._lock = threading.RLock()
        self._queue: deque[Job] = deque()
        self._running: Job | None = None
        self._running_blocks: list[shared_memory.SharedMemory] = []
        self._process: multiprocessing.process.BaseProcess | None = None
        self._requests: Connection | None = None
        self._reader: threading.Thread | None = None
        self._kill_timer: threading.Timer | None = None
        self._closed = False
        #: the job whose cancel request ended in stopping the child
        self._stopping: int | None = None
        self.restarts = 0
        # Copying a photo into shared memory takes tens of milliseconds: the sender thread does it, so submit()
        # returns at once on the UI thread. Everything for the child goes through it, in order (a cancel never
        # overtakes its job).
        self._outbox: queue.SimpleQueue[tuple[Connection, Any] | None] = queue.SimpleQueue()
        threading.Thread(target=self._deliver, name="ganstudio-worker-sender", daemon=True).start()

    # public
    def start(self) -> None:
        """Start the child now (it takes a few seconds to import torch), instead of at the first job."""
        with self._lock:
            if self._process is None and not self._closed:
                self._spawn()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker process has been shut down")
            self._queue.append(job)
            job.cancel.add_callback(lambda job_id=job.id: self.cancel(job_id))
            self._pump()

    def cancel(self, job_id: int) -> None:
        with self._lock:
            for job in list(self._queue):
                if job.id == job_id:
                    self._queue.remove(job)
                    self._emit("cancelled", job_id)
                    return
            if self._running is not None and self._running.id == job_id and self._kill_timer is None:
                self._send(("cancel", job_id))
                self._kill_timer = threading.Timer(CANCEL_GRACE_S, self._stop_if_still_running, (job_id,))
                self._kill_timer.daemon = True
                self._kill_timer.start()

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        """Cancel everything and end the child; ``False`` if it had to be killed."""
        with self._lock:
            self._closed = True
            queued, self._queue = list(self._queue), deque()
            for job in queued:
                self._emit("cancelled", job.id)
            process = self._process
            if self._running is not None:
                self._send(("cancel", self._running.id))
            self._send(("quit",))
            self._outbox.put(None)
        if process is None:
            return True
        process.join(timeout_s)
        clean = not process.is_alive()
        if not clean:
            process.kill()
            process.join(5)
        if self._reader is not None:
            self._reader.join(5)
        self._finish_running("cancelled")
        return clean

    # internals (called with the lock held unless said otherwise)
    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        requests_read, requests_write = context.Pipe(duplex=False)
        events_read, events_write = context.Pipe(duplex=False)
        process = context.Process(target=_child_entry, args=(requests_read, events_write),
                                  name="ganstudio-worker", daemon=True)
        process.start()
        # the child's ends live in the child now; closing ours lets either side see the other end
        requests_read.close()
        events_write.close()
        self._process, self._requests = process, requests_write
        self._reader = threading.Thread(target=self._read, args=(process, events_read),
                                        name="ganstudio-worker-reader", daemon=True)
        self._reader.start()

    def _send(self, message: Any) -> None:
        if self._requests is not None:
            self._outbox.put((self._requests, message))

    def _pump(self) -> None:
        if self._running is not None or not self._queue or self._closed:
            return
        job = self._queue.popleft()
        from ..models.registry import registry_state

        if self._process is None:
            self._spawn()
        self._running, self._running_blocks = job, []
        self._send(_Request(job.id, job.tool, job.params, job.image, job.mask, job.runtime, job.function,
                            registry_state()))

    def _deliver(self) -> None:
        """The sender thread: pickles jobs (their images into shared memory) and sends every message in order."""
        while True:
            item = self._outbox.get()
            if item is None:
                return
            connection, message = item
            try:
                if isinstance(message, _Request):
                    self._deliver_job(connection, message)
                else:
                    connection.send(message)
            except (OSError, ValueError):  # the child has gone; the reader reports it
                pass

    def _deliver_job(self, connection: Connection, request: _Request) -> None:
        try:
            data, blocks = _dumps(("job", request), receiver_unlinks=False)
        except Exception as error:  # noqa: BLE001 - e.g. a function that is not module-level
            self._finish_running("failed", f"This job cannot run in the worker process: {describe_error(error)}",
                                 job_id=request.id)
            return
        with self._lock:
            current = self._running is not None and self._running.id == request.id
            if current:
                self._running_blocks = blocks
        if not current:  # it ended meanwhile (the child crashed, shutdown): nobody will read the blocks
            for block in blocks:
                block.close()
                _unlink(block)
            return
        connection.send_bytes(data)

    def _finish_running(self, kind: str, *details: Any, job_id: int | None = None) -> None:
        with self._lock:
            if job_id is not None and (self._running is None or self._running.id != job_id):
                return  # a late message about a job already ended
            job, blocks = self._running, self._running_blocks
            self._running, self._running_blocks = None, []
            if self._kill_timer is not None:
                self._kill_timer.cancel()
                self._kill_timer = None
            for block in blocks:
                block.close()
                _unlink(block)
            if job is not None:
                self._emit(kind, job.id, *details)
            self._pump()

    def _stop_if_still_running(self, job_id: int) -> None:
        with self._lock:
            process = self._process
            if self._running is None or self._running.id != job_id or process is None:
                return
            self._kill_timer = None
            log.warning("job %d ignored its cancel request for %.1f s: stopping the worker process", job_id,
                        CANCEL_GRACE_S)
            self._stopping = job_id
        process.kill()

    def _read(self, process: multiprocessing.process.BaseProcess, events: Connection) -> None:
        """The reader thread: turns the child's messages into events until the child ends."""
        while True:
            try:
                message = pickle.loads(events.recv_bytes())
            except (EOFError, OSError):
                break
            except Exception as error:  # noqa: BLE001 - a result that cannot be unpickled here
                self._finish_running("failed", describe_error(error))
                continue
            kind, job_id, *details = message
            if kind == "ready":
                continue
            if kind in ("started", "progress"):
                with self._lock:
                    current = self._running is not None and self._running.id == job_id
                if current:
                    self._emit(kind, job_id, *details)
            else:
                self._finish_running(kind, *details, job_id=job_id)
        events.close()
        process.join(5)
        with self._lock:
            if self._process is not process:
                return
            self._process, self._requests = None, None
            stopped_by_us = self._stopping
            self._stopping = None
            if self._running is None or self._closed:
                return
            if stopped_by_us == self._running.id:
                kind, details = "cancelled", ()
            else:
                kind = "failed"
                details = (f"The worker process stopped unexpectedly (exit code {process.exitcode}); "
                           "the next job starts a new one.",)
            self.restarts += 1
        self._finish_running(kind, *details)

    def _emit(self, kind: str, job_id: int, *details: Any) -> None:
        try:
            self._on_event(kind, job_id, *details)
        except Exception:  # noqa: BLE001 - a broken listener must not stop the queue
            log.exception("worker event %s for job %d", kind, job_id)
