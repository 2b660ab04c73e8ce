"""The wheel carries the shipped models and icons, and an install of it alone, outside the checkout, runs the tools.

The fresh venv borrows this environment's third-party packages through a ``.pth`` line (installing torch again
would cost minutes and gigabytes); only ``ganstudio`` itself comes from the wheel, and the test checks that the
package it imports lives in that venv, not in the checkout.
"""
from __future__ import annotations

import importlib.util
import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MAX_WHEEL_MB = 80

pytestmark = pytest.mark.skipif(not (ROOT / "pyproject.toml").is_file(), reason="needs the source tree")


def _source_packages() -> set[str]:
    return {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "ganstudio").rglob("__init__.py")
            if "__pycache__" not in init.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built as installer/build.py builds it: from a copy of the sources, leaving no build/ folder in the checkout."""
    spec = importlib.util.spec_from_file_location("installer_build", ROOT / "installer" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_holds_the_package_models_and_icons_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.rsplit("/", 1)[0].replace("/", ".") for name in names if name.endswith("/__init__.py")}
    assert _source_packages() <= packages, f"missing from pyproject's package list: {_source_packages() - packages}"
    shipped = {path.name for path in (ROOT / "pretrained").iterdir() if path.suffix in (".json", ".safetensors")}
    in_wheel = {name.split("/")[-1] for name in names if name.startswith("ganstudio/pretrained/")}
    assert shipped and shipped == in_wheel
    assert "ganstudio/resources/icons/ganstudio.svg" in names
    for name in names:
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
        assert not name.startswith(("tests/", "training/", "benchmarks/", "runs/")), name
    assert wheel.stat().st_size < MAX_WHEEL_MB * 1e6


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """A venv outside the checkout with only the wheel installed in it; returns (its bin folder, environment)."""
    work = tmp_path_factory.mktemp("installed")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    # This environment's site folders, for torch, Qt and the rest; their own .pth files (the editable install of
    # the checkout among them) are not read when a folder is added this way.
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    (purelib / "_borrowed_dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                             "--no-index", str(wheel)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "GANSTUDIO_PRETRAINED", "VIRTUAL_ENV")}
    env.update(GANSTUDIO_CONFIG_DIR=str(work / "config"), GANSTUDIO_MODEL_DIR=str(work / "models"),
               QT_QPA_PLATFORM="offscreen")
    return python.parent, env, work


def _run(installed, *args: str) -> subprocess.CompletedProcess:
    bin_dir, env, work = installed
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, cwd=work, env=env,
                          timeout=600)


def test_installed_package_is_the_wheels_and_finds_its_models(installed):
    bin_dir, _, work = installed
    located = _run(installed, "python", "-c",
                   "import ganstudio, json; from ganstudio.models.registry import pretrained_dir; "
                   "from ganstudio.package_data import shipped_folder; "
                   "print(json.dumps([ganstudio.__file__, str(pretrained_dir()), str(shipped_folder('resources'))]))")
    assert located.returncode == 0, located.stderr
    package_file, models, icons = (Path(path) for path in json.loads(located.stdout))
    venv = bin_dir.parent
    for path in (package_file, models, icons):
        assert venv in path.parents and ROOT not in path.parents, path
    listing = _run(installed, "ganstudio", "models", "list")
    assert listing.returncode == 0, listing.stderr
    for name in ("real-x4", "srresnet-x4", "inpaint-gan", "cat2dog", "pose-net"):
        assert name in listing.stdout


def test_installed_wheel_upscales_inpaints_and_translates(installed):
    _, _, work = installed
    rng = np.random.default_rng(0)
    pixels = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(work / "photo.png")
    mask = np.zeros((40, 48), np.uint8)
    mask[10:24, 12:30] = 255
    Image.fromarray(mask).save(work / "mask.png")
    runs = {
        "big.png": ("apply", "superres", "photo.png", "-o", "big.png", "--model", "srresnet-x4"),
        "filled.png": ("apply", "inpaint", "photo.png", "--mask", "mask.png", "-o", "filled.png",
                       "--model", "inpaint-gan"),
        "dog.png": ("apply", "translate", "photo.png", "-o", "dog.png", "--model", "cat2dog"),
    }
    for output, args in runs.items():
        result = _run(installed, "ganstudio", *args)
        assert result.returncode == 0, result.stderr
        with Image.open(work / output) as written:
            size = written.size
        assert size == ((192, 160) if output == "big.png" else (48, 40)), output
    filled = np.asarray(Image.open(work / "filled.png").convert("RGB"))
    outside = mask == 0
    assert np.array_equal(filled[outside], pixels[outside]), "inpainting must keep the pixels outside the mask"
    assert not np.array_equal(filled[~outside], pixels[~outside])
