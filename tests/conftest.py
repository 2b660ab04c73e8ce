import os

# Qt must not look for a display: set before any QApplication exists (pytest-qt creates one lazily).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The editor's jobs run in a thread of the test process, so tests can swap in fake tools; tests/test_worker_process.py
# covers the worker process the app uses.
os.environ.setdefault("GANSTUDIO_WORKER", "thread")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_user_folders(tmp_path_factory, monkeypatch):
    """Tests never read or write the real user's preferences or model folder, and start with a fresh registry."""
    from ganstudio.models import configure_registry, model_cache

    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("GANSTUDIO_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("GANSTUDIO_MODEL_DIR", str(home / "models"))
    configure_registry(home / "models")
    yield
    model_cache.clear()


@pytest.fixture
def no_shipped_models(tmp_path, monkeypatch):
    """A build that ships no models: for tests about what happens with none installed, or with only the ones the
    test installs, whatever ``pretrained/`` holds today. Request it before fixtures that open the window."""
    from ganstudio.models import configure_registry

    monkeypatch.setenv("GANSTUDIO_PRETRAINED", str(tmp_path / "no-pretrained"))
    configure_registry(Path(os.environ["GANSTUDIO_MODEL_DIR"]))


@pytest.fixture
def random_lpips_weights(tmp_path):
    """An AlexNet/LPIPS ``.npz`` with random weights in the real file's layout, so training code that needs the
    perceptual network or the projected discriminator is tested without ../shared."""
    import numpy as np

    rng = np.random.default_rng(0)
    shapes = [(11, 11, 3, 64), (5, 5, 64, 192), (3, 3, 192, 384), (3, 3, 384, 256), (3, 3, 256, 256)]
    arrays = {}
    for index, shape in enumerate(shapes):
        arrays[f"AlexNet_0/Conv_{index}/kernel"] = rng.normal(0, 0.05, shape).astype(np.float32)
        arrays[f"AlexNet_0/Conv_{index}/bias"] = np.zeros(shape[-1], np.float32)
        arrays[f"NetLinLayer_{index}/Conv_0/kernel"] = rng.uniform(0, 1, (1, 1, shape[-1], 1)).astype(np.float32)
    path = tmp_path / "lpips_alexnet.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture
def make_image(tmp_path):
    """Write a small random test image and return ``(path, pixels)``; pixels as read back are what the app sees."""
    import numpy as np
    from PIL import Image

    counter = iter(range(1000))

    def make(name: str | None = None, height: int = 48, width: int = 64, channels: int = 3, seed: int = 0):
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        path = tmp_path / (name or f"image{next(counter)}.png")
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
        Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode).save(path)
        return path, pixels

    return make


@pytest.fixture
def window(qtbot, monkeypatch):
    """The editor's main window, shown offscreen; closed at the end without unsaved-changes prompts.

    A modal dialog would block an offscreen test forever, so an unexpected question fails the test instead;
    tests that expect one monkeypatch it themselves.
    """
    from PySide6.QtWidgets import QMessageBox

    from ganstudio.ui.main_window import MainWindow

    def unexpected_question(parent, title, text, *args, **kwargs):
        raise AssertionError(f"unexpected question dialog: {text}")

    monkeypatch.setattr(QMessageBox, "question", unexpected_question)
    win = MainWindow()
    win.show()
    qtbot.waitExposed(win)
    yield win
    # Closed here rather than by qtbot.addWidget, whose teardown runs before this one could mark the work saved.
    for document in win.documents:
        document.mark_saved()
    win.close()
    assert win.shutdown()
    win.deleteLater()
