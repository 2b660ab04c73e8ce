"""Which device and precision a model runs with."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Runtime:
    """How jobs run, from the user's preferences: not part of any tool's parameters."""

    device: str = "auto"
    precision: str = "auto"
    #: Tile edge in input pixels; 0 lets the engine choose.
    tile: int = 0


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_device(preference: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA on a machine without it is an error, not a silent CPU run."""
    if preference == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    if preference == "cuda" and not cuda_available():
        raise RuntimeError("CUDA was asked for, but no CUDA GPU is available: choose 'auto' or 'cpu'")
    if preference not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {preference!r}: use auto, cpu or cuda")
    return torch.device(preference)


def describe_device(preference: str = "auto") -> str:
    try:
        device = resolve_device(preference)
    except RuntimeError:
        return "CUDA (not available)"
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"


def resolve_dtype(device: torch.device, precision: str, *, supports_half: bool, supports_bf16: bool) -> torch.dtype:
    """fp32 unless the device and the model both allow lower precision.

    On the CPU reduced precision is never used: bf16 autocast measured ~50x slower there (shared/TRAINING.md).
    """
    if device.type != "cuda" or precision == "fp32":
        return torch.float32
    if precision == "fp16":
        return torch.float16 if supports_half else torch.float32
    if precision == "bf16":
        return torch.bfloat16 if supports_bf16 and torch.cuda.is_bf16_supported() else torch.float32
    if precision == "auto":
        if supports_half:
            return torch.float16
        if supports_bf16 and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    raise ValueError(f"unknown precision {precision!r}: use auto, fp32, fp16 or bf16")
