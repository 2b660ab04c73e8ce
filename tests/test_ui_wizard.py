"""The training wizard driven page by page for each kind of model; the training and the export run in real child
processes (tiny configs). The Settings page's speed probe is replaced by an instant stand-in
(test_train_recipes runs the real one)."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QWizard

from ganstudio.models import configure_registry, get_registry
from ganstudio.models.arch.cyclegan import CycleGANGenerator
from ganstudio.train import recipes
from ganstudio.train.checkpoint import export_safetensors
from ganstudio.ui.loss_plot import smoothed
from ganstudio.ui.tools_panel import ToolPage
from ganstudio.ui.train_wizard import Machine, RunSpec, SpeedProbe, TrainingWizard, _rough_duration, _start_text

CPU = Machine(False, "CPU, test")
GPU = Machine(True, "GPU, test", 24.0)
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
    page.batch_spin.setValue(2)
    page.steps_spin.setValue(steps)
    page.checkpoint_spin.setValue(checkpoint_every)


@pytest.fixture(autouse=True)
def one_thread_per_child(monkeypatch):
    """The wizard gives a run every core; the test machine's cores are shared, where several threads per tiny
    step spin against other processes and run several times slower than one."""
    monkeypatch.setattr(recipes, "_threads", lambda: ["--threads", "1"])


@pytest.fixture(autouse=True)
def speed_probes(monkeypatch) -> list[tuple[str, list[str]]]:
    """The Settings page's speed probe, answered at once: 0.1 s a step per picture in the batch. Returns the
    (kind, run arguments) of each measurement asked for."""
    asked: list[tuple[str, list[str]]] = []

    def launch(self: SpeedProbe, key: str, kind: str, args: list[str]) -> None:
        asked.append((kind, list(args)))
        batch = int(args[args.index("--batch") + 1])
        QTimer.singleShot(0, self, lambda: self.finish(key, 0.1 * batch))

    monkeypatch.setattr(SpeedProbe, "_launch", launch)
    return asked


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


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
    _check(qtbot, wizard, _photos(tmp_path / "tiny", 30, size=40))
    assert not _next_enabled(wizard), "photos smaller than the smallest crop do not count"
    _check(qtbot, wizard, _photos(tmp_path / "enough", 20))
    assert _next_enabled(wizard)
    assert wizard.data_page.verdict_label.text() == "Enough to train on: 20 usable photos."
    # a clean folder says so in a line, not in a large empty list
    assert wizard.data_page.problems.isHidden()
    assert wizard.data_page.field_a.summary_label.text().endswith("No broken, too small or duplicate files.")


@pytest.mark.parametrize("kind, machine, crop, augment", [
    ("superres", CPU, 96, "dihedral"), ("inpaint", CPU, 128, "dihedral"), ("cyclegan", CPU, 128, "hflip"),
    ("dcgan", CPU, 64, "color,translation"), ("inpaint", GPU, 256, "dihedral"), ("cyclegan", GPU, 256, "hflip")])
def test_crop_and_augmentation_defaults_suit_the_kind(qtbot, kind: str, machine: Machine, crop: int,
                                                      augment: str) -> None:
    wizard = TrainingWizard(machine=machine)
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.kind_page.select(kind)
    wizard.next()
    page = wizard.data_page
    assert (page.crop, page.augment) == (crop, augment)
    assert page.crop_combo.currentText().endswith("· recommended")
    assert page.augment_combo.currentText().endswith("· recommended")
    # the choices are what the loop takes: multiples of what it needs, and its own --augment values
    recipe = wizard.recipe
    crops = [page.crop_combo.itemData(i) for i in range(page.crop_combo.count())]
    assert crops == sorted(crops) and all(c % recipe.crop_step == 0 for c in crops)
    assert [page.augment_combo.itemData(i) for i in range(page.augment_combo.count())] == list(recipe.augments)
    assert page.augment_hint.text() == recipe.augments[augment][1]
    page.set_augment(list(recipe.augments)[-1])
    assert page.augment_hint.text() == recipe.augments[list(recipe.augments)[-1]][1]
    # another kind starts from its own defaults; coming back to this one keeps what was chosen
    wizard.back()
    wizard.next()
    assert page.augment == list(recipe.augments)[-1]
    wizard.back()
    wizard.kind_page.select("superres" if kind != "superres" else "dcgan")
    wizard.next()
    assert page.augment == wizard.recipe.default_augment


def test_crops_too_large_for_the_photos_are_not_offered_and_left_out_photos_are_named(
        qtbot, wizard: TrainingWizard, tmp_path: Path) -> None:
    wizard.next()
    page = wizard.data_page
    assert page.crop == 96 and page.crop_warning.isHidden()
    # photos of 64 px: crops above 64 px would leave none, so they cannot be chosen, and the page falls back
    _check(qtbot, wizard, _photos(tmp_path / "small", 25, size=64))
    enabled = {page.crop_combo.itemData(i): page.crop_combo.model().item(i).isEnabled()
               for i in range(page.crop_combo.count())}
    assert enabled == {48: True, 64: True, 96: False, 128: False, 192: False, 256: False}
    assert "0 would be usable" in page.crop_combo.itemData(2, Qt.ItemDataRole.ToolTipRole)
    assert page.crop == 64 and _next_enabled(wizard)
    assert "too small for a crop size of 96 px: 64 px is the largest" in page.crop_warning.text()
    assert not page.crop_warning.isHidden()

    # a folder of larger photos gets the crop asked for back; the few small ones are left out, and it says so
    folder = _photos(tmp_path / "mixed", 21)
    _photos(folder / "thumbnails", 2, size=60)
    _check(qtbot, wizard, folder)
    assert page.crop == 96 and _next_enabled(wizard)
    assert page.crop_warning.text() == ("2 photos are smaller than 96 px and will be left out (listed above); a "
                                        "smaller crop size keeps them.")
    assert "Smaller than 96 px (2), left out:" in page.problems.toPlainText()
    page.set_crop(48)
    assert page.crop_warning.isHidden() and page.verdict_label.text() == "Enough to train on: 23 usable photos."
    # 128 px would leave none of the 100 px photos: even asked for, the page keeps the largest crop that works
    page.set_crop(128)
    assert page.crop == 96 and _next_enabled(wizard)
    assert page.crop_warning.text().startswith("The photos are too small for a crop size of 128 px: 96 px")


def test_the_time_estimate_follows_the_preset_and_the_settings(qtbot, wizard: TrainingWizard, tmp_path: Path,
                                                              speed_probes) -> None:
    wizard.next()
    _check(qtbot, wizard, _photos(tmp_path / "photos", 20))
    wizard.next()
    page = wizard.settings_page
    qtbot.waitUntil(lambda: "measured" in page.estimate_label.text(), timeout=5000)
    # quick on a CPU: 300 steps of 8 crops, at 0.1 s a picture
    assert page.estimate_label.text() == "About 4 min on this CPU (0.80 s a step, measured)"
    assert "300 steps × 0.80 s" in page.estimate_label.toolTip()
    kind, args = speed_probes[-1]
    assert kind == "superres" and (_arg(args, "--batch"), _arg(args, "--crop")) == ("8", "96")
    assert "--init" in args, "the run's own command: from the shipped model"

    page.preset_combo.setCurrentIndex(page.preset_combo.findData("best"))  # 5,000 steps of 16
    qtbot.waitUntil(lambda: "1.60 s" in page.estimate_label.text(), timeout=5000)
    assert page.estimate_label.text() == "About 2 h 15 min on this CPU (1.60 s a step, measured)"
    # the number of steps needs no new measurement; the batch does
    measured = len(speed_probes)
    page.advanced.setChecked(True)
    page.steps_spin.setValue(600)
    assert page.estimate_label.text().startswith("About 16 min on this CPU")
    page.batch_spin.setValue(4)
    assert page.estimate_label.text() == "Measuring the speed on this CPU…"
    qtbot.waitUntil(lambda: "0.40 s" in page.estimate_label.text(), timeout=5000)
    assert page.estimate_label.text() == "About 4 min on this CPU (0.40 s a step, measured)"
    assert len(speed_probes) == measured + 1
    # back to a preset measured before: shown from what was measured, nothing run again
    page.preset_combo.setCurrentIndex(page.preset_combo.findData("quick"))
    assert page.estimate_label.text() == "About 4 min on this CPU (0.80 s a step, measured)"
    qtbot.wait(600)
    assert len(speed_probes) == measured + 1

    # the crop chosen with the photos is what is measured
    wizard.back()
    wizard.data_page.set_crop(48)
    wizard.next()
    qtbot.waitUntil(lambda: _arg(speed_probes[-1][1], "--crop") == "48", timeout=5000)


def test_no_estimate_when_the_speed_cannot_be_measured(qtbot, wizard: TrainingWizard, tmp_path: Path,
                                                       monkeypatch) -> None:
    monkeypatch.setattr(SpeedProbe, "_launch", lambda self, key, kind, args: QTimer.singleShot(
        0, self, lambda: self.finish(key, math.nan, "RuntimeError: out of memory")))
    wizard.next()
    _check(qtbot, wizard, _photos(tmp_path / "photos", 20))
    wizard.next()
    label = wizard.settings_page.estimate_label
    qtbot.waitUntil(lambda: label.text().startswith("No time estimate"), timeout=5000)
    assert label.toolTip() == "RuntimeError: out of memory"
    assert _next_enabled(wizard), "training can start without an estimate"


def test_rough_durations() -> None:
    assert [_rough_duration(s) for s in (20, 240, 3599, 3600, 8000, 36_000, 200_000)] == [
        "under a minute", "about 4 min", "about 60 min", "about 1 h", "about 2 h 15 min", "about 10 h",
        "about 2 days"]


def test_fine_tune_to_a_model_in_the_tool(qtbot, window, tmp_path: Path) -> None:
    wizard = window.open_training_wizard()
    wizard.next()
    _check(qtbot, wizard, _photos(tmp_path / "Beach Photos", 22))
    # pictures with an up (faces, text) are only mirrored: the choice goes to the loop, its config and the card
    wizard.data_page.set_crop(48)
    wizard.data_page.set_augment("hflip")
    wizard.next()
    assert wizard.currentId() == TrainingWizard.SETTINGS
    assert wizard.settings_page.summary_label.text().endswith(
        "300 steps of 8 crops of 48 px, augmentation: left-right flips only (set with your photos).")
    _tiny_settings(wizard, steps=3, checkpoint_every=2)
    events: list[dict] = []
    wizard.train_page.event_received.connect(events.append)
    with qtbot.waitSignal(wizard.train_page.process_finished, timeout=CHILD_TIMEOUT_MS) as finished:
        wizard.next()
        arguments = wizard.train_page.process.arguments()
    assert finished.args == ["done"], wizard.train_page.status_label.text()
    assert (_arg(arguments, "--crop"), _arg(arguments, "--augment")) == ("48", "hflip")
    start = next(e for e in events if e["event"] == "start")
    assert (start["config"]["crop"], start["config"]["augment"]) == (48, "hflip")
    assert json.loads(Path(wizard.spec.run_dir, "config.json").read_text())["augment"] == "hflip"
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
    assert model.card["training"]["hr_crop"] == 48
    assert model.card["training"]["augment"] == "random left-right flips"
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
    gpu.data_page.set_crop(48)
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


def test_a_machine_with_several_gpus_trains_on_all_of_them(qtbot, wizard: TrainingWizard, tmp_path: Path,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", os.environ.get("GLOO_SOCKET_IFNAME", "lo"))  # gloo over loopback
    assert not wizard.settings_page.all_gpus_box.isVisibleTo(wizard.settings_page), "one device: nothing to choose"
    assert wizard.settings_page.processes() == 1
    # a machine the wizard believes has two GPUs; this one has none, so the two processes train on the CPU (gloo)
    two = TrainingWizard(machine=Machine(True, "GPU, test", 24.0, gpus=2))
    qtbot.addWidget(two)
    two.show()
    two.next()
    _check(qtbot, two, _photos(tmp_path / "photos", 20))
    two.data_page.set_crop(48)
    two.next()
    _tiny_settings(two, steps=2, checkpoint_every=2)
    page = two.settings_page
    assert page.all_gpus_box.isVisibleTo(page) and page.all_gpus_box.isChecked()
    assert "2 × GPU, test" in page.subTitle()
    events: list[dict] = []
    two.train_page.event_received.connect(events.append)
    with qtbot.waitSignal(two.train_page.process_finished, timeout=CHILD_TIMEOUT_MS * 2) as finished:
        two.next()
        arguments = two.train_page.process.arguments()
    assert finished.args == ["done"], two.train_page.status_label.text()
    assert arguments[:4] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert next(e for e in events if e["event"] == "start")["ranks"] == 2
    assert all(e["in_sync"] for e in events if e["event"] == "checkpoint")
    assert two.spec.processes == 2 and RunSpec.remembered().processes == 2, "Resume keeps the processes"
    assert two.shutdown(5000)


def test_resume_after_the_child_is_killed(qtbot, wizard: TrainingWizard, tmp_path: Path) -> None:
    wizard.next()
    _check(qtbot, wizard, _photos(tmp_path / "photos", 20))
    wizard.data_page.set_crop(48)
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
    # a build that ships no inpainting model (the checkout's own is covered by test_train_recipes' fixture)
    (tmp_path / "no-pretrained").mkdir()
    monkeypatch.setenv("GANSTUDIO_PRETRAINED", str(tmp_path / "no-pretrained"))
    configure_registry(window.prefs.model_path)
    wizard = window.open_training_wizard()
    wizard.kind_page.select("inpaint")
    wizard.next()
    _check(qtbot, wizard, _photos(tmp_path / "Garden", 21))
    data = wizard.data_page
    assert (data.crop, data.augment) == (128, "dihedral")
    # every crop offered halves as often as the most resolution stages the Settings page allows (5)
    assert all(data.crop_combo.itemData(i) % 2**5 == 0 for i in range(data.crop_combo.count()))
    data.set_crop(64)
    data.set_augment("none")
    wizard.next()
    page = wizard.settings_page
    # there is no shipped inpainting model: the page says so instead of offering a start that does not exist
    assert not page.base_box.isEnabled() and not page.base_box.isChecked()
    assert not page.base_note.isHidden() and "no shipped inpainting model" in page.base_note.text()
    page.advanced.setChecked(True)
    page.blocks_spin.setValue(5)
    assert _next_enabled(wizard)
    page.blocks_spin.setValue(2)
    page.channels_spin.setValue(4)
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
    assert (model.card["training"]["crop"], model.card["training"]["augment"]) == (64, "none")
    assert model.card["data"]["folder"] == str(tmp_path / "Garden")
    assert "garden-inpaint" in _models_in_tool(window, "inpaint")
    assert "the Inpaint tool" in finish.status_label.text()


def _two_folders(qtbot, wizard: TrainingWizard, a: Path, b: Path) -> None:
    page = wizard.data_page
    for field, folder in ((page.field_a, a), (page.field_b, b)):
        with qtbot.waitSignal(page.checked, timeout=20_000):
            field.folder_edit.setText(str(folder))
            field.start_check()


def test_translation_between_two_folders_saves_both_directions(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    # a build without shipped cat <-> dog models: the run starts from scratch and the base box says why
    (tmp_path / "no-pretrained").mkdir()
    monkeypatch.setenv("GANSTUDIO_PRETRAINED", str(tmp_path / "no-pretrained"))
    configure_registry(window.prefs.model_path)
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
    assert (page.crop, page.augment) == (128, "hflip"), "left-right flips, as the loop has always done"
    page.set_crop(64)
    page.set_augment("dihedral")

    wizard.next()
    settings = wizard.settings_page
    # no cat <-> dog model is shipped yet: the option is there, disabled, and says why
    assert settings.base_box.isVisible() and not settings.base_box.isEnabled()
    assert "cat2dog.safetensors" in settings.base_box.toolTip()
    settings.advanced.setChecked(True)
    settings.blocks_spin.setValue(1)
    settings.channels_spin.setValue(4)
    settings.steps_spin.setValue(2)
    settings.checkpoint_spin.setValue(2)
    events, statuses = _train_to_done(qtbot, wizard)
    start = next(e for e in events if e["event"] == "start")
    assert start["train_images"] == [18, 18] and start["config"]["ngf"] == 4
    assert (start["config"]["crop"], start["config"]["load_size"], start["config"]["augment"]) == (64, 72, "dihedral")
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
    assert forward.arch_params == {"ngf": 4, "n_blocks": 1, "n_down": 2}
    assert forward.card["training"]["augment"] == "random flips and 90° turns (dihedral group)"
    assert str(tmp_path / "Winter") in forward.card["data"]["licence"]
    assert {"summer2winter", "thaw"} <= set(_models_in_tool(window, "translate"))


def test_generator_trains_and_its_pictures_open_as_new_images(qtbot, window, tmp_path: Path) -> None:
    wizard = window.open_training_wizard()
    wizard.kind_page.select("dcgan")
    wizard.next()
    _check(qtbot, wizard, _photos(tmp_path / "Flowers", 20))
    data = wizard.data_page
    assert data.crop_row_label.text() == "Picture size"
    assert [data.crop_combo.itemData(i) for i in range(data.crop_combo.count())] == [32, 64, 128]
    assert (data.crop, data.augment) == (64, "color,translation")
    # the 100 px photos are too small for 128 px pictures: offered, but not to be chosen
    assert not data.crop_combo.model().item(2).isEnabled()
    data.set_crop(32)
    data.set_augment("color,translation,cutout")
    wizard.next()
    settings = wizard.settings_page
    assert settings.base_box.isHidden()
    settings.advanced.setChecked(True)
    settings.channels_spin.setValue(8)
    settings.batch_spin.setValue(4)
    settings.steps_spin.setValue(3)
    settings.checkpoint_spin.setValue(2)
    events, _ = _train_to_done(qtbot, wizard)
    assert any(e["event"] == "sample" for e in events)
    start = next(e for e in events if e["event"] == "start")
    assert (start["config"]["size"], start["config"]["augment"]) == (32, "color,translation,cutout")

    wizard.next()
    finish = wizard.finish_page
    assert finish.name_edit.text() == "flowers-generator" and not finish.open_box.isHidden()
    with qtbot.waitSignal(wizard.model_exported, timeout=CHILD_TIMEOUT_MS):
        finish.save_button.click()
    model = get_registry().get("flowers-generator", "generate")
    assert model.arch_params["size"] == 32
    assert model.card["training"]["augment"].startswith("DiffAugment (color, translation, cutout)")
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


def test_before_after_pairs_train_to_a_model_in_the_translate_tool(qtbot, window, tmp_path: Path) -> None:
    from test_train_pix2pix import paired_folders

    wizard = window.open_training_wizard()
    wizard.kind_page.select("pix2pix")
    wizard.next()
    page = wizard.data_page
    assert page.heading_a.text() == "Before" and page.heading_b.text() == "After"
    assert page.name_row_a.isHidden() and not page.pairs_verdict.isHidden()
    before, after = paired_folders(tmp_path, 12, size=(100, 96))
    Image.fromarray(np.zeros((96, 100, 3), np.uint8)).save(before / "lonely.png")
    Image.fromarray(np.zeros((50, 80, 3), np.uint8)).save(after / "03.png")  # 03 has two after files now
    (after / "03.jpg").unlink()
    _two_folders(qtbot, wizard, before, after)
    listed = page.pairs_problems.toPlainText()
    assert "lonely.png" in listed and "03.png (100×96) ≠ 03.png (80×50)" in listed
    assert "11 usable pairs" in page.pairs_verdict.text() and _next_enabled(wizard)
    page.set_crop(64)

    wizard.next()
    settings = wizard.settings_page
    assert "11 usable pairs" in settings.summary_label.text()
    settings.advanced.setChecked(True)
    settings.blocks_spin.setValue(2)
    settings.channels_spin.setValue(8)
    settings.batch_spin.setValue(2)
    settings.steps_spin.setValue(3)
    settings.checkpoint_spin.setValue(3)
    events, statuses = _train_to_done(qtbot, wizard)
    start = next(e for e in events if e["event"] == "start")
    assert start["train_pairs"] == 10 and start["config"]["crop"] == 64
    assert any("Training on 10 before/after pairs (1 held out" in text for text in statuses)
    assert any("03.png" in e.get("message", "") for e in events if e["event"] == "warning")

    wizard.next()
    finish = wizard.finish_page
    assert [o.name for o in finish.outputs()] == ["sketches2paintings"]
    with qtbot.waitSignal(wizard.model_exported, timeout=CHILD_TIMEOUT_MS):
        finish.save_button.click()
    model = get_registry().get("sketches2paintings", "translate")
    assert model.title == "Sketches → Paintings (my pairs)" and model.card["working_size"] == 96
    assert "sketches2paintings" in _models_in_tool(window, "translate")
