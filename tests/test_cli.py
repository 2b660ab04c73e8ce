import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganstudio import __version__
from ganstudio.cli import main
from ganstudio.imaging import read_image


@pytest.fixture
def photo_png(tmp_path):
    rng = np.random.default_rng(1)
    pixels = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_apply_superres_writes_a_4x_image(photo_png, tmp_path):
    out = tmp_path / "big.png"
    assert main(["apply", "superres", str(photo_png), "-o", str(out), "--model", "bicubic", "-q"]) == 0
    assert read_image(out).pixels.shape[:2] == (120, 160)


def test_apply_inpaint_fills_the_white_area(photo_png, tmp_path):
    mask = np.zeros((30, 40), np.uint8)
    mask[10:20, 10:25] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    out = tmp_path / "out.png"
    code = main(["apply", "inpaint", str(photo_png), "--mask", str(tmp_path / "m.png"), "-o", str(out),
                 "--model", "opencv-telea", "-q"])
    assert code == 0
    before, after = read_image(photo_png).pixels, read_image(out).pixels
    assert np.array_equal(before[mask == 0], after[mask == 0])
    assert not np.array_equal(before[mask > 0], after[mask > 0])


@pytest.mark.parametrize("args,message", [
    (["apply", "superres", "missing.png", "-o", "x.png"], "missing.png"),
    (["apply", "blur", "{photo}", "-o", "x.png"], "unknown tool"),
    (["apply", "superres", "{photo}", "-o", "x.png", "--model", "nope"], "unknown model"),
    (["apply", "inpaint", "{photo}", "-o", "x.png"], "--mask"),
    (["apply", "superres", "{photo}", "-o", "{photo}"], "--overwrite"),
    (["apply", "superres", "{photo}", "-o", "x.png", "--radius", "3"], "no --radius"),
    (["apply", "superres", "{photo}", "-o", "no/such/dir/x.png"], "does not exist"),
])
def test_bad_input_exits_2_with_one_line(args, message, photo_png, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main([a.format(photo=photo_png) for a in args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_broken_image_is_a_clear_error(tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"")
    assert main(["apply", "superres", str(broken), "-o", str(tmp_path / "o.png")]) == 2
    assert "broken.jpg" in capsys.readouterr().err


def test_input_is_kept_unless_overwrite_is_asked(photo_png):
    before = photo_png.read_bytes()
    assert main(["apply", "superres", str(photo_png), "-o", str(photo_png), "-q"]) == 2
    assert photo_png.read_bytes() == before
    assert main(["apply", "superres", str(photo_png), "-o", str(photo_png), "--scale", "2", "--overwrite", "-q"]) == 0
    assert read_image(photo_png).pixels.shape[:2] == (60, 80)


def test_models_list(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("bicubic", "lanczos", "opencv-telea", "opencv-ns"):
        assert name in out
    assert main(["models", "list", "--task", "inpaint"]) == 0
    assert "bicubic" not in capsys.readouterr().out


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "ganstudio", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and __version__ in result.stdout


def test_version_names_the_torch_build_device_and_precision(capsys):
    import torch

    with pytest.raises(SystemExit):
        main(["--version"])
    out = capsys.readouterr().out
    assert f"torch {torch.__version__}" in out
    assert "Device: " in out and "Precision: " in out


def test_runtime_report_tells_a_cpu_only_build_from_a_missing_gpu(monkeypatch):
    import torch

    from ganstudio.engine.device import runtime_report

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    cpu_only = runtime_report("auto")
    assert "CPU-only build" in cpu_only[0]
    assert any("cannot use one" in line for line in cpu_only)
    assert any(line.startswith("Precision: fp32") for line in cpu_only)

    monkeypatch.setattr(torch.version, "cuda", "12.4")
    cuda_build = runtime_report("auto")
    assert "CUDA 12.4 build" in cuda_build[0]
    assert any("no GPU is visible" in line and "fp16" in line for line in cuda_build)
    assert any("fp32" in line for line in runtime_report("auto", "fp32") if line.startswith("On a CUDA GPU"))
    assert "no CUDA GPU is available" in runtime_report("cuda")[1]


def test_screenshot_opens_the_window_on_a_photo_and_quits(photo_png, tmp_path):
    """``--screenshot`` is how an install or a bundle is checked without a screen: 0 only when the file opened and
    the worker process ran a job."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "GANSTUDIO_WORKER": "process"}
    shot = tmp_path / "window.png"
    result = subprocess.run([sys.executable, "-m", "ganstudio", "--screenshot", str(shot), str(photo_png)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    with Image.open(shot) as picture:
        assert picture.width > 400 and picture.height > 300
    missing = subprocess.run([sys.executable, "-m", "ganstudio", "--screenshot", str(tmp_path / "no.png"),
                              str(tmp_path / "missing.png")], capture_output=True, text=True, env=env, timeout=300)
    assert missing.returncode == 1


def test_scale_alone_picks_a_model_made_for_that_scale():
    from ganstudio.models import get_registry
    from ganstudio.tools.superres import default_model

    registry = get_registry()
    made_for_2 = [m for m in registry.for_task("superres") if m.scale == 2 and not m.is_classic]
    if not made_for_2:
        pytest.skip("no ×2 model installed")
    assert registry.get(default_model(2), "superres").scale == 2
    assert default_model(3) == default_model()  # none made for ×3: the usual default, resampled
    if any(m.name == "real-x2" for m in made_for_2):
        assert default_model(2) == "real-x2"
