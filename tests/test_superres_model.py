"""The shipped super-resolution models through the tool: loading, sizes, alpha, grey, 16-bit and colour fidelity."""
import numpy as np
import pytest

from ganstudio.imaging.color import resize
from ganstudio.models import get_registry
from ganstudio.models.registry import pretrained_dir
from ganstudio.tools.superres import SuperResParams, run

pytestmark = pytest.mark.skipif(not (pretrained_dir() / "srresnet-x4.safetensors").exists(),
                                reason="srresnet-x4 is not shipped in this checkout")


def photo(size=48, channels=3, dtype=np.uint8):
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:size, 0:size] / size
    layers = [np.sin(7 * x + c) * np.cos(5 * y - c) * 0.35 + 0.5 for c in range(channels)]
    image = np.stack(layers, axis=2) + rng.normal(0, 0.02, (size, size, channels))
    return (image.clip(0, 1) * np.iinfo(dtype).max).round().astype(dtype)


#: Every super-resolution model in pretrained/, with its scale.
SHIPPED = {name: scale for name, scale in (("srresnet-x4", 4), ("srgan-x4", 4), ("srresnet-x2", 2),
                                           ("real-x4", 4), ("real-x2", 2))
           if (pretrained_dir() / f"{name}.safetensors").exists()}


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_model_is_registered_from_its_card(name):
    model = get_registry().get(name, "superres")
    assert model.source == "pretrained" and model.scale == SHIPPED[name]
    assert model.card["data"]["licence"] and model.card["training"]["steps"] > 0
    assert set(model.card["metrics"]) >= {"Set5", "Set14", "BSD100"}


@pytest.mark.parametrize("name", SHIPPED)
def test_colour_stays_within_one_percent_of_bicubic(name):
    image = photo()
    scale = SHIPPED[name]
    out = run(image, SuperResParams(name, scale))
    bicubic = run(image, SuperResParams("bicubic", scale))
    assert out.shape == (48 * scale, 48 * scale, 3)
    means, reference = out.reshape(-1, 3).mean(0), bicubic.reshape(-1, 3).mean(0)
    assert np.all(np.abs(means - reference) <= 0.01 * reference)


@pytest.mark.parametrize("name", [name for name, scale in SHIPPED.items() if scale == 4])
def test_alpha_is_upscaled_apart_and_reattached(name):
    image = photo(channels=4)
    image[..., 3] = 0
    image[10:30, 10:30, 3] = 255
    out = run(image, SuperResParams(name, 4))
    expected_alpha = resize(image[..., 3:], (192, 192), "bicubic")
    assert np.array_equal(out[..., 3:], expected_alpha)


@pytest.mark.parametrize("channels,dtype", [(1, np.uint8), (3, np.uint16), (2, np.uint16)])
def test_grey_and_16_bit_keep_their_layout(channels, dtype):
    out = run(photo(32, channels, dtype), SuperResParams("srresnet-x4", 4))
    assert out.shape == (128, 128, channels) and out.dtype == dtype


def test_a_x4_model_asked_for_x2_gives_x2():
    assert run(photo(32), SuperResParams("srresnet-x4", 2)).shape == (64, 64, 3)


@pytest.mark.skipif("srresnet-x2" not in SHIPPED, reason="srresnet-x2 is not shipped in this checkout")
def test_the_x2_model_runs_at_its_own_scale_not_x4_then_down(monkeypatch):
    import ganstudio.tools.superres as superres_tool

    def no_resample(*args, **kwargs):
        raise AssertionError("a ×2 model asked for ×2 must not resample its output")

    image = photo(32)
    out = run(image, SuperResParams("srresnet-x2", 2))
    assert out.shape == (64, 64, 3)
    monkeypatch.setattr(superres_tool, "resize", no_resample)
    assert np.array_equal(run(image, SuperResParams("srresnet-x2", 2)), out)


@pytest.mark.skipif("srresnet-x2" not in SHIPPED, reason="srresnet-x2 is not shipped in this checkout")
def test_the_cli_upscales_by_the_models_own_scale_unless_told(tmp_path):
    from PIL import Image

    from ganstudio.cli import main

    source = tmp_path / "in.png"
    Image.fromarray(photo(24)).save(source)
    for extra, side in (([], 48), (["--scale", "4"], 96)):
        out = tmp_path / f"out{side}.png"
        assert main(["apply", "superres", str(source), "-o", str(out), "--model", "srresnet-x2", "-q", *extra]) == 0
        with Image.open(out) as written:
            assert written.size == (side, side)
    out = tmp_path / "bicubic.png"
    assert main(["apply", "superres", str(source), "-o", str(out), "--model", "bicubic", "-q"]) == 0
    with Image.open(out) as written:
        assert written.size == (96, 96)


@pytest.mark.skipif("srresnet-x2" not in SHIPPED, reason="srresnet-x2 is not shipped in this checkout")
def test_picking_a_fixed_scale_model_in_the_panel_picks_its_scale(window):
    panel = window.tools_panel
    panel.select_tool("superres")
    page = panel.current_page
    model, scale = page.editor("model"), page.editor("scale")
    model.setCurrentIndex(model.findData("srresnet-x2"))
    assert page.params().scale == 2
    model.setCurrentIndex(model.findData("srresnet-x4"))
    assert page.params().scale == 4
    model.setCurrentIndex(model.findData("bicubic"))  # any scale: the choice stays
    assert page.params().scale == 4
    model.setCurrentIndex(model.findData("srresnet-x2"))
    scale.setCurrentIndex(scale.findData(4))  # the user may still ask a ×2 model for ×4
    page.refresh_models()
    assert page.params() == type(page.params())("srresnet-x2", 4)


#: Where the shipped models are, read before any test points $GANSTUDIO_PRETRAINED elsewhere.
SHIPPED_DIR = pretrained_dir()


def _install(folder, *names):
    import shutil

    folder.mkdir(exist_ok=True)
    for name in names:
        for suffix in (".safetensors", ".json"):
            shutil.copy(SHIPPED_DIR / f"{name}{suffix}", folder / f"{name}{suffix}")


def test_the_default_model_is_the_best_installed_never_a_resampler_when_a_model_exists(tmp_path, monkeypatch):
    import os
    from pathlib import Path

    from ganstudio.models import configure_registry

    folder = tmp_path / "shipped"
    monkeypatch.setenv("GANSTUDIO_PRETRAINED", str(folder))
    configure_registry(None)
    assert SuperResParams().model == "bicubic"  # nothing installed: the classic resampler still works
    _install(folder, "srgan-x4")
    configure_registry(None)
    assert SuperResParams().model == "srgan-x4"
    _install(folder, "srresnet-x4")
    configure_registry(None)
    assert SuperResParams().model == "srresnet-x4"
    if "real-x4" in SHIPPED:
        _install(folder, "real-x4")
        configure_registry(None)
        assert SuperResParams().model == "real-x4"
    configure_registry(Path(os.environ["GANSTUDIO_MODEL_DIR"]))


@pytest.mark.skipif("real-x4" not in SHIPPED, reason="real-x4 is not shipped in this checkout")
def test_the_cli_upscales_with_the_photo_model_by_default(tmp_path, monkeypatch):
    from PIL import Image

    import ganstudio.tools.superres as superres_tool
    from ganstudio.cli import main

    used = []
    real_find = superres_tool.find_model
    monkeypatch.setattr(superres_tool, "find_model", lambda name, task: used.append(name) or real_find(name, task))
    source = tmp_path / "in.png"
    Image.fromarray(photo(24)).save(source)
    assert main(["apply", "superres", str(source), "-o", str(tmp_path / "out.png"), "-q"]) == 0
    assert used == ["real-x4"]
    with Image.open(tmp_path / "out.png") as written:
        assert written.size == (96, 96)


def test_the_panel_starts_on_the_best_model_and_says_what_each_is_for(window):
    panel = window.tools_panel
    panel.select_tool("superres")
    page = panel.current_page
    model = page.editor("model")
    assert model.currentData() == SuperResParams().model
    for name in ("bicubic", *SHIPPED):
        index = model.findData(name)
        if index < 0:
            continue
        model.setCurrentIndex(index)
        summary = get_registry().get(name, "superres").summary
        assert summary and page.model_summary.text() == summary
