"""Where the shipped models and icons are: inside the installed package, or at the top of a source checkout.

A wheel carries ``pretrained/`` and ``resources/`` as ``ganstudio/pretrained`` and ``ganstudio/resources``
(pyproject.toml maps them); a source checkout and an editable install keep them beside the package.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The checkout's folders that the wheel maps into the package under the same name.
SHIPPED_FOLDERS = ("pretrained", "resources")


def shipped_folder(name: str) -> Path | None:
    """The folder ``name`` of the installed package, else of the checkout; ``None`` when neither has it."""
    if name not in SHIPPED_FOLDERS:
        raise ValueError(f"{name!r} is not a shipped folder: {', '.join(SHIPPED_FOLDERS)}")
    installed = resources.files("ganstudio").joinpath(name)
    # A zipped install would give a Traversable without a path; the models are memory-mapped, so they need files.
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    checkout = Path(__file__).resolve().parents[1] / name
    return checkout if checkout.is_dir() else None
