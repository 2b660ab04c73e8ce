"""The training wizard driven page by page; the training itself runs in real child processes (tiny configs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QWizard

from ganstudio.models import get_registry
from ganstudio.ui.train_wizard import Machine, RunSpec, TrainingWizard

CPU = Machine(False, "CPU, test")
CHILD_TIMEOUT_MS = 90_000  # a child process imports torch first: seconds on a busy machine


def _photos(folder: Path, count: int, size: int = 100, broken: int = 0) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    for i in range(broken):
        (folder / f"broken{i}.jpg").write_bytes(b"not a jpeg")
    return folder


def _check(qtbot, wizard: TrainingWizard, folder: Path) -> None:
    with qtbot.waitSignal(wizard.data_page.checked, timeout=20_000):
        wizard.data_page.folder_edit.setText(str(folder))
        wizard.data_page.start_check()


def _next_enabled(wizard: TrainingWizard) -> bool:
    return wizard.button(QWizard.WizardButton.NextButton).isEnabled()


def _tiny_settings(wizard: TrainingWizard, steps: int, checkpoint_every: int) -> None:
    page = wizard.settings_page
    page.base_box.setChecked(False)
    page.advanced.setChecked(True)
    page.blocks_spin.setValue(1)
    page.channels_spin.setValue(8)
    page.crop_spin.setValue(32)
    page.batch_spin.setValue(2)
    page.steps_spin.setValue(steps)
    page.checkpoint_spin.setValue(checkpoint_every)


@pytest.fixture
def wizard(qtbot):
    wizard = TrainingWizard(machine=CPU)
    qtbot.addWidget(wizard)
    wizard.show()
    yield wizard
    assert wizard.shutdown(5000)


def test_next_disabled_until_the_folder_is_good_enough(qtbot, wizard: TrainingWizard, tmp_path: Path) -> None:
    wizard.next()
    assert wizard.currentId() == TrainingWizard.DATA
    assert not _next_enabled(wizard)
    _check(qtbot, wizard, _photos(tmp_path / "few", 19, broken=3))
    assert not _next_enabled(wizard)
    assert wizard.data_page.verdict_label.text().startswith("Too few: 19 usable")
    assert "broken2.jpg" in wizard.data_page.problems.toPlainText()
    _check(qtbot, wizard, _photos(tmp_path / "small", 30, size=64))
    assert not _next_enabled(wizard), "photos smaller than the crop do not count"
    _check(qtbot, wizard, _photos(tmp_path / "enough", 20))
    assert _next_enabled(wizard)
    assert wizard.data_page.verdict_label.text() == "Enough to train on: 20 usable photos."


def test_fine_tune_to_a_model_in_the_tool(qtbot, window, tmp_path: Path) -> None:
    wizard = window.open_training_wizard()
    wizard.next()
    _check(qtbot, wizard, _photos(tmp_path / "Beach Photos", 22))
    wizard.next()
    assert wizard.currentId() == TrainingWizard.SETTINGS
    _tiny_settings(wizard, steps=3, checkpoint_every=2)
    events: list[dict] = []
    wizard.train_page.event_received.connect(events.append)
    with qtbot.waitSignal(wizard.train_page.process_finished, timeout=CHILD_TIMEOUT_MS) as finished:
        wizard.next()
    assert finished.args == ["done"], wizard.train_page.status_label.text()
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3]
    assert any(e["event"] == "sample" for e in events)
    assert wizard.train_page.progress.value() == 3
    assert _next_enabled(wizard)

    wizard.next()
    assert wizard.currentId() == TrainingWizard.FINISH
    page = wizard.finish_page
    assert page.name_edit.text() == "beach-photos-x4"
    page.title_edit.setText("Beach ×4")
    with qtbot.waitSignal(wizard.model_exported, timeout=CHILD_TIMEOUT_MS):
        page.save_button.click()
    model = get_registry().get("beach-photos-x4", "superres")
    assert model.title == "Beach ×4" and model.weights.parent == window.prefs.model_path
    assert model.arch_params["num_blocks"] == 1
    superres = window.tools_panel._pages.widget(0)
    assert "beach-photos-x4" in [superres._model.itemData(i) for i in range(superres._model.count())]
    assert RunSpec.remembered() is None, "an exported run is not offered for resuming"
    page.name_edit.setEnabled(True)
    assert not page._validate(), "a second model of the same name is refused"


def test_resume_after_the_child_is_killed(qtbot, wizard: TrainingWizard, tmp_path: Path) -> None:
    wizard.next()
    _check(qtbot, wizard, _photos(tmp_path / "photos", 20))
    wizard.next()
    _tiny_settings(wizard, steps=1_000_000, checkpoint_every=2)
    train = wizard.train_page
    with qtbot.waitSignal(train.event_received, timeout=CHILD_TIMEOUT_MS,
                          check_params_cb=lambda e: e["event"] == "checkpoint"):
        wizard.next()
    with qtbot.waitSignal(train.process_finished, timeout=20_000) as finished:
        train.process.kill()
    assert finished.args == ["failed"]
    assert train.resume_button.isEnabled() and not train.pause_button.isEnabled()

    # The run is remembered: a new wizard (as after a restart) offers to continue it.
    assert RunSpec.remembered() == wizard.spec
    with qtbot.waitSignal(train.event_received, timeout=CHILD_TIMEOUT_MS,
                          check_params_cb=lambda e: e["event"] == "start") as started:
        train.resume_button.click()
    assert started.args[0]["step"] > 0
    with qtbot.waitSignal(train.process_finished, timeout=20_000) as finished:
        train.cancel_button.click()
    assert finished.args == ["cancelled"]
    assert RunSpec.remembered() is None
    assert Path(wizard.spec.run_dir, "checkpoints").is_dir()
