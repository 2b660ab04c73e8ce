"""Loading weights safely: our ``.safetensors`` into our architectures, foreign files through spandrel.

Nothing here unpickles arbitrary objects: safetensors holds only tensors, and spandrel reads ``.pth``/``.ckpt``
with a restricted unpickler.
"""
from __future__ import annotations

import json
import shutil
import threading
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file

from ..atomic import atomic_output, write_text_atomic
from .arch import build_arch
from .descriptor import SPANDREL, ModelDescriptor
from .registry import FOREIGN_SUFFIXES

#: spandrel's purposes mapped to our tasks; purposes without a tool here cannot be imported.
_PURPOSE_TASKS = {"SR": "superres", "FaceSR": "superres", "Restoration": "superres", "Inpainting": "inpaint"}
_CACHE_SIZE = 2


class ModelLoadError(RuntimeError):
    pass


def _build(model: ModelDescriptor) -> nn.Module:
    if model.weights is None:
        raise ModelLoadError(f"{model.name} has no weights file")
    if model.arch == SPANDREL:
        return _spandrel_load(model.weights).model
    try:
        module = build_arch(model.arch, model.arch_params)
        module.load_state_dict(load_file(str(model.weights)), strict=True)
    except (KeyError, RuntimeError, OSError, TypeError) as error:
        raise ModelLoadError(f"{model.name}: cannot load {model.weights.name}: {error}") from error
    return module


def _spandrel_load(path: Path):
    try:
        import spandrel
    except ImportError as error:  # a bundle built without torchvision, which spandrel's architectures import
        raise ModelLoadError(f"{path.name}: reading other projects' model files needs spandrel with torchvision, "
                             f"which this installation lacks ({error})") from error

    try:
        return spandrel.ModelLoader(device="cpu").load_from_file(str(path))
    except Exception as error:  # noqa: BLE001 - spandrel raises many kinds for unknown or damaged files
        raise ModelLoadError(f"{path.name}: not a model spandrel can read ({error})") from error


class ModelCache:
    """The few most recently used modules, keyed by model, weights file version, device and dtype.

    Loading happens on the caller's thread: in the GUI that is the worker thread, never the UI thread.
    """

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._modules: OrderedDict[tuple, nn.Module] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: ModelDescriptor, device: torch.device, dtype: torch.dtype) -> nn.Module:
        stamp = model.weights.stat().st_mtime_ns if model.weights and model.weights.exists() else 0
        key = (model.name, str(model.weights), stamp, str(device), dtype)
        with self._lock:
            if key in self._modules:
                self._modules.move_to_end(key)
                return self._modules[key]
            # a different device or precision makes the old copies useless and holds their memory
            for old in [k for k in self._modules if k[3] != str(device) or k[4] != dtype]:
                del self._modules[old]
            module = _build(model).eval().requires_grad_(False).to(device=device, dtype=dtype)
            if device.type == "cpu":
                module = module.to(memory_format=torch.channels_last)
            self._modules[key] = module
            while len(self._modules) > self._size:
                self._modules.popitem(last=False)
            return module

    def clear(self) -> None:
        with self._lock:
            self._modules.clear()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


model_cache = ModelCache()


def import_foreign_model(path: Path, model_dir: Path, name: str | None = None) -> Path:
    """Check a foreign weights file with spandrel, copy it into ``model_dir`` and write its model card.

    Returns the card's path; the registry picks the model up at its next scan.
    """
    path = Path(path)
    if path.suffix.lower() not in FOREIGN_SUFFIXES:
        raise ModelLoadError(f"{path.name}: expected one of {', '.join(FOREIGN_SUFFIXES)}")
    detected = _spandrel_load(path)
    task = _PURPOSE_TASKS.get(detected.purpose)
    if task is None:
        raise ModelLoadError(f"{path.name}: a {detected.purpose} model ({detected.architecture.name}) has no tool here")
    if detected.input_channels != 3 or detected.output_channels != 3:
        raise ModelLoadError(f"{path.name}: only RGB models are supported (this one has "
                             f"{detected.input_channels} in, {detected.output_channels} out)")
    name = name or path.stem
    model_dir.mkdir(parents=True, exist_ok=True)
    weights = model_dir / f"{name}{path.suffix.lower()}"
    card_path = model_dir / f"{name}.json"
    if weights.exists() or card_path.exists():
        raise ModelLoadError(f"a model named {name!r} already exists in {model_dir}")
    requirements = detected.size_requirements
    card = {
        "name": name,
        "title": f"{name} ({detected.architecture.name} ×{detected.scale})",
        "task": task,
        "scale": detected.scale,
        "source": "foreign",
        "weights": weights.name,
        "architecture": {"name": SPANDREL, "params": {}, "detected": detected.architecture.name},
        "multiple_of": requirements.multiple_of,
        "min_size": requirements.minimum,
        "supports_half": detected.supports_half,
        "supports_bf16": detected.supports_bfloat16,
        "imported_from": str(path),
    }
    with atomic_output(weights) as tmp:
        shutil.copyfile(path, tmp)
    write_text_atomic(card_path, json.dumps(card, indent=2))
    return card_path
