"""The model registry: built-in baselines, our shipped weights in ``pretrained/`` and the user's model folder."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ..package_data import shipped_folder
from .descriptor import CLASSIC, TASKS, ModelDescriptor

#: Weight files of other projects that spandrel can read; ours are ``.safetensors`` with a JSON card beside them.
FOREIGN_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")

BUILTIN_MODELS = (
    ModelDescriptor("bicubic", "Bicubic", "superres", CLASSIC, scale=0,
                    summary="Classic resampling, no model: smooth, adds no detail (the baseline)."),
    ModelDescriptor("lanczos", "Lanczos", "superres", CLASSIC, scale=0,
                    summary="Classic resampling, no model: a little crisper than bicubic, with faint halos."),
    ModelDescriptor("opencv-telea", "OpenCV Telea", "inpaint", CLASSIC),
    ModelDescriptor("opencv-ns", "OpenCV Navier-Stokes", "inpaint", CLASSIC),
)


class UnknownModelError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class ModelCardError(ValueError):
    """A model card that cannot be used: the message names the file and the problem."""


def pretrained_dir() -> Path:
    """``$GANSTUDIO_PRETRAINED``, else the shipped models: inside the installed package or the checkout's ``pretrained/``."""
    override = os.environ.get("GANSTUDIO_PRETRAINED")
    if override:
        return Path(override)
    # Never None in practice; a path that does not exist scans as an empty folder.
    return shipped_folder("pretrained") or Path(__file__).resolve().parents[2] / "pretrained"


def descriptor_from_card(card_path: Path, source: str) -> ModelDescriptor:
    """Read ``NAME.json`` and find its weights (``NAME.safetensors``, or the file the card names) beside it."""
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelCardError(f"{card_path.name}: unreadable model card ({error})") from error
    if not isinstance(card, dict):
        raise ModelCardError(f"{card_path.name}: a model card must be a JSON object")
    try:
        task = card["task"]
        architecture = card["architecture"]
        arch_name = architecture["name"]
    except (KeyError, TypeError) as error:
        raise ModelCardError(f"{card_path.name}: the model card lacks {error}") from error
    if task not in TASKS:
        raise ModelCardError(f"{card_path.name}: unknown task {task!r}")
    weights = card_path.with_name(card.get("weights") or card_path.stem + ".safetensors")
    if not weights.is_file():
        raise ModelCardError(f"{card_path.name}: its weights file {weights.name} is missing")
    name = card.get("name") or card_path.stem
    return ModelDescriptor(
        name=name,
        title=card.get("title") or name,
        task=task,
        arch=arch_name,
        scale=int(card.get("scale", 1)),
        source=card.get("source", source),
        multiple_of=int(card.get("multiple_of", 1)),
        min_size=int(card.get("min_size", 1)),
        supports_half=bool(card.get("supports_half", False)),
        supports_bf16=bool(card.get("supports_bf16", False)),
        tiling=bool(card.get("tiling", True)),
        weights=weights,
        summary=str(card.get("summary", "")),
        arch_params=dict(architecture.get("params", {})),
        card=card,
    )


class Registry:
    def __init__(self, models: tuple[ModelDescriptor, ...] = BUILTIN_MODELS) -> None:
        self._models: dict[str, ModelDescriptor] = {}
        #: One line per card or file that was skipped during a scan, for `ganstudio models list` and the GUI.
        self.problems: list[str] = []
        for model in models:
            self.register(model)

    def register(self, model: ModelDescriptor) -> None:
        self._models[model.name] = model

    def get(self, name: str, task: str | None = None) -> ModelDescriptor:
        model = self._models.get(name)
        if model is None or (task is not None and model.task != task):
            known = ", ".join(m.name for m in self.all() if task is None or m.task == task)
            raise UnknownModelError(f"unknown model {name!r}" + (f" for {task}" if task else "") + f" (available: {known})")
        return model

    def all(self) -> list[ModelDescriptor]:
        return list(self._models.values())

    def for_task(self, task: str) -> list[ModelDescriptor]:
        return [m for m in self._models.values() if m.task == task]

    def scan_folder(self, folder: Path, source: str) -> None:
        """Register every model card in ``folder``; a broken card is noted in :attr:`problems`, not raised."""
        if not folder.is_dir():
            return
        for card_path in sorted(folder.glob("*.json")):
            try:
                model = descriptor_from_card(card_path, source)
            except ModelCardError as error:
                self.problems.append(str(error))
                continue
            if model.name in self._models and self._models[model.name].source != source:
                # a user's model never hides a shipped one of the same name: both stay selectable
                model = _renamed(model, f"{model.name}@{source}")
            self.register(model)


def _renamed(model: ModelDescriptor, name: str) -> ModelDescriptor:
    from dataclasses import replace

    return replace(model, name=name)


_lock = threading.Lock()
_registry: Registry | None = None
_user_dir: Path | None = None
_generation = 0


def build_registry(user_dir: Path | None) -> Registry:
    registry = Registry()
    registry.scan_folder(pretrained_dir(), "pretrained")
    if user_dir is not None:
        registry.scan_folder(user_dir, "user")
    return registry


def configure_registry(user_dir: Path | None) -> Registry:
    """Rescan with ``user_dir`` as the user's model folder (at start, and when the preference changes)."""
    global _registry, _user_dir, _generation
    with _lock:
        _user_dir = user_dir
        _registry = build_registry(user_dir)
        _generation += 1
        return _registry


def registry_state() -> tuple[Path | None, int]:
    """The user's model folder and how many times the registry was configured: the worker process rescans when
    the editor's state differs from its own."""
    with _lock:
        return _user_dir, _generation


def get_registry() -> Registry:
    """The process-wide registry, built on first use from the preferences' model folder."""
    global _registry
    with _lock:
        if _registry is None:
            if _user_dir is None:
                from ..config import load_preferences

                user_dir = load_preferences().model_path
            else:
                user_dir = _user_dir
            _registry = build_registry(user_dir)
        return _registry
