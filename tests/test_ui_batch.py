"""The Batch dialog through pytest-qt, offscreen: a chain with broken files to the end, cancel and resume with
skip-existing, pause, presets, validation, an error inside the batch, and closing while it runs."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox, QPushButton

from ganstudio import batch, tools
from ganstudio.batch import ChainStep
from ganstudio.engine import Runtime
from ganstudio.engine.cancel import check
from ganstudio.tools import superres
from ganstudio.tools.base import ToolSpec
from ganstudio.ui.batch_dialog import REPORT_NAME, BatchDialog
from ganstudio.imaging import read_image


def make_photos(folder, count, broken=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    if broken:
        (folder / "empty.jpg").write_bytes(b"")
        good = (folder / "img0.png").read_bytes()
        (folder / "cut.png").write_bytes(good[: len(good) // 2])
    return folder


@dataclass
class SlowParams:
    model: str = "bicubic"
    delay: float = 0.1


def slow_run(image, params, mask=None, progress=None, cancel=None, runtime=None):
    end = time.monotonic() + params.delay
    while time.monotonic() < end:
        check(cancel)
        time.sleep(0.01)
    return image


@pytest.fixture
def slow_tool(monkeypatch):
    """A tool that takes ``delay`` seconds per image and honours its cancel token, as a model would between tiles."""
    monkeypatch.setitem(tools.TOOLS, "slow", ToolSpec("slow", "Slow", "superres", SlowParams, slow_run))


@pytest.fixture
def open_dialog(qtbot):
    made = []

    def make(**kwargs) -> BatchDialog:
        dialog = BatchDialog(**kwargs)
        qtbot.addWidget(dialog)
        dialog.show()
        made.append(dialog)
        return dialog

    yield make
    for dialog in made:
        assert dialog.shutdown(5000)


def ready(dialog, tmp_path, *steps: tuple[str, dict]) -> BatchDialog:
    dialog.set_input_folder(tmp_path / "in")
    dialog.set_output_folder(tmp_path / "out")
    for tool, params in steps:
        assert dialog.add_step(tool, params) == []
    return dialog


def rows(dialog) -> dict[str, tuple[str, str]]:
    table = dialog.file_table
    return {table.item(r, 0).text(): (table.item(r, 1).text(), table.item(r, 2).text())
            for r in range(table.rowCount())}


def button(dialog, text) -> QPushButton:
    return next(b for b in dialog.findChildren(QPushButton) if b.text() == text)


def test_a_chain_runs_to_the_end_and_lists_every_file(open_dialog, qtbot, tmp_path, monkeypatch):
    make_photos(tmp_path / "in", 4)
    mask = np.zeros((24, 32), np.uint8)
    mask[4:12, 4:12] = 255
    for stem in ("img0", "img1", "img2", "cut", "empty"):  # img3 has no mask
        Image.fromarray(mask).save(tmp_path / "in" / f"{stem}.mask.png")
    runtimes = []
    dialog = open_dialog(runtime_provider=lambda: runtimes.append(Runtime(device="cpu")) or runtimes[-1])
    ready(dialog, tmp_path, ("superres", {"model": "lanczos", "scale": "2"}))  # text values, as from the CLI
    assert not dialog.mask_edit.isVisible()
    add_menu = button(dialog, "Add tool").menu()
    next(a for a in add_menu.actions() if a.text() == tools.TOOLS["inpaint"].title).trigger()
    dialog.step_page(1).editor("radius").setValue(3)
    assert dialog.chain_list.currentRow() == 1 and "radius 3" in dialog.chain_list.item(1).text()
    dialog.hide()
    dialog.show()  # re-reads the models; the step shown stays
    assert dialog.chain_list.currentRow() == 1 and dialog.step_title.text() == "Step 2: Inpainting"
    assert dialog.mask_edit.isVisible()  # inpaint takes its mask from a file beside each image
    dialog.naming_edit.setText("{stem}_{chain}.{ext}")
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("jpeg"))
    assert dialog.quality_spin.isEnabled()
    assert dialog.naming_example.text() == "First: cut.png → cut_superres-inpaint.jpg"
    steps = dialog.chain_steps()
    assert [step.tool for step in steps] == ["superres", "inpaint"]
    assert steps[0].params == {"model": "lanczos", "scale": 2} and steps[1].params["radius"] == 3

    with qtbot.waitSignal(dialog.batch_finished, timeout=15000) as finished:
        assert dialog.start()
        assert dialog.is_running and not dialog.settings.isEnabled() and not dialog.start_button.isEnabled()
    report = finished.args[0]

    assert len(runtimes) == 1 and not dialog.is_running and dialog.start_button.isEnabled()
    listed = rows(dialog)
    assert {name: status for name, (status, _) in listed.items()} == {
        "cut.png": "failed", "empty.jpg": "failed", "img0.png": "done", "img1.png": "done", "img2.png": "done",
        "img3.png": "skipped"}
    assert "truncated" in listed["cut.png"][1] and "empty" in listed["empty.jpg"][1]
    assert "img3.mask.png" in listed["img3.png"][1]
    table = dialog.file_table
    for row in range(table.rowCount()):
        failed = table.item(row, 1).text() == "failed"
        assert (table.item(row, 0).background().style() != Qt.BrushStyle.NoBrush) == failed  # failed rows stand out
        assert (not table.item(row, 1).icon().isNull()) == (table.item(row, 1).text() != "done")

    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [REPORT_NAME] + [f"img{i}_superres-inpaint.jpg" for i in range(3)]
    assert read_image(out / "img0_superres-inpaint.jpg").pixels.shape[:2] == (48, 64)
    saved = json.loads((out / REPORT_NAME).read_text())
    assert saved["summary"] == {"done": 3, "skipped": 1, "failed": 2, "not_started": 0}
    assert report.count("failed") == 2 and not report.cancelled
    assert "3 done, 1 skipped, 2 failed" in dialog.summary_label.text()
    assert str(out / REPORT_NAME) in dialog.summary_label.text()
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum() == 6

    dialog.problems_box.setChecked(True)
    shown = [table.item(r, 0).text() for r in range(table.rowCount()) if not table.isRowHidden(r)]
    assert sorted(shown) == ["cut.png", "empty.jpg", "img3.png"]

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "copy.json"), ""))
    dialog.save_report_button.click()
    assert json.loads((tmp_path / "copy.json").read_text()) == saved
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    dialog.open_output_button.click()
    assert opened == [str(out)]


def test_cancel_leaves_whole_outputs_and_skip_existing_finishes_the_rest(open_dialog, qtbot, tmp_path, slow_tool):
    make_photos(tmp_path / "in", 10, broken=False)
    dialog = ready(open_dialog(), tmp_path, ("slow", {"delay": 0.15}))
    with qtbot.waitSignal(dialog.batch_finished, timeout=15000) as finished:
        assert dialog.start()
        qtbot.waitUntil(lambda: dialog.file_table.rowCount() >= 2, timeout=10000)
        dialog.cancel_button.click()
        assert not dialog.cancel_button.isEnabled()
    report = finished.args[0]

    assert report.cancelled and 2 <= report.count("done") < 10
    written = sorted(p for p in (tmp_path / "out").iterdir() if p.name != REPORT_NAME)
    assert len(written) == report.count("done") == dialog.file_table.rowCount()
    for path in written:  # whole files only: each decodes to its input's pixels
        assert np.array_equal(read_image(path).pixels, read_image(tmp_path / "in" / path.name).pixels)
    assert "Cancelled" in dialog.summary_label.text() and "not started" in dialog.summary_label.text()
    assert json.loads((tmp_path / "out" / REPORT_NAME).read_text())["cancelled"] is True

    # the dialog stays usable: run again with skip-existing to finish
    assert dialog.settings.isEnabled() and dialog.start_button.isEnabled()
    dialog.step_page(0).editor("delay").setValue(0.0)
    dialog.skip_existing_box.setChecked(True)
    with qtbot.waitSignal(dialog.batch_finished, timeout=15000) as finished:
        assert dialog.start()
    second = finished.args[0]
    assert second.ok and second.count("skipped") == len(written) and second.count("done") == 10 - len(written)
    assert len(list((tmp_path / "out").glob("img*.png"))) == 10


def test_pause_holds_the_batch_and_resume_finishes_it(open_dialog, qtbot, tmp_path, slow_tool):
    make_photos(tmp_path / "in", 8, broken=False)
    dialog = ready(open_dialog(), tmp_path, ("slow", {"delay": 0.1}))
    with qtbot.waitSignal(dialog.batch_finished, timeout=15000) as finished:
        assert dialog.start()
        qtbot.waitUntil(lambda: dialog.file_table.rowCount() >= 1, timeout=10000)
        dialog.pause_button.click()
        assert dialog.pause_button.text() == "Resume"
        qtbot.wait(400)  # the image in the tool and those being written still finish
        held = dialog.file_table.rowCount()
        qtbot.wait(600)
        assert dialog.file_table.rowCount() == held < 8
        assert "Paused" in dialog.stats_label.text()
        dialog.pause_button.click()
        assert dialog.pause_button.text() == "Pause"
    assert finished.args[0].ok and finished.args[0].count("done") == 8


def test_a_preset_round_trips_through_the_dialog(open_dialog, tmp_path, monkeypatch):
    dialog = open_dialog()
    dialog.add_step("superres", {"model": "lanczos", "scale": 3})
    dialog.add_step("inpaint", {"radius": 9})
    dialog.chain_list.setCurrentRow(1)
    dialog.up_button.click()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("webp"))
    dialog.quality_spin.setValue(80)
    dialog.naming_edit.setText("{stem}-{chain}.{ext}")
    dialog.patterns_edit.setText("*.jpg; *.png")
    dialog.mask_edit.setText("{stem}_m.png")
    for box in (dialog.recursive_box, dialog.skip_existing_box):
        box.setChecked(True)
    dialog.keep_metadata_box.setChecked(False)
    expected = dialog.chain_steps()
    assert [step.tool for step in expected] == ["inpaint", "superres"]
    assert expected[0].params["radius"] == 9 and expected[1].params == {"model": "lanczos", "scale": 3}

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "look"), ""))
    button(dialog, "Save preset…").click()
    saved = json.loads((tmp_path / "look.json").read_text())
    assert [s["tool"] for s in saved["chain"]] == ["inpaint", "superres"] and "input_dir" not in saved

    other = open_dialog()
    chosen = {"path": tmp_path / "look.json"}
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(chosen["path"]), ""))
    button(other, "Load preset…").click()
    assert other.chain_steps() == expected
    assert other.format_combo.currentData() == "webp" and other.quality_spin.value() == 80
    assert other.naming_edit.text() == "{stem}-{chain}.{ext}" and other.patterns_edit.text() == "*.jpg;*.png"
    assert other.mask_edit.text() == "{stem}_m.png" and other.mask_edit.isVisible()
    assert other.recursive_box.isChecked() and other.skip_existing_box.isChecked()
    assert not other.keep_metadata_box.isChecked()

    # a preset from the CLI keeps values as text; a model that is not installed is named, not swapped silently
    chosen["path"] = tmp_path / "cli.json"
    chosen["path"].write_text(json.dumps({"chain": [{"tool": "superres", "params": {"model": "esrgan-x4",
                                                                                    "scale": "2"}}], "format": "jpg"}))
    button(other, "Load preset…").click()
    fallback = superres.default_model()
    assert other.chain_steps() == [ChainStep("superres", {"model": fallback, "scale": 2})]
    assert other.format_combo.currentData() == "jpeg" and "esrgan-x4" in other.message_label.text()
    assert repr(fallback) in other.message_label.text()

    # a preset the dialog cannot read changes nothing
    chosen["path"] = tmp_path / "bad.json"
    chosen["path"].write_text(json.dumps({"chain": [{"tool": "blur"}]}))
    button(other, "Load preset…").click()
    assert "unknown tool 'blur'" in other.message_label.text()
    assert other.chain_steps() == [ChainStep("superres", {"model": fallback, "scale": 2})]


def test_validation_errors_start_nothing(open_dialog, qtbot, tmp_path):
    dialog = ready(open_dialog(), tmp_path, ("superres", {}))
    with qtbot.assertNotEmitted(dialog.batch_finished, wait=100):
        assert not dialog.start()
        assert "does not exist" in dialog.message_label.text() and dialog.message_label.isVisible()
        assert not dialog.is_running and not (tmp_path / "out").exists() and dialog.start_button.isEnabled()

        make_photos(tmp_path / "in", 1, broken=False)
        dialog.remove_button.click()
        assert not dialog.start()
        assert "chain is empty" in dialog.message_label.text()

        dialog.add_step("superres")
        dialog.set_output_folder("")
        assert not dialog.start()
        assert dialog.message_label.text() == "Choose an output folder."
        assert dialog.file_table.rowCount() == 0 and not dialog.is_running

    dialog.set_output_folder(tmp_path / "out")
    with qtbot.waitSignal(dialog.batch_finished, timeout=15000):
        assert dialog.start()
    assert not dialog.message_label.isVisible()


def test_an_error_inside_the_batch_is_shown_and_the_dialog_recovers(open_dialog, qtbot, tmp_path, monkeypatch):
    make_photos(tmp_path / "in", 1, broken=False)
    dialog = ready(open_dialog(), tmp_path, ("superres", {}))

    def unreadable(options):
        raise PermissionError(f"cannot list {options.input_dir}")

    monkeypatch.setattr(batch, "find_inputs", unreadable)
    assert dialog.start()
    qtbot.waitUntil(lambda: not dialog.is_running, timeout=10000)
    assert "The batch stopped: PermissionError: cannot list" in dialog.message_label.text()
    assert dialog.start_button.isEnabled() and dialog.settings.isEnabled()


def test_closing_while_running_asks_to_cancel_first(open_dialog, qtbot, tmp_path, slow_tool, monkeypatch):
    make_photos(tmp_path / "in", 10, broken=False)
    dialog = ready(open_dialog(), tmp_path, ("slow", {"delay": 0.1}))
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answers.pop(0))
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.file_table.rowCount() >= 1, timeout=10000)
    dialog.close()
    assert dialog.isVisible() and dialog.is_running and len(answers) == 1
    with qtbot.waitSignal(dialog.batch_finished, timeout=15000) as finished:
        dialog.close()
    assert finished.args[0].cancelled and not answers
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)
