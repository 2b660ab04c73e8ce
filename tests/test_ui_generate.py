"""File ▸ Generate Images…: pictures from a user's generator run in the worker and open as new, unsaved images; the
worker's generation jobs and a batch never hold the device at once."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtWidgets import QMessageBox

from ganstudio.models import configure_registry
from ganstudio.models.arch.dcgan import DCGANGenerator
from ganstudio.tools.generate import GenerateParams
from ganstudio.tools.generate import run as generate
from ganstudio.train.checkpoint import export_safetensors
from ganstudio.train.dcgan import DCGANConfig, build_card


@pytest.fixture
def generator_model(window) -> str:
    """A tiny untrained generator in the user's model folder, as the wizard would leave one."""
    torch.manual_seed(0)
    cfg = DCGANConfig(data="folder", out="", size=16, latent_dim=8, ngf=4)
    model = DCGANGenerator(cfg.latent_dim, cfg.ngf, cfg.size).eval()
    with torch.no_grad():
        model.project_norm[0].running_var.fill_(0.01)  # so that the pictures differ visibly between seeds
    export_safetensors(model, window.prefs.model_path / "tiny-gen.safetensors",
                       build_card(cfg, "tiny-gen", "Tiny pictures", {"machine": "test"}))
    configure_registry(window.prefs.model_path)
    return "tiny-gen"


def _messages(window) -> list[str]:
    return [box.text() for box in window.findChildren(QMessageBox) if box.isVisible()]


def test_generated_pictures_open_as_new_unsaved_images(qtbot, window, generator_model, monkeypatch) -> None:
    window.generate_action.trigger()
    dialog = window._generate_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.model_combo.currentData() == generator_model
    dialog.count_spin.setValue(3)
    dialog.seed_spin.setValue(5)
    dialog.generate_button.click()
    assert not dialog.generate_button.isEnabled(), "one request at a time"
    qtbot.waitUntil(lambda: len(window.documents) == 3, timeout=20_000)
    qtbot.waitUntil(dialog.generate_button.isEnabled, timeout=5_000)
    assert [d.title for d in window.documents] == ["tiny-gen-5", "tiny-gen-6", "tiny-gen-7"]
    for document, seed in zip(window.documents, (5, 6, 7)):
        np.testing.assert_array_equal(document.pixels, generate(None, GenerateParams(generator_model, seed)))
        assert document.pixels.shape == (16, 16, 3) and document.path is None and document.dirty
    assert not np.array_equal(window.documents[0].pixels, window.documents[1].pixels)
    assert window.tabs.tabText(0) == "tiny-gen-5 *"
    assert dialog.seed_spin.value() == 8, "the next request makes new pictures"
    assert dialog.info_label.text().startswith("Done")

    # a new picture is unsaved: closing it asks first
    asked: list[str] = []

    def discard(parent, title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Discard

    monkeypatch.setattr(QMessageBox, "question", discard)
    assert window.close_tab(0)
    assert len(asked) == 1 and "tiny-gen-5" in asked[0]
    assert len(window.documents) == 2


def test_without_a_generator_the_dialog_says_how_to_get_one(window) -> None:
    dialog = window.open_generate_dialog()
    assert dialog.model_combo.count() == 0 and not dialog.generate_button.isEnabled()
    assert "Train a Model" in dialog.info_label.text()
    assert dialog.generate() == [] and window.documents == []


def test_a_broken_generator_reports_the_error(qtbot, window, generator_model) -> None:
    card_path = window.prefs.model_path / f"{generator_model}.json"
    card = json.loads(card_path.read_text())
    card["architecture"]["params"]["ngf"] = 8  # the weights are of ngf 4
    card_path.write_text(json.dumps(card))
    configure_registry(window.prefs.model_path)
    dialog = window.open_generate_dialog(generator_model)
    dialog.count_spin.setValue(1)
    dialog.generate()
    qtbot.waitUntil(lambda: any("Generate failed" in text for text in _messages(window)), timeout=20_000)
    assert window.documents == []
    qtbot.waitUntil(dialog.generate_button.isEnabled, timeout=5_000)
    assert "could not" in dialog.info_label.text()


@pytest.fixture
def waiting_generator(monkeypatch, window, generator_model) -> str:
    """Generation that holds the worker until cancelled, as a large model would."""
    from dataclasses import replace

    from ganstudio.engine.cancel import check
    from ganstudio.tools import generate as generate_module

    def wait_for_cancel(image, params, mask=None, progress=None, cancel=None, runtime=None):
        while True:
            check(cancel)
            time.sleep(0.01)

    monkeypatch.setattr(generate_module, "TOOL", replace(generate_module.TOOL, run=wait_for_cancel))
    return generator_model


def _batch_ready(window, tmp_path, tool: str, params: dict):
    """The batch dialog with one photo and one step, ready to start."""
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in" / "one.png")
    dialog = window.open_batch_dialog()
    dialog.set_input_folder(tmp_path / "in")
    dialog.set_output_folder(tmp_path / "out")
    assert dialog.add_step(tool, params) == []
    return dialog


def test_generating_holds_the_device_against_a_batch(qtbot, window, waiting_generator, tmp_path) -> None:
    dialog = window.open_generate_dialog(waiting_generator)
    dialog.count_spin.setValue(2)
    assert len(dialog.generate()) == 2
    qtbot.waitUntil(lambda: window.jobs.running_job is not None, timeout=10_000)
    batch = _batch_ready(window, tmp_path, "superres", {"model": "bicubic", "scale": 2})
    # two pictures of Generate Images hold the worker (one running, one waiting): no tool job of the editor's
    assert not batch.start() and "generating images" in batch.message_label.text()
    window.cancel_running_job()
    qtbot.waitUntil(lambda: window.jobs.queued_count == 0 and window.jobs.running_job is not None, timeout=10_000)
    assert not batch.start(), "the second picture still holds the device"
    window.cancel_running_job()
    qtbot.waitUntil(lambda: not window.jobs.busy, timeout=10_000)
    with qtbot.waitSignal(batch.batch_finished, timeout=20_000):
        assert batch.start()


def test_a_running_batch_holds_the_device_against_generating(qtbot, window, generator_model, tmp_path,
                                                             monkeypatch) -> None:
    from ganstudio import tools
    from ganstudio.engine.cancel import check
    from ganstudio.tools.base import ToolSpec

    @dataclass
    class WaitParams:
        model: str = "bicubic"

    def wait_for_cancel(image, params, mask=None, progress=None, cancel=None, runtime=None):
        while True:
            check(cancel)
            time.sleep(0.01)

    monkeypatch.setitem(tools.TOOLS, "wait", ToolSpec("wait", "Wait", "superres", WaitParams, wait_for_cancel))
    batch = _batch_ready(window, tmp_path, "wait", {})
    assert batch.start()
    dialog = window.open_generate_dialog(generator_model)
    assert dialog.generate() == [] and "batch is running" in dialog.info_label.text()
    assert window.generate_images(generator_model, 1) == []
    assert any("batch is running" in text for text in _messages(window))
    assert not window.jobs.busy
    with qtbot.waitSignal(batch.batch_finished, timeout=10_000):
        batch.cancel()
    assert len(dialog.generate()) == 4
    qtbot.waitUntil(lambda: len(window.documents) == 4, timeout=20_000)
