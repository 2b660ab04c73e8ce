"""Build GAN Studio as a self-contained desktop bundle (PyInstaller, one folder) and check that it works.

    python installer/build.py                      # CPU bundle from PyTorch's CPU index: dist/ganstudio + .tar.gz
    python installer/build.py --torch-wheel F.whl  # the same with torch (and torchvision) wheel files you have
    python installer/build.py --torch pypi         # the torch PyPI gives (Linux: CUDA build, several GB)
    python installer/build.py --check              # run the built bundle from a folder outside the checkout

The same command builds on Windows and macOS (PyInstaller builds for the system it runs on); see installer/README.md.
Only the standard library is used here: the build runs in a venv of its own under ``installer/build/``.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "build"
DIST = HERE / "dist"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Installed first and by flavour: PyPI's torchvision pins PyPI's torch build, which would replace a CPU build.
TORCH_PACKAGES = ("torch", "torchvision")
#: spandrel's requirements besides torch and torchvision (0.4: einops, numpy, safetensors, typing_extensions), for
#: a build from a torch wheel file with no matching torchvision: spandrel is then installed without its
#: dependencies, and reading other projects' model files is the one feature the bundle lacks.
SPANDREL_LIGHT_DEPENDENCIES = ("einops", "typing_extensions")
PYINSTALLER = "pyinstaller>=6.10"


def log(message: str) -> None:
    print(f"[build] {message}", flush=True)


def run(command: list[str], **kwargs) -> None:
    log(" ".join(str(part) for part in command))
    subprocess.run([str(part) for part in command], check=True, **kwargs)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def bundle_executable(bundle: Path) -> Path:
    return bundle / ("ganstudio.exe" if os.name == "nt" else "ganstudio")


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def requirement_name(requirement: str) -> str:
    for stop in "<>=!~;[ ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.strip().lower().replace("_", "-")


def bundle_requirements() -> tuple[list[str], list[str]]:
    """The project's dependencies: the rest, and torch with torchvision (installed first, by flavour)."""
    dependencies = project()["dependencies"]
    torch = [dep for dep in dependencies if requirement_name(dep) in TORCH_PACKAGES]
    return [dep for dep in dependencies if requirement_name(dep) not in TORCH_PACKAGES], torch


def platform_tag(flavour: str) -> str:
    system = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    machine = os.uname().machine if hasattr(os, "uname") else os.environ.get("PROCESSOR_ARCHITECTURE", "x86_64")
    return f"{system}-{machine.lower()}-{flavour}"


def build_wheel(out: Path) -> Path:
    """The wheel, built from a copy of the sources so that no build/ folder lands in the checkout."""
    source = out / "src"
    shutil.rmtree(source, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("ganstudio", "pretrained", "resources"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for old in out.glob("ganstudio-*.whl"):
        old.unlink()
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, source]
    if importlib.util.find_spec("setuptools") is not None:
        command.insert(5, "--no-build-isolation")  # no index needed when this environment can build it
    run(command)
    (wheel,) = out.glob("ganstudio-*.whl")
    return wheel


def prepare_venv(flavour: str, torch_wheels: list[Path], wheel: Path) -> Path:
    venv = WORK / f"venv-{flavour}"
    python = venv_python(venv)
    if not python.exists():
        run([sys.executable, "-m", "venv", venv])
    pip = [python, "-m", "pip", "install", "-q"]
    dependencies, torch = bundle_requirements()
    if torch_wheels:
        run([*pip, *torch_wheels])
    elif flavour == "cpu":
        run([*pip, *torch, "--index-url", CPU_INDEX])
    else:
        run([*pip, *torch])
    has_torchvision = subprocess.run([python, "-c", "import torchvision"], capture_output=True).returncode == 0
    if not has_torchvision:
        log("no torchvision for this torch: spandrel goes in without it, so the bundle cannot import other "
            "projects' model files (everything else works)")
        run([*pip, "--no-deps", *(dep for dep in dependencies if requirement_name(dep) == "spandrel")])
        dependencies = [dep for dep in dependencies if requirement_name(dep) != "spandrel"]
        dependencies += SPANDREL_LIGHT_DEPENDENCIES
    run([*pip, *dependencies, PYINSTALLER])
    run([*pip, "--no-deps", "--force-reinstall", wheel])
    return venv


def build(flavour: str, torch_wheels: list[Path], make_tar: bool) -> Path:
    started = time.monotonic()
    WORK.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(WORK)
    venv = prepare_venv(flavour, torch_wheels, wheel)
    prepared = time.monotonic()
    target = DIST / platform_tag(flavour)
    run([venv_python(venv), "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", target, "--workpath", WORK / f"pyinstaller-{flavour}", HERE / "ganstudio.spec"],
        cwd=WORK)  # not the checkout: its source tree would be analysed instead of the installed wheel
    bundle = target / "ganstudio"
    shutil.copy2(HERE / "ganstudio.desktop", bundle / "ganstudio.desktop")
    shutil.copy2(ROOT / "resources" / "icons" / "ganstudio.svg", bundle / "ganstudio.svg")
    if sys.platform.startswith("linux"):
        script = bundle / "install-desktop-entry.sh"
        shutil.copy2(HERE / "install-desktop-entry.sh", script)
        script.chmod(0o755)
    frozen = time.monotonic()
    log(f"bundle {bundle}: {folder_size(bundle) / 1e6:,.0f} MB; venv {prepared - started:.0f} s, "
        f"PyInstaller {frozen - prepared:.0f} s")
    if make_tar:
        archive = DIST / f"ganstudio-{project()['version']}-{platform_tag(flavour)}.tar.gz"
        with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
            tar.add(bundle, arcname="ganstudio")
        log(f"archive {archive}: {archive.stat().st_size / 1e6:,.0f} MB, {time.monotonic() - frozen:.0f} s")
    print_size_breakdown(bundle)
    return bundle


def folder_size(folder: Path) -> int:
    """Bytes on disk, each file once: PyInstaller links many libraries into ``_internal`` from their packages."""
    total = 0
    for base, _, files in os.walk(folder):
        for name in files:
            path = Path(base, name)
            if not path.is_symlink():
                total += path.lstat().st_size
    return total


def print_size_breakdown(bundle: Path, top: int = 12) -> None:
    """What makes up the bundle's size: the largest top-level parts of its ``_internal`` folder."""
    internal = bundle / "_internal"
    parts = []
    for child in (internal if internal.is_dir() else bundle).iterdir():
        if child.is_symlink():
            continue
        size = folder_size(child) if child.is_dir() else child.stat().st_size
        parts.append((size, child.name))
    for size, name in sorted(parts, reverse=True)[:top]:
        log(f"  {size / 1e6:8,.0f} MB  {name}")


def write_png(path: Path, width: int = 64, height: int = 48) -> None:
    """A small colour gradient as PNG, with the standard library only (the check must not need Pillow)."""
    rows = b"".join(b"\x00" + bytes(value for x in range(width) for value in
                                     (x * 255 // width, y * 255 // height, 128)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def check(bundle: Path) -> int:
    """Copy the bundle outside the checkout and run it with no Python on PATH: the version, the model list, the
    window opened offscreen on a photo, and srresnet-x4 through the CLI. 0 when every step passed."""
    executable = bundle_executable(bundle)
    if not executable.is_file():
        log(f"no bundle at {bundle}: build it first (python installer/build.py)")
        return 1
    with tempfile.TemporaryDirectory(prefix="ganstudio-check-") as scratch:
        scratch = Path(scratch)
        copy = scratch / "ganstudio"
        shutil.copytree(bundle, copy, symlinks=True)
        executable = bundle_executable(copy)
        write_png(scratch / "photo.png")
        env = {"PATH": os.pathsep.join(p for p in ("/usr/bin", "/bin") if Path(p).is_dir()) or os.defpath,
               "HOME": str(scratch), "QT_QPA_PLATFORM": "offscreen",
               "GANSTUDIO_CONFIG_DIR": str(scratch / "config"), "GANSTUDIO_MODEL_DIR": str(scratch / "models")}
        for key in ("SYSTEMROOT", "TEMP", "TMP", "LANG"):  # Windows needs these to start a process at all
            if key in os.environ:
                env[key] = os.environ[key]
        steps = [
            ("version", [executable, "--version"], None),
            ("models", [executable, "models", "list", "--task", "superres"], None),
            ("window", [executable, "--screenshot", scratch / "window.png", scratch / "photo.png"], "window.png"),
            ("superres", [executable, "apply", "superres", scratch / "photo.png", "-o", scratch / "big.png",
                          "--model", "srresnet-x4"], "big.png"),
        ]
        failed = 0
        for name, command, output in steps:
            started = time.monotonic()
            result = subprocess.run([str(part) for part in command], cwd=scratch, env=env, capture_output=True,
                                    text=True, timeout=600)
            ok = result.returncode == 0 and (output is None or (scratch / output).is_file())
            if name == "models":
                ok = ok and "srresnet-x4" in result.stdout
            if name == "superres" and ok:
                ok = png_size(scratch / "big.png") == (256, 192)
            log(f"check {name}: {'ok' if ok else 'FAILED'} ({time.monotonic() - started:.1f} s)")
            if name == "version" or not ok:
                print(result.stdout.strip())
            if not ok:
                print(result.stderr.strip()[-3000:])
                failed += 1
        if (scratch / "window.png").is_file():
            shutil.copy2(scratch / "window.png", DIST / "check-window.png")
            log(f"the window as the check saw it: {DIST / 'check-window.png'}")
    log("check passed" if not failed else f"check FAILED: {failed} step(s)")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch", choices=("cpu", "pypi"), default="cpu",
                        help="cpu: PyTorch's CPU-only wheels (small, every machine); pypi: the torch PyPI gives "
                             "(on Linux the CUDA build, on Windows the CPU one, on macOS the Metal one)")
    parser.add_argument("--torch-wheel", type=Path, action="append", default=[], metavar="WHL",
                        help="install torch (and torchvision, given twice) from wheel files instead of an index")
    parser.add_argument("--no-tar", dest="tar", action="store_false", help="leave out the .tar.gz")
    parser.add_argument("--check", action="store_true", help="check the built bundle (builds nothing)")
    args = parser.parse_args(argv)
    flavour = args.torch
    bundle = DIST / platform_tag(flavour) / "ganstudio"
    if args.check:
        return check(bundle)
    build(flavour, [path.resolve() for path in args.torch_wheel], args.tar)
    return 0


if __name__ == "__main__":
    sys.exit(main())
