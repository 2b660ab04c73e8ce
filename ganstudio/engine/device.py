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


def torch_build() -> str:
    """Which torch this is: its version and whether it was built for CUDA, ROCm or the CPU only."""
    cuda = torch.version.cuda
    hip = getattr(torch.version, "hip", None)
    if cuda:
        kind = f"CUDA {cuda} build"
    elif hip:
        kind = f"ROCm {hip} build"
    else:
        kind = "CPU-only build"
    return f"torch {torch.__version__} ({kind})"


def describe_precision(device: torch.device, precision: str = "auto") -> str:
    if device.type != "cuda":
        return "fp32 (the CPU always runs fp32: reduced precision is many times slower there)"
    if precision == "auto":
        bf16 = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return f"auto: fp16 for the models that allow it, else {bf16}"
    return f"{precision} where the model allows it, else fp32"


def runtime_report(preference: str = "auto", precision: str = "auto") -> list[str]:
    """What ``ganstudio --version`` and Help › About show: the torch build, device and precision in use, and
    what the app would do on a CUDA GPU, so a user can tell a CPU-only install from a GPU that is not found."""
    lines = [torch_build()]
    try:
        device = resolve_device(preference)
    except (RuntimeError, ValueError) as error:
        lines.append(f"Device: {error}")
        device = torch.device("cpu")
    else:
        lines.append(f"Device: {describe_device(preference)}")
    lines.append(f"Precision: {describe_precision(device, precision)}")
    if device.type != "cuda":
        if torch.version.cuda:
            gpu_precision = "fp16 where the model allows it" if precision == "auto" else precision
            lines.append(f"On a CUDA GPU (NVIDIA driver for CUDA {torch.version.cuda} or newer): the GPU, in "
                         f"{gpu_precision}; no GPU is visible now")
        else:
            lines.append("On a CUDA GPU: this torch cannot use one; install a CUDA build of torch to use it")
    return lines
