"""A batch in a process of its own (as the editor runs it): the same report and outputs as in-process, each file's
result as it is done, pause, resume and cancel from the parent."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from ganstudio.batch import BatchOptions, BatchRunner, ChainStep
from ganstudio.batch_process import BatchProcess
from ganstudio.imaging import read_image

from test_batch import digest, make_folder

TIMEOUT_S = 90.0  # the child imports torch first: seconds on a loaded 2-core machine
CHAIN = [ChainStep("superres", {"model": "bicubic", "scale": 2})]


def run_in_thread(runner) -> tuple[threading.Thread, dict]:
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("report", runner.run()), daemon=True)
    thread.start()
    return thread, outcome


def test_the_child_writes_the_same_outputs_and_reports_every_file_as_it_goes(tmp_path):
    make_folder(tmp_path / "in")
    before = digest(tmp_path / "in")
    reference = BatchRunner(BatchOptions(tmp_path / "in", tmp_path / "ref", CHAIN)).run()
    files, progress, threads = [], [], []
    runner = BatchProcess(BatchOptions(tmp_path / "in", tmp_path / "out", CHAIN),
                          on_file=lambda result: (files.append(result), threads.append(threading.get_ident())),
                          on_progress=progress.append)
    report = runner.run()
    assert runner.pid not in (None, os.getpid())
    assert digest(tmp_path / "in") == before, "inputs are never touched"
    assert digest(tmp_path / "out") == digest(tmp_path / "ref")
    assert (report.count("done"), report.count("failed"), report.total) == (5, 3, 8) and not report.cancelled
    assert sorted((f.input, f.status, f.reason) for f in report.files) == \
        sorted((f.input, f.status, f.reason) for f in reference.files)
    assert sorted(f.input for f in files) == sorted(f.input for f in report.files)
    assert set(threads) == {threading.get_ident()}, "callbacks come on the thread that called run()"
    assert progress[-1].finished == 8 and progress[-1].total == 8


def test_paused_before_it_starts_nothing_is_written_until_resume(tmp_path):
    make_folder(tmp_path / "in", count=4, broken=False)
    runner = BatchProcess(BatchOptions(tmp_path / "in", tmp_path / "out", CHAIN))
    runner.pause()
    thread, outcome = run_in_thread(runner)
    deadline = time.monotonic() + TIMEOUT_S
    while runner.pid is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(6)  # long enough for the child to start and, were it not paused, to finish four tiny files
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert runner.active_seconds() < 0.5, "a pause does not count as batch time"
    runner.resume()
    thread.join(TIMEOUT_S)
    assert outcome["report"].count("done") == 4 and not outcome["report"].cancelled


def test_cancel_stops_the_child_and_leaves_only_whole_outputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for index in range(60):
        Image.fromarray(rng.integers(0, 256, (300, 400, 3), np.uint8)).save(folder / f"img{index:02}.png")
    first_file = threading.Event()
    runner = BatchProcess(BatchOptions(folder, tmp_path / "out", [ChainStep("superres", {"model": "lanczos",
                                                                                          "scale": 4})]),
                          on_file=lambda result: first_file.set())
    thread, outcome = run_in_thread(runner)
    assert first_file.wait(TIMEOUT_S)
    runner.cancel.cancel()
    thread.join(TIMEOUT_S)
    report = outcome["report"]
    assert report.cancelled and len(report.files) < 60
    written = sorted((tmp_path / "out").iterdir())
    assert {path.name for path in written} == {f.input for f in report.files if f.status == "done"}
    for path in written:
        assert read_image(path).pixels.shape == (1200, 1600, 3)


def test_a_batch_that_cannot_run_is_reported_before_a_child_starts(tmp_path):
    with pytest.raises(ValueError):
        BatchProcess(BatchOptions(tmp_path / "missing", tmp_path / "out", [ChainStep("superres", {"scale": 9})]))
