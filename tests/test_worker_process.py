"""Jobs in the worker process: results through shared memory, progress, cancel (polite and forced), a crashed
child, and in the editor a job that is cancelled or applied as one undo step."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from ganstudio.engine import worker_process
from ganstudio.engine.cancel import report
from ganstudio.engine.jobs import Job
from ganstudio.engine.worker_process import WorkerProcess
from ganstudio.tools import get_tool
from ganstudio.tools.superres import SuperResParams

TIMEOUT_S = 60.0  # the child imports torch first: seconds on a loaded 2-core machine
SHM = Path("/dev/shm")


# Module-level, so the child process can import them by name.
def process_id(image, params, mask=None, progress=None, cancel=None, runtime=None):
    return os.getpid()


def slow_polite(image, params, mask=None, progress=None, cancel=None, runtime=None):
    for step in range(1000):
        cancel.raise_if_cancelled()
        report(progress, step / 1000, f"step {step}")
        time.sleep(0.01)
    return image + 1


def slow_deaf(image, params, mask=None, progress=None, cancel=None, runtime=None):
    report(progress, 0.0, "not listening")
    time.sleep(60)
    return image


def crash(image, params, mask=None, progress=None, cancel=None, runtime=None):
    os._exit(3)


def niceness(image, params, mask=None, progress=None, cancel=None, runtime=None):
    return os.getpriority(os.PRIO_PROCESS, 0)


class _SlowLayer(torch.nn.Module):
    def forward(self, x):
        time.sleep(0.02)
        return x + 1


def one_long_forward(image, params, mask=None, progress=None, cancel=None, runtime=None):
    """One model call of about 10 s with no cancel check of its own (a whole image through a big net)."""
    report(progress, 0.0, "one forward")
    net = torch.nn.Sequential(*(_SlowLayer() for _ in range(500)))
    with torch.inference_mode():
        return net(torch.zeros(1)).numpy()


class Events:
    def __init__(self) -> None:
        self.items: list[tuple] = []
        self._lock = threading.Lock()

    def __call__(self, kind, job_id, *details) -> None:
        with self._lock:
            self.items.append((kind, job_id, *details))

    def kinds(self, job_id: int) -> list[str]:
        with self._lock:
            return [item[0] for item in self.items if item[1] == job_id]

    def end(self, job_id: int, timeout_s: float = TIMEOUT_S) -> tuple:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for item in self.items:
                    if item[1] == job_id and item[0] in ("finished", "failed", "cancelled"):
                        return item
            time.sleep(0.01)
        raise AssertionError(f"job {job_id} did not end: {self.kinds(job_id)}")

    def wait_for(self, job_id: int, kind: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while kind not in self.kinds(job_id):
            assert time.monotonic() < deadline, f"no {kind} for job {job_id}"
            time.sleep(0.01)


def _blocks() -> set[str]:
    return {path.name for path in SHM.iterdir() if path.name.startswith("psm_")} if SHM.is_dir() else set()


@pytest.fixture(scope="module")
def worker():
    events = Events()
    process = WorkerProcess(events)
    process.start()
    yield process, events
    process.shutdown()


def test_a_tool_runs_in_the_child_and_its_result_comes_back_through_shared_memory(worker):
    process, events = worker
    before = _blocks()
    image = np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8)  # larger than SHARE_MIN_BYTES
    assert image.nbytes > worker_process.SHARE_MIN_BYTES
    params = SuperResParams("bicubic", 2)
    job = Job("superres", params, image)
    process.submit(job)
    kind, _, result = events.end(job.id)
    assert kind == "finished"
    np.testing.assert_array_equal(result, get_tool("superres").run(image, params))
    assert events.kinds(job.id)[0] == "started" and "progress" in events.kinds(job.id)

    pid_job = Job("superres", params, image[:4, :4], function=process_id)
    process.submit(pid_job)
    kind, _, pid = events.end(pid_job.id)
    assert kind == "finished" and pid == process.pid != os.getpid()
    if SHM.is_dir():
        assert _blocks() <= before, "a shared memory block outlived its job"


def test_a_failing_tool_is_reported_and_the_child_keeps_going(worker):
    process, events = worker
    pid = process.pid
    job = Job("superres", SuperResParams("no-such-model", 4), np.zeros((8, 8, 3), np.uint8))
    process.submit(job)
    kind, _, message = events.end(job.id)
    assert kind == "failed" and "no-such-model" in message
    assert process.pid == pid


def test_cancel_reaches_the_running_job_and_a_queued_one_never_starts(worker):
    process, events = worker
    pid = process.pid
    running = Job("superres", SuperResParams(), np.zeros((8, 8, 3), np.uint8), function=slow_polite)
    queued = Job("superres", SuperResParams(), np.zeros((8, 8, 3), np.uint8), function=slow_polite)
    process.submit(running)
    process.submit(queued)
    events.wait_for(running.id, "progress")
    queued.cancel.cancel()
    assert events.end(queued.id, 1)[0] == "cancelled" and "started" not in events.kinds(queued.id)
    running.cancel.cancel()
    assert events.end(running.id, worker_process.CANCEL_GRACE_S)[0] == "cancelled"
    assert process.pid == pid, "a job that honours its cancel must not cost the child"


def test_cancel_right_after_submit_reaches_the_job_before_it_runs(worker):
    process, events = worker
    job = Job("superres", SuperResParams(), np.zeros((400, 400, 3), np.uint8), function=slow_polite)
    process.submit(job)
    job.cancel.cancel()  # the job may still be on its way to the child
    assert events.end(job.id, worker_process.CANCEL_GRACE_S)[0] == "cancelled"
    assert "progress" not in events.kinds(job.id)


def test_a_long_model_call_is_cancelled_between_its_layers_without_stopping_the_child(worker):
    process, events = worker
    pid = process.pid
    job = Job("superres", SuperResParams(), np.zeros((8, 8, 3), np.uint8), function=one_long_forward)
    process.submit(job)
    events.wait_for(job.id, "progress")
    job.cancel.cancel()
    assert events.end(job.id, worker_process.CANCEL_GRACE_S)[0] == "cancelled"
    assert process.pid == pid and process.restarts == 0


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX scheduling priority")
def test_the_child_runs_at_a_lower_priority_than_the_editor(worker):
    process, events = worker
    job = Job("superres", SuperResParams(), np.zeros((8, 8, 3), np.uint8), function=niceness)
    process.submit(job)
    kind, _, child = events.end(job.id)
    assert kind == "finished" and child > os.getpriority(os.PRIO_PROCESS, 0)


def test_a_job_deaf_to_cancel_is_stopped_and_the_next_job_gets_a_new_child():
    events = Events()
    process = WorkerProcess(events)
    try:
        deaf = Job("superres", SuperResParams(), np.zeros((8, 8, 3), np.uint8), function=slow_deaf)
        process.submit(deaf)
        events.wait_for(deaf.id, "progress")
        first = process.pid
        asked = time.monotonic()
        deaf.cancel.cancel()
        assert events.end(deaf.id)[0] == "cancelled"
        assert time.monotonic() - asked < worker_process.CANCEL_GRACE_S + 10

        crashing = Job("superres", SuperResParams(), np.zeros((8, 8, 3), np.uint8), function=crash)
        process.submit(crashing)
        kind, _, message = events.end(crashing.id)
        assert kind == "failed" and "stopped unexpectedly" in message

        after = Job("superres", SuperResParams(), np.zeros((8, 8, 3), np.uint8), function=process_id)
        process.submit(after)
        kind, _, pid = events.end(after.id)
        assert kind == "finished" and pid not in (first, os.getpid()) and process.restarts == 2
    finally:
        process.shutdown()


def test_a_function_the_child_cannot_import_fails_with_a_message():
    events = Events()
    process = WorkerProcess(events)
    try:
        job = Job("superres", SuperResParams(), np.zeros((8, 8, 3), np.uint8), function=lambda *a, **k: 0)
        process.submit(job)
        kind, _, message = events.end(job.id, 5)
        assert kind == "failed" and "worker process" in message
        after = Job("superres", SuperResParams(), np.zeros((8, 8, 3), np.uint8), function=process_id)
        process.submit(after)
        kind, _, pid = events.end(after.id)
        assert kind == "finished" and pid not in (None, os.getpid()), "the queue goes on with the next job"
    finally:
        process.shutdown()


# -- in the editor -----------------------------------------------------------------------------------------------
@pytest.fixture
def process_window(monkeypatch, request):
    """The editor's window with its jobs in a worker process (the rest of the suite runs them in a thread)."""
    monkeypatch.setenv("GANSTUDIO_WORKER", "process")
    window = request.getfixturevalue("window")
    assert window.jobs.mode == "process"
    return window


def test_in_the_editor_a_process_job_is_one_undo_step_and_cancel_leaves_the_image(process_window, make_image,
                                                                                   qtbot):
    window = process_window
    path, original = make_image(height=200, width=300)
    document = window.open_file(path)
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_S * 1000):
        window.run_tool("superres", SuperResParams("bicubic", 2))
    qtbot.waitUntil(lambda: not document.busy, timeout=5000)
    assert window.jobs.worker_pid not in (None, os.getpid())
    assert document.pixels.shape == (400, 600, 3) and document.undo_stack.count() == 1
    window.undo_action.trigger()
    np.testing.assert_array_equal(document.pixels, original)

    with qtbot.waitSignal(window.jobs.progress, timeout=TIMEOUT_S * 1000):
        window.run_tool("superres", SuperResParams(), function=slow_polite, text="Slow")
    assert window.cancel_button.isVisible()
    with qtbot.waitSignal(window.jobs.cancelled, timeout=TIMEOUT_S * 1000):
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not document.busy, timeout=5000)
    np.testing.assert_array_equal(document.pixels, original)
    assert document.undo_stack.index() == 0 and not window.cancel_button.isVisible()
