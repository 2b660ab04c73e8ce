"""The bundle builder's own logic (building a bundle takes minutes and is checked by ``build.py --check``)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BUILD = Path(__file__).resolve().parents[1] / "installer" / "build.py"
pytestmark = pytest.mark.skipif(not BUILD.is_file(), reason="needs the source tree")


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("installer_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_torch_is_installed_apart_from_the_other_dependencies(build):
    others, torch = build.bundle_requirements()
    assert sorted(build.requirement_name(dep) for dep in torch) == ["torch", "torchvision"]
    names = {build.requirement_name(dep) for dep in others}
    assert {"pyside6-essentials", "spandrel", "numpy"} <= names and not names & {"torch", "torchvision"}
    assert build.requirement_name("opencv-python-headless>=4.8") == "opencv-python-headless"
    assert build.requirement_name("typing_extensions; python_version<'3.12'") == "typing-extensions"


def test_check_photo_is_a_png_pillow_reads(build, tmp_path):
    path = tmp_path / "photo.png"
    build.write_png(path, width=40, height=30)
    with Image.open(path) as image:
        pixels = np.asarray(image)
    assert pixels.shape == (30, 40, 3)
    assert pixels[0, -1, 0] > pixels[0, 0, 0] and pixels[-1, 0, 1] > pixels[0, 0, 1]
    assert build.png_size(path) == (40, 30)


def test_folder_size_counts_linked_files_once(build, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "big.so").write_bytes(b"x" * 1000)
    (tmp_path / "big.so").symlink_to(tmp_path / "lib" / "big.so")
    assert build.folder_size(tmp_path) == 1000


def test_check_refuses_a_missing_bundle(build, tmp_path):
    assert build.check(tmp_path / "nothing") == 1
