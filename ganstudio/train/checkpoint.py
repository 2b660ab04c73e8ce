"""Training checkpoints (our own full training state) and the shipped export (.safetensors + model card).

Checkpoints are ``torch.save`` pickles because they hold optimizer, scheduler and RNG state; they are only ever
loaded from the run folder this process writes itself. Shipped weights are never pickles.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

from ..atomic import atomic_output, write_text_atomic

CHECKPOINT_DIR = "checkpoints"
_CHECKPOINT_NAME = re.compile(r"^step_(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(run_dir: Path, state: dict[str, Any], keep: int = 3) -> Path:
    """Save ``state`` (must hold ``"step"``) as ``checkpoints/step_XXXXXXXX.pt``; keep the newest ``keep``."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    path = folder / f"step_{state['step']:08d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        torch.save(state, tmp)
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CHECKPOINT_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    checkpoints = list_checkpoints(run_dir)
    return checkpoints[-1] if checkpoints else None


def load_latest(run_dir: Path) -> dict[str, Any]:
    """The newest checkpoint's state; FileNotFoundError when the run has none (nothing to export)."""
    latest = latest_checkpoint(run_dir)
    if latest is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir}")
    return load_checkpoint(latest)


def load_checkpoint(path: Path) -> dict[str, Any]:
    # weights_only=False is needed for optimizer/RNG state; callers pass only files from their own run folder.
    return torch.load(path, map_location="cpu", weights_only=False)


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """The model's weights alone, as fp32 ``.safetensors``, written atomically."""
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def export_safetensors(model: nn.Module, weights_path: Path, card: dict[str, Any]) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.json`` (the model card) side by side, atomically; returns the card path."""
    weights_path = Path(weights_path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, weights_path, metadata={"name": str(card.get("name", ""))})
    card_path = weights_path.with_suffix(".json")
    text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
    write_text_atomic(card_path, text)
    return card_path
