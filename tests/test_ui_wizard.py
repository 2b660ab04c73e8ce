"""The training wizard driven page by page for each kind of model; the training and the export run in real child
processes (tiny configs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QWizard

from ganstudio.models import configure_registry, get_registry
from ganstudio.models.arch.cyclegan import CycleGANGenerator
from ganstudio.train import recipes
from ganstudio.train.checkpoint import export_safetensors
from ganstudio.ui.loss_plot import smoothed
from ganstudio.ui.tools_panel import ToolPage
from ganstudio.ui.train_wizard import Machine, RunSpec, TrainingWizard, _start_text

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


@pytest.fixture(autouse=True)
def one_thread_per_child(monkeypatch):
    """The wizard gives a run every core; the test machine's cores are shared, where several threads per tiny
    step spin against other processes and run several times slower than one."""
    monkeypatch.setattr(recipes, "_threads", lambda: ["--threads", "1"])


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
    # a clean folder says so in a line, not in a large empty list
    assert wizard.data_page.problems.isHidden()
    assert wizard.data_page.field_a.summary_label.text().endswith("No broken, too small or duplicate files.")


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
    train = wizard.train_page
    assert train.stats_label.text().startswith("Trained 3 steps in "), "the time left is gone at the end"
    assert train.sample_caption.text().endswith("held-out photos: bicubic | model | original")
    assert "bicubic enlargement of the held-out photos scores" in train.log.toPlainText()

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
    # the narrow panel shows the title alone (the name is in the tooltip)
    assert superres._model.itemText(superres._model.findData("beach-photos-x4")) == "Beach ×4"
    assert RunSpec.remembered() is None, "an exported run is not offered for resuming"
    page.name_edit.setEnabled(True)
    assert not page._validate(), "a second model of the same name is refused"


def test_the_chosen_precision_reaches_the_training_process(qtbot, wizard: TrainingWizard, tmp_path: Path) -> None:
    # on a CPU-only machine the choice is fixed: autocast is for GPUs, and bf16 is very slow on a CPU
    assert not wizard.settings_page.precision_combo.isEnabled()
    assert wizard.settings_page.precision_combo.currentData() == "fp32"
    assert "slow" in wizard.settings_page.precision_combo.toolTip()

    gpu = TrainingWizard(machine=Machine(True, "GPU, test", 24.0))
    qtbot.addWidget(gpu)
    gpu.show()
    gpu.next()
    _check(qtbot, gpu, _photos(tmp_path / "photos", 20))
    gpu.next()
    _tiny_settings(gpu, steps=2, checkpoint_every=2)
    page = gpu.settings_page
    assert page.precision_combo.isEnabled() and page.precision_combo.currentData() == "fp32", \
        "super-resolution keeps its loop's default"
    page.precision_combo.setCurrentIndex(page.precision_combo.findData("bf16"))
    events: list[dict] = []
    gpu.train_page.event_received.connect(events.append)
    with qtbot.waitSignal(gpu.train_page.process_finished, timeout=CHILD_TIMEOUT_MS) as finished:
        gpu.next()
        arguments = gpu.train_page.process.arguments()
    assert finished.args == ["done"], gpu.train_page.status_label.text()
    assert arguments[arguments.index("--precision") + 1] == "bf16"
    # this test machine has no GPU: the child says it trains in fp32 and why
    start = next(e for e in events if e["event"] == "start")
    assert start["precision"] == "fp32" and start["device"] == "cpu"
    assert _start_text(start).endswith("on the CPU in fp32.")
    assert any(e["event"] == "warning" and "CUDA GPU only" in e["message"] for e in events)
    assert "CUDA GPU only" in gpu.train_page.log.toPlainText()
    assert gpu.shutdown(5000)


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


def _train_to_done(qtbot, wizard: TrainingWizard) -> tuple[list[dict], list[str]]:
    """Start training from the Settings page and wait for the end: the events, and the status line after each."""
    events: list[dict] = []
    statuses: list[str] = []
    wizard.train_page.event_received.connect(events.append)
    wizard.train_page.event_received.connect(lambda _: statuses.append(wizard.train_page.status_label.text()))
    with qtbot.waitSignal(wizard.train_page.process_finished, timeout=CHILD_TIMEOUT_MS) as finished:
        wizard.next()
    assert finished.args == ["done"], wizard.train_page.status_label.text()
    assert wizard.currentId() == TrainingWizard.TRAIN and _next_enabled(wizard)
    return events, statuses


def _models_in_tool(window, task: str) -> list[str]:
    page = next(page for page in window.tools_panel.findChildren(ToolPage) if page.spec.task == task)
    return [page._model.itemData(i) for i in range(page._model.count())]


def test_inpainting_trains_from_scratch_to_a_model_in_the_tool(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    # the perceptual loss's AlexNet is for real runs (test_inpaint_model covers it); the child inherits this
    monkeypatch.setenv("GANSTUDIO_LPIPS_WEIGHTS", str(tmp_path / "absent.npz"))
    wizard = window.open_training_wizard()
    wizard.kind_page.select("inpaint")
    wizard.next()
    _check(qtbot, wizard, _photos(tmp_path / "Garden", 21))
    wizard.next()
    page = wizard.settings_page
    # there is no shipped inpainting model: the page says so instead of offering a start that does not exist
    assert not page.base_box.isEnabled() and not page.base_box.isChecked()
    assert not page.base_note.isHidden() and "no shipped inpainting model" in page.base_note.text()
    page.advanced.setChecked(True)
    page.blocks_spin.setValue(3)  # resolution stages: the crop must halve three times
    page.crop_spin.setValue(36)
    assert not _next_enabled(wizard) and "multiple of 8" in page.summary_label.text()
    page.blocks_spin.setValue(2)
    assert _next_enabled(wizard)
    page.channels_spin.setValue(4)
    page.crop_spin.setValue(32)
    page.batch_spin.setValue(2)
    page.steps_spin.setValue(2)
    page.checkpoint_spin.setValue(2)
    events, _ = _train_to_done(qtbot, wizard)
    assert wizard.spec.command(False)[3] == "inpaint"
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2]
    assert any(e["event"] == "sample" for e in events) and any(e["event"] == "validation" for e in events)
    assert "validation" in wizard.train_page.log.toPlainText()

    wizard.next()
    finish = wizard.finish_page
    assert finish.name_edit.text() == "garden-inpaint" and finish.name_b_edit.isHidden()
    with qtbot.waitSignal(wizard.model_exported, timeout=CHILD_TIMEOUT_MS):
        finish.save_button.click()
    model = get_registry().get("garden-inpaint", "inpaint")
    assert model.weights.parent == window.prefs.model_path and model.arch_params["levels"] == 2
    assert model.card["data"]["folder"] == str(tmp_path / "Garden")
    assert "garden-inpaint" in _models_in_tool(window, "inpaint")
    assert "the Inpaint tool" in finish.status_label.text()


def _two_folders(qtbot, wizard: TrainingWizard, a: Path, b: Path) -> None:
    page = wizard.data_page
    for field, folder in ((page.field_a, a), (page.field_b, b)):
        with qtbot.waitSignal(page.checked, timeout=20_000):
            field.folder_edit.setText(str(folder))
            field.start_check()


def test_translation_between_two_folders_saves_both_directions(qtbot, window, tmp_path: Path) -> None:
    wizard = window.open_training_wizard()
    wizard.kind_page.select("cyclegan")
    wizard.next()
    page = wizard.data_page
    assert not page.field_b.isHidden() and not page.name_row_a.isHidden()
    _two_folders(qtbot, wizard, _photos(tmp_path / "Summer", 20), _photos(tmp_path / "Winter", 20, broken=1))
    assert (page.name_a_edit.text(), page.name_b_edit.text()) == ("summer", "winter")
    assert "broken0.jpg" in page.field_b.problems.toPlainText()
    assert _next_enabled(wizard)
    page.name_b_edit.setText("summer")
    assert not _next_enabled(wizard) and "different names" in page.names_problem.text()
    page.name_b_edit.setText("Winter time")
    assert not _next_enabled(wizard)
    page.name_b_edit.setText("winter")
    assert _next_enabled(wizard)

    wizard.next()
    settings = wizard.settings_page
    # no cat <-> dog model is shipped yet: the option is there, disabled, and says why
    assert settings.base_box.isVisible() and not settings.base_box.isEnabled()
    assert "cat2dog.safetensors" in settings.base_box.toolTip()
    settings.advanced.setChecked(True)
    settings.blocks_spin.setValue(1)
    settings.channels_spin.setValue(4)
    settings.crop_spin.setValue(32)
    settings.steps_spin.setValue(2)
    settings.checkpoint_spin.setValue(2)
    events, statuses = _train_to_done(qtbot, wizard)
    start = next(e for e in events if e["event"] == "start")
    assert start["train_images"] == [18, 18] and start["config"]["ngf"] == 4
    assert any("Training on 18 and 18 pictures (2 and 2 held out" in text for text in statuses)

    wizard.next()
    finish = wizard.finish_page
    assert [o.name for o in finish.outputs()] == ["summer2winter", "winter2summer"]
    assert [o.title for o in finish.outputs()] == ["Summer → Winter", "Winter → Summer"]
    assert finish.latest_box.isHidden(), "a CycleGAN run keeps no best weights to choose between"
    finish.name_b_edit.setText("summer2winter")
    assert not finish.save_button.isEnabled()
    finish.name_b_edit.setText("thaw")
    finish.title_b_edit.setText("Thaw")
    with qtbot.waitSignal(wizard.model_exported, timeout=CHILD_TIMEOUT_MS):
        finish.save_button.click()
    registry = get_registry()
    forward, back = registry.get("summer2winter", "translate"), registry.get("thaw", "translate")
    assert back.title == "Thaw" and forward.weights.parent == back.weights.parent == window.prefs.model_path
    assert forward.arch_params == {"ngf": 4, "n_blocks": 1}
    assert str(tmp_path / "Winter") in forward.card["data"]["licence"]
    assert {"summer2winter", "thaw"} <= set(_models_in_tool(window, "translate"))


def test_generator_trains_and_its_pictures_open_as_new_images(qtbot, window, tmp_path: Path) -> None:
    wizard = window.open_training_wizard()
    wizard.kind_page.select("dcgan")
    wizard.next()
    _check(qtbot, wizard, _photos(tmp_path / "Flowers", 20))
    wizard.next()
    settings = wizard.settings_page
    assert settings.base_box.isHidden() and settings.crop_spin.value() == 64
    settings.advanced.setChecked(True)
    settings.crop_spin.setValue(48)
    assert not _next_enabled(wizard) and "32, 64 or 128" in settings.summary_label.text()
    settings.crop_spin.setValue(32)
    settings.channels_spin.setValue(8)
    settings.batch_spin.setValue(4)
    settings.steps_spin.setValue(3)
    settings.checkpoint_spin.setValue(2)
    events, _ = _train_to_done(qtbot, wizard)
    assert any(e["event"] == "sample" for e in events)

    wizard.next()
    finish = wizard.finish_page
    assert finish.name_edit.text() == "flowers-generator" and not finish.open_box.isHidden()
    with qtbot.waitSignal(wizard.model_exported, timeout=CHILD_TIMEOUT_MS):
        finish.save_button.click()
    assert get_registry().get("flowers-generator", "generate").arch_params["size"] == 32
    before = len(window.documents)
    wizard.button(QWizard.WizardButton.FinishButton).click()
    qtbot.waitUntil(lambda: len(window.documents) == before + 4, timeout=20_000)
    pictures = window.documents[before:]
    assert [d.title for d in pictures] == [f"flowers-generator-{seed}" for seed in range(4)]
    assert all(d.pixels.shape == (32, 32, 3) and d.dirty for d in pictures)
    assert wizard.currentId() == TrainingWizard.KIND, "the next Train a Model… starts afresh"


def test_cat_dog_start_is_offered_once_it_is_shipped(qtbot, wizard: TrainingWizard, tmp_path: Path,
                                                     monkeypatch) -> None:
    shipped = tmp_path / "pretrained"
    for name in ("cat2dog", "dog2cat"):
        card = {"name": name, "title": name, "task": "translate",
                "architecture": {"name": "cyclegan-resnet", "params": {"ngf": 4, "n_blocks": 1}}}
        export_safetensors(CycleGANGenerator(4, 1), shipped / f"{name}.safetensors", card)
    monkeypatch.setenv("GANSTUDIO_PRETRAINED", str(shipped))
    configure_registry(tmp_path / "models")
    wizard.kind_page.select("cyclegan")
    wizard.next()
    _two_folders(qtbot, wizard, _photos(tmp_path / "cats", 20), _photos(tmp_path / "dogs", 20))
    wizard.next()
    page = wizard.settings_page
    assert page.base_box.isEnabled() and page.base_box.isChecked() and page.base_note.isHidden()
    page.advanced.setChecked(True)
    # the shipped generators' size is what their weights fit: shown, not editable
    assert (page.blocks_spin.value(), page.channels_spin.value()) == (1, 4)
    assert not page.blocks_spin.isEnabled() and not page.channels_spin.isEnabled()
    page.base_box.setChecked(False)
    assert page.blocks_spin.isEnabled() and page.channels_spin.value() == 32


def test_speed_and_time_left_include_the_slow_steps(wizard: TrainingWizard) -> None:
    """Validations, previews and checkpoints make some steps slow: the time left is measured over the latest
    steps as they arrive, so it neither jumps after a slow step nor ignores them."""
    page = wizard.train_page
    assert page._rate(1, 0.9, now=0.0) == 0.9, "the child's own figure until there are two steps to measure between"
    assert page._rate(2, 1.0, now=1.0) == 1.0
    assert page._rate(3, 1.0, now=2.0) == 1.0
    assert page._rate(4, 0.25, now=6.0) == pytest.approx(3 / 6)  # this step took 4 s: a validation
    assert page._rate(5, 1.0, now=7.0) == pytest.approx(4 / 7)


def test_the_loss_curve_is_averaged_once_it_is_long() -> None:
    rng = np.random.default_rng(0)
    noisy = [(step, 0.04 + rng.normal(0, 0.01)) for step in range(1, 151)]
    average = [v for _, v in smoothed(noisy)]
    assert len(average) == 150 and abs(average[0] - noisy[0][1]) < 1e-12, "no start from zero"
    assert np.std(average[30:]) < np.std([v for _, v in noisy]) / 2
    assert [v for _, v in smoothed([(s, 0.5) for s in range(30)])] == pytest.approx([0.5] * 30)
